"""Single-stream data transfers, parametrized over both implementations."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
import os

import numpy as np
import pytest

from uftpcore.errors import NotFoundError, UFTPError

from .conftest import make_file, sha256_file

SIZES = [0, 1, 4095, 4096, 1 << 20, 3 * (1 << 20) + 7]


@pytest.mark.parametrize("size", SIZES)
def test_download_upload_round_trip(session, workdir, tmp_path, size):
    src = tmp_path / "src.bin"
    digest = make_file(src, size, seed=size)
    assert session.upload(src, "up.bin") == size
    assert sha256_file(workdir / "up.bin") == digest
    out = tmp_path / "out.bin"
    assert session.download("up.bin", out) == size
    assert sha256_file(out) == digest
    assert session.read("up.bin") == src.read_bytes()
    assert [p for p in os.listdir(tmp_path) if "uftp-part" in p] == []


def test_read_into_buffers(session, workdir):
    data = os.urandom(1 << 20)
    (workdir / "d.bin").write_bytes(data)
    ba = bytearray(1 << 20)
    assert session.read_into("d.bin", ba) == len(data) and bytes(ba) == data
    arr = np.zeros(1000, dtype=np.float64)  # 8000 bytes, any buffer type
    assert session.read_into("d.bin", arr, offset=8) == 8000
    assert arr.tobytes() == data[8:8008]
    mv = memoryview(bytearray(100))
    assert session.read_into("d.bin", mv[10:60], offset=500) == 50
    assert bytes(mv[10:60]) == data[500:550]


@pytest.mark.parametrize("offset,length", [(0, 0), (0, 1), (999, 1), (1000, 1), (990, 100), (2000, 10), (0, 5000)])
def test_range_edge_cases(session, workdir, offset, length):
    data = bytes(range(256)) * 4 + b"tail" * 0  # 1024 bytes
    data = data[:1000]
    (workdir / "r.bin").write_bytes(data)
    expect = data[offset:offset + length]
    assert session.read("r.bin", offset, length) == expect
    buf = bytearray(length)
    assert session.read_into("r.bin", buf, offset) == len(expect)
    assert bytes(buf[: len(expect)]) == expect


def test_ranged_download_to_file(session, workdir, tmp_path):
    data = os.urandom(100_000)
    (workdir / "r.bin").write_bytes(data)
    assert session.download("r.bin", tmp_path / "part", offset=5000, length=10_000) == 10_000
    assert (tmp_path / "part").read_bytes() == data[5000:15000]
    # beyond EOF: only what exists
    assert session.download("r.bin", tmp_path / "end", offset=99_990, length=100) == 10
    assert (tmp_path / "end").read_bytes() == data[-10:]


def test_ranged_upload_never_truncates(session, workdir, tmp_path):
    (workdir / "t.bin").write_bytes(b"A" * 100)
    patch = tmp_path / "p"
    patch.write_bytes(b"BBBB")
    session.upload(patch, "t.bin", offset=10)
    assert (workdir / "t.bin").read_bytes() == b"A" * 10 + b"BBBB" + b"A" * 86
    session.write("t.bin", b"CC", offset=200)  # beyond the end: zero-filled gap
    assert (workdir / "t.bin").read_bytes()[100:202] == b"\0" * 100 + b"CC"
    session.write("t.bin", b"short")  # whole-file upload truncates
    assert (workdir / "t.bin").read_bytes() == b"short"


def test_file_objects(session, workdir):
    data = os.urandom(300_000)
    (workdir / "f.bin").write_bytes(data)
    with session.open("f.bin", "rb") as f:
        assert f.read(10) == data[:10]
        f.seek(150_000)
        assert f.read(1000) == data[150_000:151_000]
        f.seek(-5, io.SEEK_END)
        assert f.read() == data[-5:]
        assert f.read() == b""
    raw = session.open("f.bin", "rb", buffering=0)
    raw.seek(299_000)
    buf = bytearray(4096)
    assert raw.readinto(buf) == 1000 and bytes(buf[:1000]) == data[299_000:]
    raw.close()
    with session.open("w.bin", "wb") as w:
        for i in range(0, len(data), 7777):
            w.write(data[i:i + 7777])
    assert (workdir / "w.bin").read_bytes() == data
    with session.open("empty.bin", "wb"):
        pass
    assert (workdir / "empty.bin").read_bytes() == b""


def test_keepalive_random_reads_are_correct(session, workdir):
    import random

    data = os.urandom(2 << 20)
    (workdir / "k.bin").write_bytes(data)
    rng = random.Random(3)
    with session.open("k.bin", "rb", buffering=0) as f:
        for _ in range(300):
            off = rng.randrange(0, len(data) - 4096)
            f.seek(off)
            assert f.read(4096) == data[off:off + 4096]
    # an ordinary transfer after keep-alive reads still works
    assert session.read("k.bin", 0, 100) == data[:100]
    assert session.checksum("k.bin", "MD5") == hashlib.md5(data).hexdigest()


def test_streaming_file_objects(session, workdir):
    data = os.urandom(2_500_000)
    assert session.upload_fileobj(io.BytesIO(data), "s.bin") == len(data)
    assert (workdir / "s.bin").read_bytes() == data
    out = io.BytesIO()
    assert session.download_fileobj("s.bin", out) == len(data)
    assert out.getvalue() == data


def test_names_with_spaces_and_non_ascii(session, workdir, tmp_path):
    name = "dätä with spaces ✓.bin"
    src = tmp_path / "s"
    src.write_bytes(b"payload")
    session.upload(src, name)
    assert (workdir / name).read_bytes() == b"payload"
    assert session.read(name) == b"payload"
    assert name in session.nlst(".")


def test_errors_are_typed(session, tmp_path):
    with pytest.raises(NotFoundError):
        session.download("nope.bin", tmp_path / "x")
    assert not (tmp_path / "x").exists()
    with pytest.raises(NotFoundError):
        session.read("nope.bin")
    session.mkdir("adir")
    with pytest.raises(UFTPError):
        session.download("adir", tmp_path / "y")
    with pytest.raises(ValueError):
        session.read("bad\nname")


@pytest.mark.slow
def test_one_gib_file(session, workdir, tmp_path):
    size = (1 << 30) + 12345
    digest = make_file(workdir / "big.bin", size, seed=9)
    out = tmp_path / "big.out"
    assert session.download("big.bin", out) == size
    assert sha256_file(out) == digest
    assert session.checksum("big.bin", "SHA-256") == digest
    os.unlink(out)
    os.unlink(workdir / "big.bin")


def test_keepalive_read_of_missing_file_keeps_the_session(session, workdir):
    (workdir / "k.bin").write_bytes(b"abcdef" * 1000)
    with session.open("k.bin", "rb", buffering=0) as f:
        f.seek(10)
        assert f.read(6) == (b"abcdef" * 2)[4:10]
    with pytest.raises(NotFoundError):
        session.read_range_exact("gone.bin", bytearray(10), 0)
    assert not session.closed
    assert session.read_range_exact("k.bin", bytearray(6), 6) == 6


def test_partial_file_on_tmpfs_and_disk(tmp_path):
    """Pre-allocation: fallocate on disks, a space check + sparse extension on tmpfs."""
    from uftpcore.localfile import PartialFile, _on_tmpfs

    targets = [tmp_path / "disk.bin"]
    if os.path.isdir("/dev/shm") and _on_tmpfs("/dev/shm/x"):
        targets.append(Path("/dev/shm") / f"uftp-test-{os.getpid()}.bin")
    for target in targets:
        with PartialFile(target, 100_000) as part:
            assert os.fstat(part.fd).st_size == 100_000
            os.pwrite(part.fd, b"x" * 10, 0)
            part.commit()
        assert target.read_bytes()[:10] == b"x" * 10 and target.stat().st_size == 100_000
        target.unlink()
    with pytest.raises(OSError):
        with PartialFile(targets[-1], 1 << 62):
            pass
    assert not targets[-1].exists()
