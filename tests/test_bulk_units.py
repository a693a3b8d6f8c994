"""Unit tests of the bulk engine's helpers: extents, resume record, pacing, progress, retries, tar."""

from __future__ import annotations

import errno
import hashlib
import io
import os
import tarfile
import threading
from pathlib import Path

import pytest

from uftpcore.errors import (
    AuthenticationError,
    ConnectionClosedError,
    IntegrityError,
    LoginError,
    NotFoundError,
    ReplyError,
    TransferIncompleteError,
    UFTPError,
    UFTPTimeoutError,
)
from uftpcore.hashing import digest_fd_range, normalize_algo
from uftpcore.progress import ProgressTracker
from uftpcore.ratelimit import ChunkSizer, TokenBucket
from uftpcore.resume import RemoteIdentity, ResumeFile, complement, merge, split, subtract, total
from uftpcore.retry import RetryPolicy, is_retryable, is_session_limit
from uftpcore.trees import TarMember, TarStream


def test_extent_arithmetic():
    assert merge([(5, 10), (0, 5), (20, 30), (25, 26), (40, 40)]) == [(0, 10), (20, 30)]
    assert complement([(0, 10), (20, 30)], 35) == [(10, 20), (30, 35)]
    assert complement([], 7) == [(0, 7)] and complement([(0, 7)], 7) == []
    assert total([(0, 10), (20, 30)]) == 20
    assert subtract([(0, 100)], 10, 20) == [(0, 10), (20, 100)]
    pieces = split([(0, 10), (10, 11)], 4)
    assert pieces == [(0, 4), (4, 8), (8, 10), (10, 11)]
    assert all(e - s <= 4 for s, e in split([(3, 1003)], 4))
    assert total(split([(3, 1003)], 333)) == 1000


def test_resume_record_round_trip(tmp_path):
    final = str(tmp_path / "f.bin")
    ident = RemoteIdentity("remote/f.bin", 1000, 1_600_000_000.0)
    rf = ResumeFile(final, ident, "SHA-256")
    assert rf.open() == []
    os.pwrite(rf.fd, b"a" * 300, 0)
    rf.record(0, 300)
    rf.record(500, 600)
    rf.suspend()
    again = ResumeFile(final, ident)
    assert again.open() == [(0, 300), (500, 600)]
    again.forget(100, 200)
    assert again.done == [(0, 100), (200, 300), (500, 600)]
    again.suspend()
    other = ResumeFile(final, RemoteIdentity("remote/f.bin", 1000, 1_700_000_000.0))
    assert other.open() == []  # the remote file changed: start over
    other.commit()
    assert os.path.getsize(final) == 1000 and sorted(os.listdir(tmp_path)) == ["f.bin"]


def test_token_bucket_debt_is_shared():
    now = [0.0]
    bucket = TokenBucket(1000, burst=100, clock=lambda: now[0])
    assert bucket.reserve(100) == 0.0
    assert bucket.reserve(500) == pytest.approx(0.5)
    assert bucket.reserve(500) == pytest.approx(1.0)  # queued behind the first debt
    now[0] = 1.0
    assert bucket.reserve(0) == pytest.approx(0.0)
    assert TokenBucket(3_000_000).chunk_cap() % 16384 == 0
    with pytest.raises(ValueError):
        TokenBucket(0)


def test_chunk_sizer_adapts_within_bounds():
    s = ChunkSizer(initial=8 << 20, minimum=1 << 20, maximum=64 << 20, target_seconds=0.5)
    s.observe(8 << 20, 0.01)  # very fast: at most doubles
    assert s.size == 16 << 20
    for _ in range(10):
        s.observe(s.size, 0.01)
    assert s.size == 64 << 20
    s.observe(64 << 20, 10.0)  # very slow: at most halves
    assert s.size == 32 << 20
    assert s.next(5) == 5
    assert ChunkSizer(fixed=1000).next(5000) == 1000
    capped = ChunkSizer(cap=100_000)
    assert capped.next(10 << 20) <= 100_000


def test_progress_tracker_serialises_and_measures():
    now = [0.0]
    seen = []
    tr = ProgressTracker(seen.append, clock=lambda: now[0])
    tr.set_total(1000, 2)
    tr.add_resumed(100)
    now[0] = 1.0
    tr.add(400, "a")
    now[0] = 2.0
    tr.add(300, "b")
    tr.file_done("b")
    last = seen[-1]
    assert last.bytes_done == 800 and last.files_done == 1 and last.current_file == "b"
    assert last.rate == pytest.approx(350.0) and last.eta == pytest.approx(200 / 350)
    assert last.fraction == pytest.approx(0.8)

    calls = []
    inside = threading.Lock()

    def cb(p):
        assert inside.acquire(blocking=False), "callbacks must not overlap"
        calls.append(p.bytes_done)
        inside.release()

    tr = ProgressTracker(cb)
    threads = [threading.Thread(target=lambda: [tr.add(1) for _ in range(500)]) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls == sorted(calls) and calls[-1] == 2000


def test_retry_classification():
    assert is_retryable(ConnectionClosedError("x"))
    assert is_retryable(UFTPTimeoutError("x"))
    assert is_retryable(ConnectionResetError(errno.ECONNRESET, "reset"))
    assert is_retryable(OSError(errno.EPIPE, "pipe"))
    assert is_retryable(AuthenticationError("cannot reach"))
    assert not is_retryable(OSError(errno.ENOSPC, "disk full"))
    assert not is_retryable(NotFoundError(550, "gone"))  # a FileNotFoundError, but an answer
    assert not is_retryable(ReplyError(500, "boom"))
    assert not is_retryable(IntegrityError("bad"))
    assert not is_retryable(TransferIncompleteError("shrank"))
    assert not is_retryable(AuthenticationError("refused", status=401))
    assert is_session_limit(LoginError(500, "Too many active transfer requests / sessions for 'u'"))
    assert is_session_limit(AuthenticationError("... Too many active sessions for 'u' ...", status=500))
    assert not is_session_limit(LoginError(530, "Not logged in"))
    p = RetryPolicy(5, (0.5, 2.0))
    assert all(0.25 <= p.delay(1) <= 0.5 for _ in range(20))
    assert all(p.delay(10) <= 2.0 for _ in range(20))
    with pytest.raises(ValueError):
        RetryPolicy(-1)


def test_hash_helpers(tmp_path):
    data = os.urandom(3 << 20)
    (tmp_path / "h").write_bytes(data)
    fd = os.open(tmp_path / "h", os.O_RDONLY)
    try:
        assert digest_fd_range(fd, 5, 2 << 20, "sha256") == hashlib.sha256(data[5:5 + (2 << 20)]).hexdigest()
        with pytest.raises(UFTPError, match="ended"):
            digest_fd_range(fd, len(data) - 10, 20, "MD5")
    finally:
        os.close(fd)
    assert normalize_algo("sha512") == "SHA-512" and normalize_algo("SHA1") == "SHA-1"
    with pytest.raises(ValueError):
        normalize_algo("crc32")


def test_tar_stream_is_a_valid_tar(tmp_path):
    members = []
    for i, size in enumerate([0, 1, 511, 512, 513, 3 << 20]):
        p = tmp_path / f"m{i}"
        p.write_bytes(os.urandom(size))
        members.append(TarMember(f"dir {i}/ünï{i}.bin", str(p), size, 1_600_000_000 + i, 0o100640))
    seen = {}
    raw = TarStream(members, lambda m, d: seen.__setitem__(m.rel, seen.get(m.rel, 0) + len(d)), chunk=100_000)
    stream = io.BufferedReader(raw, 65536)
    with tarfile.open(fileobj=stream, mode="r|") as tar:
        for m, info in zip(members, tar):
            assert info.name == m.rel and info.size == m.size and info.mtime == int(m.mtime)
            assert info.mode == 0o640
            assert tar.extractfile(info).read() == Path(m.path).read_bytes()
    assert seen == {m.rel: m.size for m in members if m.size}

    members[1].size = 10  # the file is shorter than announced: an error, never padding
    with pytest.raises(UFTPError, match="shrank"):
        TarStream(members[1:2]).read()
