"""Writing through a real UFTP FUSE mount: streamed, at offsets, truncate, read-back."""

from __future__ import annotations

import errno
import hashlib
import os
import random
import shutil

import pytest

from .conftest import make_file, sha256_file
from .fuse_support import CommandCounter, drop_page_cache, mount_factory  # noqa: F401 - fixture

MiB = 1 << 20


@pytest.fixture
def wdir(workdir):
    return workdir


def test_sequential_write_is_one_upload(wdir, mount_factory, monkeypatch):  # noqa: F811
    m = mount_factory(wdir)
    counter = CommandCounter(monkeypatch)
    rng = random.Random(1)
    data = rng.randbytes(40 * MiB + 12345)
    with open(m / "seq.bin", "wb") as f:
        f.writelines(data[i:i + MiB] for i in range(0, len(data), MiB))
    assert (wdir / "seq.bin").read_bytes() == data
    assert counter.counts["STOR"] <= 2, counter.counts  # create + one streamed upload
    drop_page_cache(m / "seq.bin")
    assert hashlib.sha256((m / "seq.bin").read_bytes()).digest() == hashlib.sha256(data).digest()


def test_copy_in_and_out(wdir, tmp_path, mount_factory, impl):  # noqa: F811
    src = tmp_path / "src.bin"
    digest = make_file(src, 9 * MiB + 77, seed=4)
    m = mount_factory(wdir, impl=impl)
    shutil.copyfile(src, m / "copy.bin")
    assert sha256_file(wdir / "copy.bin") == digest
    shutil.copyfile(m / "copy.bin", tmp_path / "back.bin")
    assert sha256_file(tmp_path / "back.bin") == digest


def test_writes_at_offsets(wdir, mount_factory):  # noqa: F811
    rng = random.Random(2)
    model = bytearray(rng.randbytes(3 * MiB + 5))
    (wdir / "patch.bin").write_bytes(model)
    m = mount_factory(wdir)
    fd = os.open(m / "patch.bin", os.O_RDWR)
    try:
        for _ in range(60):
            off = rng.randrange(0, len(model) + 100_000)
            chunk = rng.randbytes(rng.choice((1, 100, 4096, 70_000, 300_000)))
            os.pwrite(fd, chunk, off)
            if off > len(model):
                model.extend(b"\0" * (off - len(model)))
            model[off:off + len(chunk)] = chunk
            if rng.random() < 0.2:  # read-your-writes on the same descriptor
                roff = rng.randrange(0, len(model))
                assert os.pread(fd, 5000, roff) == bytes(model[roff:roff + 5000])
        os.fsync(fd)
    finally:
        os.close(fd)
    assert (wdir / "patch.bin").read_bytes() == bytes(model)
    drop_page_cache(m / "patch.bin")
    assert (m / "patch.bin").read_bytes() == bytes(model)


def test_overwrite_start_keeps_the_rest(wdir, mount_factory):  # noqa: F811
    (wdir / "keep.txt").write_bytes(b"0123456789abcdef")
    m = mount_factory(wdir)
    with open(m / "keep.txt", "r+b") as f:
        f.write(b"XY")
    assert (wdir / "keep.txt").read_bytes() == b"XY23456789abcdef"
    with open(m / "keep.txt", "ab") as f:
        f.write(b"++")
    assert (wdir / "keep.txt").read_bytes() == b"XY23456789abcdef++"
    with open(m / "keep.txt", "wb") as f:  # O_TRUNC
        f.write(b"new")
    assert (wdir / "keep.txt").read_bytes() == b"new"


def test_truncate(wdir, mount_factory):  # noqa: F811
    data = bytes(range(256)) * 4096  # 1 MiB
    (wdir / "t.bin").write_bytes(data)
    m = mount_factory(wdir)
    os.truncate(m / "t.bin", 300_001)
    assert (wdir / "t.bin").read_bytes() == data[:300_001]
    os.truncate(m / "t.bin", 400_000)
    assert (wdir / "t.bin").read_bytes() == data[:300_001] + b"\0" * 99_999
    assert os.path.getsize(m / "t.bin") == 400_000
    os.truncate(m / "t.bin", 0)
    assert (wdir / "t.bin").read_bytes() == b""
    with open(m / "t.bin", "r+b") as f:
        f.write(b"abc")
        f.truncate(2)
    assert (wdir / "t.bin").read_bytes() == b"ab"
    assert (m / "t.bin").read_bytes() == b"ab"


def test_size_visible_while_writing(wdir, mount_factory):  # noqa: F811
    m = mount_factory(wdir)
    with open(m / "grow.bin", "wb") as f:
        f.write(b"x" * 300_000)
        f.flush()
        assert os.fstat(f.fileno()).st_size == 300_000
        assert os.stat(m / "grow.bin").st_size == 300_000
    assert os.stat(m / "grow.bin").st_size == 300_000


def test_many_small_files(wdir, mount_factory):  # noqa: F811
    m = mount_factory(wdir)
    for i in range(200):
        (m / f"s{i}.txt").write_text(f"file {i}\n" * (i % 7))
    for i in range(200):
        assert (wdir / f"s{i}.txt").read_text() == f"file {i}\n" * (i % 7)
    assert sorted(os.listdir(m)) == sorted(f"s{i}.txt" for i in range(200))


def test_read_only_mount_refuses_changes(wdir, mount_factory):  # noqa: F811
    (wdir / "ro.txt").write_text("read me")
    m = mount_factory(wdir, read_only=True)
    assert (m / "ro.txt").read_text() == "read me"
    for action in (lambda: (m / "new.txt").write_text("x"), lambda: os.open(m / "ro.txt", os.O_RDWR),
                   lambda: os.mkdir(m / "d"), lambda: os.unlink(m / "ro.txt"),
                   lambda: os.rename(m / "ro.txt", m / "r2.txt")):
        with pytest.raises(OSError) as info:
            action()
        assert info.value.errno == errno.EROFS
    assert (wdir / "ro.txt").read_text() == "read me"


def test_concurrent_writers(wdir, mount_factory):  # noqa: F811
    """More writers than spare sessions: some stream, the others coalesce and send ranged writes."""
    import threading

    m = mount_factory(wdir, options="max_sessions=4,write_buffer=1M")
    blobs = {f"c{i}.bin": random.Random(i).randbytes(6 * MiB + i * 1000) for i in range(8)}
    errors: list[BaseException] = []

    def writer(name: str) -> None:
        try:
            data = blobs[name]
            with open(m / name, "wb") as f:
                f.writelines(data[k:k + 128 * 1024] for k in range(0, len(data), 128 * 1024))
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in blobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    for name, data in blobs.items():
        assert (wdir / name).read_bytes() == data, name


def test_unlink_while_open(wdir, mount_factory):  # noqa: F811
    (wdir / "gone.txt").write_bytes(b"still readable")
    m = mount_factory(wdir)
    with open(m / "gone.txt", "rb") as f:
        os.unlink(m / "gone.txt")
        assert not (m / "gone.txt").exists()
        assert f.read() == b"still readable"
    import time

    deadline = time.monotonic() + 5  # RELEASE (which removes libfuse's .fuse_hidden file) is asynchronous
    while list(wdir.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert list(wdir.iterdir()) == []
