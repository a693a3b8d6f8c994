"""uftpcore.transfer: single files over parallel sessions, verification, resume, retries, limits."""

from __future__ import annotations

import json
import logging
import os
import time

import pytest

import uftpcore
from uftpcore import movers, transfer
from uftpcore.errors import ConnectionClosedError, IntegrityError, UFTPError
from uftpcore.resume import RESUME_SUFFIX, SIDECAR_SUFFIX
from uftpcore.session import Session

from .bulkhelpers import FAST, job_endpoint, leftovers, write_random

THRESHOLD = 100_000  # small, so that test files get split
CHUNK = 128 * 1024


class Interrupted(Exception):
    pass


@pytest.fixture
def ep(uftpd, workdir, impl):
    with job_endpoint(uftpd, workdir, impl) as endpoint:
        yield endpoint


# ------------------------------------------------------------------------------ correctness
@pytest.mark.parametrize("size", [0, 1, 777_777, 2_500_009])
@pytest.mark.parametrize("sessions", [1, 2, 3, 4])
def test_parallel_download(ep, workdir, tmp_path, size, sessions):
    data = write_random(workdir / "src.bin", size, seed=size)
    os.chmod(workdir / "src.bin", 0o640)
    os.utime(workdir / "src.bin", (1_600_000_000, 1_600_000_000))
    res = transfer.download(ep, "src.bin", tmp_path / "out.bin", sessions=sessions, split_threshold=THRESHOLD,
                            chunk_size=CHUNK)
    out = tmp_path / "out.bin"
    assert out.read_bytes() == data
    assert res.bytes == size and res.files == 1 and res.verified and res.algo == "SHA-256"
    assert res.sessions_used == (sessions if size >= THRESHOLD else 1)
    assert res.retries == 0 and res.resumed_bytes == 0
    assert int(out.stat().st_mtime) == 1_600_000_000
    assert out.stat().st_mode & 0o777 == 0o640
    if res.sessions_used == 1:  # moved whole: the whole-file digest is reported
        import hashlib

        assert res.checksum == hashlib.sha256(data).hexdigest()
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("size", [0, 3, 555_555, 2_000_003])
@pytest.mark.parametrize("sessions", [1, 2, 4])
def test_parallel_upload(ep, workdir, tmp_path, size, sessions):
    data = write_random(tmp_path / "src.bin", size, seed=size + 1)
    os.chmod(tmp_path / "src.bin", 0o600)
    os.utime(tmp_path / "src.bin", (1_500_000_000, 1_500_000_000))
    (workdir / "dst.bin").write_bytes(b"x" * (size + 50_000))  # longer: must be truncated
    res = transfer.upload(ep, tmp_path / "src.bin", "dst.bin", sessions=sessions, split_threshold=THRESHOLD,
                          chunk_size=CHUNK)
    assert (workdir / "dst.bin").read_bytes() == data
    assert res.bytes == size and res.files == 1 and res.verified
    assert res.sessions_used == (sessions if size >= THRESHOLD else 1)
    st = (workdir / "dst.bin").stat()
    assert int(st.st_mtime) == 1_500_000_000 and st.st_mode & 0o777 == 0o600


def test_adaptive_chunks_and_directory_targets(ep, workdir, tmp_path):
    data = write_random(workdir / "a.bin", 3_000_000)
    (tmp_path / "dl").mkdir()
    res = transfer.download(ep, "a.bin", tmp_path / "dl", sessions=2, split_threshold=1_000_000)
    assert (tmp_path / "dl" / "a.bin").read_bytes() == data and res.sessions_used == 2
    (workdir / "sub").mkdir()
    transfer.upload(ep, tmp_path / "dl" / "a.bin", "sub")
    transfer.upload(ep, tmp_path / "dl" / "a.bin", "sub/")
    assert (workdir / "sub" / "a.bin").read_bytes() == data
    with pytest.raises(UFTPError, match="directory"):
        transfer.download(ep, "sub", tmp_path / "x")
    with pytest.raises(UFTPError, match="upload_tree"):
        transfer.upload(ep, tmp_path / "dl", "y")


def test_streams_per_session_and_server_cap(ep, workdir, tmp_path):
    data = write_random(workdir / "m.bin", 1_000_003)
    res = transfer.download(ep, "m.bin", tmp_path / "m2", sessions=2, streams=2, split_threshold=THRESHOLD)
    assert (tmp_path / "m2").read_bytes() == data and res.streams_used == 2
    res = transfer.download(ep, "m.bin", tmp_path / "m8", streams=8)  # uftpd caps at 4 (223)
    assert (tmp_path / "m8").read_bytes() == data and res.streams_used == 4
    res = transfer.upload(ep, tmp_path / "m8", "up.bin", sessions=2, streams=3, split_threshold=THRESHOLD)
    assert (workdir / "up.bin").read_bytes() == data and res.streams_used == 3


def test_download_many_files(ep, workdir, tmp_path):
    blobs = {f"f{i}.bin": write_random(workdir / f"f{i}.bin", 1000 * i + 7, seed=i) for i in range(12)}
    blobs["big.bin"] = write_random(workdir / "big.bin", 600_001, seed=99)
    pairs = [(name, tmp_path / "nested" / name) for name in blobs]
    res = transfer.download_many(ep, pairs, sessions=3, split_threshold=THRESHOLD, chunk_size=CHUNK)
    assert res.files == len(blobs) and res.sessions_used == 3 and res.verified
    for name, data in blobs.items():
        assert (tmp_path / "nested" / name).read_bytes() == data
    assert set(res.checksums) == set(blobs) - {"big.bin"}  # the split file has range digests only
    with pytest.raises(ValueError, match="twice"):
        transfer.download_many(ep, [("f1.bin", tmp_path / "z"), ("f2.bin", tmp_path / "z")])


def test_upload_many_creates_parents(ep, workdir, tmp_path):
    pairs = []
    for i in range(5):
        write_random(tmp_path / f"u{i}", 5000 + i, seed=i)
        pairs.append((tmp_path / f"u{i}", f"deep/er/u{i}"))
    res = transfer.upload_many(ep, pairs, sessions=2)
    assert res.files == 5
    for i in range(5):
        assert (workdir / "deep" / "er" / f"u{i}").read_bytes() == (tmp_path / f"u{i}").read_bytes()


# ------------------------------------------------------------------------------ verification
def test_download_hash_mismatch_creates_no_file(ep, workdir, tmp_path, monkeypatch):
    write_random(workdir / "v.bin", 400_000)
    monkeypatch.setattr(Session, "checksum", lambda self, *a, **k: "0" * 64)
    with pytest.raises(IntegrityError, match="SHA-256"):
        transfer.download(ep, "v.bin", tmp_path / "v.bin", sessions=2, split_threshold=THRESHOLD)
    assert not (tmp_path / "v.bin").exists() and leftovers(tmp_path) == []


def test_download_corrupted_temp_is_detected(ep, workdir, tmp_path, monkeypatch):
    write_random(workdir / "v.bin", 300_000)
    real = Session.download_to_fd

    def corrupting(self, remote, fd, offset, length, **kw):
        got = real(self, remote, fd, offset, length, **kw)
        if kw.get("local_offset", 0) == 0:
            os.pwrite(fd, b"\xff\xfe", 10)  # bit rot between arrival and verification
        return got

    monkeypatch.setattr(Session, "download_to_fd", corrupting)
    with pytest.raises(IntegrityError):
        transfer.download(ep, "v.bin", tmp_path / "v.bin", algo="md5")
    assert not (tmp_path / "v.bin").exists() and leftovers(tmp_path) == []


def test_upload_mismatch_raises(ep, workdir, tmp_path, monkeypatch):
    write_random(tmp_path / "u.bin", 250_000)
    real = Session.upload_from_fd

    def corrupting(self, fd, remote, *a, **kw):
        sent = real(self, fd, remote, *a, **kw)
        with open(workdir / remote, "r+b") as f:  # the server stored something else
            f.write(b"garbage")
        return sent

    monkeypatch.setattr(Session, "upload_from_fd", corrupting)
    with pytest.raises(IntegrityError):
        transfer.upload(ep, tmp_path / "u.bin", "u.bin", algo="SHA-512")


def test_verify_false_sends_no_hash(ep, workdir, tmp_path, monkeypatch):
    data = write_random(workdir / "n.bin", 200_000)

    def no_hash(*a, **k):
        raise AssertionError("HASH must not be used with verify=False")

    monkeypatch.setattr(Session, "checksum", no_hash)
    res = transfer.download(ep, "n.bin", tmp_path / "n.bin", sessions=2, split_threshold=THRESHOLD, verify=False)
    assert (tmp_path / "n.bin").read_bytes() == data
    assert not res.verified and res.algo is None and res.checksums == {}


# ------------------------------------------------------------------------------ resume
def _interrupt_at(fraction: float):
    def progress(p):
        if p.total and p.bytes_done >= fraction * p.total:
            raise Interrupted()
    return progress


def test_resume_download(ep, workdir, tmp_path, monkeypatch):
    size = 2_000_003
    data = write_random(workdir / "r.bin", size)
    target = tmp_path / "r.bin"
    with pytest.raises(Interrupted):
        transfer.download(ep, "r.bin", target, sessions=2, split_threshold=THRESHOLD, chunk_size=CHUNK,
                          resume=True, progress=_interrupt_at(0.4))
    assert not target.exists()
    record = json.loads((tmp_path / ("r.bin" + SIDECAR_SUFFIX)).read_text())
    assert record["size"] == size and record["remote"] == "r.bin" and record["done"]
    assert (tmp_path / ("r.bin" + RESUME_SUFFIX)).exists()

    requested = []
    real = Session.download_to_fd

    def counting(self, remote, fd, offset, length, **kw):
        requested.append(length)
        return real(self, remote, fd, offset, length, **kw)

    monkeypatch.setattr(Session, "download_to_fd", counting)
    res = transfer.download(ep, "r.bin", target, sessions=2, split_threshold=THRESHOLD, chunk_size=CHUNK,
                            resume=True)
    assert target.read_bytes() == data
    assert res.resumed_bytes >= 0.35 * size and res.bytes + res.resumed_bytes == size
    assert sum(requested) == res.bytes  # only the rest went over the network
    assert res.verified and leftovers(tmp_path) == []

    # a complete file is checked and skipped
    res = transfer.download(ep, "r.bin", target, resume=True)
    assert res.skipped == 1 and res.bytes == 0 and res.resumed_bytes == size and res.files == 1


def test_resume_download_drops_corrupt_blocks(ep, workdir, tmp_path, monkeypatch):
    monkeypatch.setattr(transfer, "RESUME_CHECK_BLOCK", 64 * 1024)
    size = 1_500_000
    data = write_random(workdir / "c.bin", size)
    target = tmp_path / "c.bin"
    with pytest.raises(Interrupted):
        transfer.download(ep, "c.bin", target, chunk_size=CHUNK, resume=True, progress=_interrupt_at(0.6))
    done = json.loads((tmp_path / ("c.bin" + SIDECAR_SUFFIX)).read_text())["done"]
    claimed = sum(e - s for s, e in done)
    with open(tmp_path / ("c.bin" + RESUME_SUFFIX), "r+b") as f:  # damage one block of the part
        f.seek(done[0][0] + 70_000)
        f.write(b"\0\1\2\3")
    res = transfer.download(ep, "c.bin", target, chunk_size=CHUNK, resume=True)
    assert target.read_bytes() == data
    assert 0 < res.resumed_bytes < claimed  # the bad block was fetched again, the rest kept
    assert claimed - res.resumed_bytes <= 2 * 64 * 1024


def test_resume_download_of_changed_remote_starts_over(ep, workdir, tmp_path):
    write_random(workdir / "ch.bin", 800_000, seed=1)
    target = tmp_path / "ch.bin"
    with pytest.raises(Interrupted):
        transfer.download(ep, "ch.bin", target, chunk_size=CHUNK, resume=True, progress=_interrupt_at(0.5))
    data = write_random(workdir / "ch.bin", 800_000, seed=2)
    os.utime(workdir / "ch.bin", (1_234_567_890, 1_234_567_890))
    res = transfer.download(ep, "ch.bin", target, chunk_size=CHUNK, resume=True)
    assert target.read_bytes() == data and res.resumed_bytes == 0 and res.bytes == 800_000


def test_resume_upload(ep, workdir, tmp_path, monkeypatch):
    size = 1_700_001
    data = write_random(tmp_path / "ru.bin", size)
    with pytest.raises(Interrupted):
        transfer.upload(ep, tmp_path / "ru.bin", "ru.bin", sessions=2, split_threshold=THRESHOLD, chunk_size=CHUNK,
                        progress=_interrupt_at(0.5))
    assert (workdir / "ru.bin").read_bytes() != data
    res = transfer.upload(ep, tmp_path / "ru.bin", "ru.bin", sessions=2, split_threshold=THRESHOLD,
                          chunk_size=CHUNK, resume=True)
    assert (workdir / "ru.bin").read_bytes() == data
    assert res.resumed_bytes > 0.3 * size and res.bytes + res.resumed_bytes == size and res.verified
    res = transfer.upload(ep, tmp_path / "ru.bin", "ru.bin", resume=True)
    assert res.skipped == 1 and res.bytes == 0


# ------------------------------------------------------------------------------ retries
def test_retry_after_killed_download_connection(ep, workdir, tmp_path, monkeypatch):
    size = 1_000_001
    data = write_random(workdir / "k.bin", size)
    calls = []
    real = movers.receive

    def flaky(fp, socks, dest, count, *a, **k):
        calls.append(count)
        if len(calls) == 3:
            raise ConnectionResetError(104, "Connection reset by peer (simulated)")
        return real(fp, socks, dest, count, *a, **k)

    monkeypatch.setattr(movers, "receive", flaky)
    res = transfer.download(ep, "k.bin", tmp_path / "k.bin", sessions=2, split_threshold=THRESHOLD,
                            chunk_size=CHUNK, **FAST)
    assert (tmp_path / "k.bin").read_bytes() == data
    assert res.retries == 1 and res.bytes == size
    assert sum(calls) == size + calls[2]  # only the failed chunk went twice


def test_retry_after_killed_upload_connection(ep, workdir, tmp_path, monkeypatch):
    data = write_random(tmp_path / "k.bin", 700_000)
    calls = []
    real = movers.send

    def flaky(fp, socks, source, *a, **k):
        calls.append(source.length)
        if len(calls) == 2:
            raise ConnectionClosedError("data connection lost (simulated)")
        return real(fp, socks, source, *a, **k)

    monkeypatch.setattr(movers, "send", flaky)
    res = transfer.upload(ep, tmp_path / "k.bin", "k.bin", chunk_size=CHUNK, **FAST)
    assert (workdir / "k.bin").read_bytes() == data and res.retries == 1


def test_retries_exhausted_raise_and_clean_up(ep, workdir, tmp_path, monkeypatch):
    write_random(workdir / "e.bin", 300_000)

    def dead(*a, **k):
        raise ConnectionResetError(104, "Connection reset by peer (simulated)")

    monkeypatch.setattr(movers, "receive", dead)
    with pytest.raises(ConnectionResetError):
        transfer.download(ep, "e.bin", tmp_path / "e.bin", retries=2, **FAST)
    assert not (tmp_path / "e.bin").exists() and leftovers(tmp_path) == []


@pytest.fixture(scope="module")
def auth(uftpd):
    from uftpcore.server import AuthServer

    with AuthServer(uftpd, host="127.0.0.1", port=0, users={"bulkuser": "pw"}, server_name="BULK") as a:
        yield a


def test_retry_after_server_killed_a_session(auth, uftpd, workdir, tmp_path, impl):
    """A server-side session dies mid-transfer: the worker logs in again (re-authenticating if
    the job is gone) and redoes the chunk."""
    size = 2_000_000
    data = write_random(workdir / "s.bin", size)
    ep = uftpcore.Endpoint(auth_url=auth.url, username="bulkuser", password="pw", base_dir=str(workdir),
                           implementation=impl, timeout=10)
    killed = []

    def kill_one(p):
        if not killed and p.bytes_done >= size // 4:
            victims = [s for s in list(uftpd._sessions)
                       if type(s).__name__ == "FTPSession" and s.job.user == "bulkuser"]
            victims[0].abort()
            killed.append(victims[0])

    res = transfer.download(ep, "s.bin", tmp_path / "s.bin", sessions=2, split_threshold=THRESHOLD,
                            chunk_size=CHUNK, progress=kill_one, **FAST)
    assert killed and res.retries >= 1
    assert (tmp_path / "s.bin").read_bytes() == data and res.verified


# ------------------------------------------------------------------------------ limits, pacing
@pytest.fixture(scope="module")
def small_uftpd():
    from uftpcore.server import UFTPD

    with UFTPD(host="127.0.0.1", port=0, cmd_host="127.0.0.1", cmd_port=0, max_connections=2,
               housekeeping_interval=0.2) as srv:
        yield srv


def test_session_limit_reduces_sessions(small_uftpd, tmp_path, impl):
    root = tmp_path / "root"
    root.mkdir()
    data = write_random(root / "l.bin", 1_000_000)
    with job_endpoint(small_uftpd, root, impl, keep=False, user=f"limited-{impl}") as ep:
        res = transfer.download(ep, "l.bin", tmp_path / "l.bin", sessions=4, split_threshold=THRESHOLD)
    assert (tmp_path / "l.bin").read_bytes() == data
    assert res.sessions_used == 2
    assert any("used 2 of the 4" in n for n in res.notes)


def test_bandwidth_limit_roughly_honoured(ep, workdir, tmp_path):
    size = 1_500_000
    data = write_random(workdir / "b.bin", size)
    limit = 3_000_000
    t0 = time.monotonic()
    res = transfer.download(ep, "b.bin", tmp_path / "b.bin", sessions=2, split_threshold=THRESHOLD,
                            bandwidth_limit=limit)
    elapsed = time.monotonic() - t0
    assert (tmp_path / "b.bin").read_bytes() == data
    # (size - initial burst of limit/10) / limit = 0.4 s; loopback alone would take ~10 ms
    assert 0.3 <= elapsed < 5.0
    assert res.rate < 1.5 * limit


def test_progress_reports(ep, workdir, tmp_path):
    size = 1_200_000
    write_random(workdir / "p.bin", size)
    seen = []
    res = transfer.download(ep, "p.bin", tmp_path / "p.bin", sessions=3, split_threshold=THRESHOLD,
                            chunk_size=CHUNK, progress=seen.append)
    done = [p.bytes_done for p in seen]
    assert done == sorted(done) and done[-1] == size == res.bytes
    assert all(p.total == size for p in seen) and seen[-1].files_done == 1 and seen[-1].fraction == 1.0
    assert {p.current_file for p in seen} == {"p.bin"}
    assert any(p.rate > 0 and p.eta is not None for p in seen)


def test_no_secret_in_logs(uftpd, workdir, tmp_path, impl, caplog):
    caplog.set_level(logging.DEBUG)
    write_random(workdir / "q.bin", 300_000)
    with job_endpoint(uftpd, workdir, impl) as ep:
        transfer.download(ep, "q.bin", tmp_path / "q.bin", sessions=2, split_threshold=THRESHOLD)
        secret = ep.ticket.secret
    assert secret not in caplog.text


def test_bad_options(ep, tmp_path):
    with pytest.raises(ValueError):
        transfer.download(ep, "x", tmp_path / "x", sessions=0)
    with pytest.raises(ValueError):
        transfer.download(ep, "x", tmp_path / "x", algo="CRC32")
    with pytest.raises(ValueError):
        transfer.download(ep, "x", tmp_path / "x", bandwidth_limit=0)
