"""Reading through a real UFTP FUSE mount: whole files, random offsets, concurrent readers."""

from __future__ import annotations

import hashlib
import os
import random
import threading

import pytest

from .conftest import make_file, sha256_file
from .fuse_support import drop_page_cache, mount_factory  # noqa: F401 - fixture

GiB = 1 << 30
MiB = 1 << 20


@pytest.fixture(scope="module")
def big_dir(uftpd_root):
    """A directory with a 1 GiB file generated at test time (and removed afterwards)."""
    d = uftpd_root / "fuse-big"
    d.mkdir(exist_ok=True)
    digest = make_file(d / "big.bin", GiB, seed=11)
    yield d, digest
    for p in d.iterdir():
        p.unlink()
    d.rmdir()


def _sha256_of(path, chunk: int = MiB) -> str:
    h = hashlib.sha256()
    with open(path, "rb", buffering=0) as f:
        buf = bytearray(chunk)
        view = memoryview(buf)
        while n := f.readinto(buf):
            h.update(view[:n])
    return h.hexdigest()


def test_sequential_read_1gib_sha256(big_dir, mount_factory):  # noqa: F811
    d, digest = big_dir
    m = mount_factory(d)
    assert os.path.getsize(m / "big.bin") == GiB
    assert _sha256_of(m / "big.bin") == digest


def test_10000_random_preads_match_the_source(big_dir, mount_factory):  # noqa: F811
    d, _ = big_dir
    m = mount_factory(d)
    src = os.open(d / "big.bin", os.O_RDONLY)
    fd = os.open(m / "big.bin", os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        rng = random.Random(5)
        sizes = (1, 17, 4096, 4096, 4096, 65536, 131072, 300_000)
        for i in range(10_000):
            size = rng.choice(sizes)
            if i % 500 == 0:  # the tail, across and beyond the end of the file
                offset = GiB - rng.randrange(0, 2 * size + 2)
            else:
                offset = rng.randrange(0, GiB)
            got = os.pread(fd, size, offset)
            want = os.pread(src, size, offset)
            assert got == want, f"pread({size}, {offset}) differs"
    finally:
        os.close(fd)
        os.close(src)


def test_eight_concurrent_readers(uftpd_root, mount_factory):  # noqa: F811
    """Eight threads: four read their own file, four share one file from different starts."""
    d = uftpd_root / "fuse-concurrent"
    d.mkdir(exist_ok=True)
    digests = {f"own{i}.bin": make_file(d / f"own{i}.bin", 24 * MiB + i * 4099, seed=20 + i) for i in range(4)}
    shared_digest = make_file(d / "shared.bin", 48 * MiB + 123, seed=30)
    m = mount_factory(d)
    results: dict[str, str] = {}
    errors: list[BaseException] = []

    def read_own(name: str) -> None:
        try:
            results[name] = _sha256_of(m / name, chunk=256 * 1024)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    def read_shared(k: int) -> None:
        # read the shared file in a rotated order, check every chunk against the source
        try:
            size = os.path.getsize(d / "shared.bin")
            chunk = 1 * MiB
            starts = list(range(0, size, chunk))
            starts = starts[k * len(starts) // 4:] + starts[:k * len(starts) // 4]
            with open(m / "shared.bin", "rb", buffering=0) as f, open(d / "shared.bin", "rb") as g:
                for s in starts:
                    f.seek(s)
                    g.seek(s)
                    assert f.read(chunk) == g.read(chunk), f"reader {k} chunk at {s}"
            results[f"shared{k}"] = "ok"
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=read_own, args=(n,)) for n in digests]
    threads += [threading.Thread(target=read_shared, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    for name, digest in digests.items():
        assert results[name] == digest, name
    assert all(results[f"shared{k}"] == "ok" for k in range(4))
    assert sha256_file(d / "shared.bin") == shared_digest


@pytest.mark.parametrize("options", ["", "block_size=4K,prefetch_initial=64K,prefetch_max=256K,cache_size=1M",
                                     "random_size=4K,cache_size=0"])
def test_small_and_odd_files(uftpd_root, mount_factory, impl, options):  # noqa: F811
    """Sizes around block and window boundaries, read whole and by pieces, both implementations,
    default and tiny cache/window settings."""
    d = uftpd_root / f"fuse-odd-{impl}-{len(options)}"
    d.mkdir(exist_ok=True)
    sizes = [0, 1, 4095, 4096, 4097, 131071, 131072, 131073, 1_179_648, 1_179_649, 3 * MiB + 7]
    for s in sizes:
        make_file(d / f"f{s}", s, seed=s % 97)
    m = mount_factory(d, options=options, impl=impl)
    for s in sizes:
        want = (d / f"f{s}").read_bytes()
        assert (m / f"f{s}").read_bytes() == want, s
        drop_page_cache(m / f"f{s}")
        with open(m / f"f{s}", "rb", buffering=0) as f:
            parts = []
            while piece := f.read(10_000):
                parts.append(piece)
        assert b"".join(parts) == want, s
    # a backwards read pattern (every block read after its successor)
    s = 3 * MiB + 7
    want = (d / f"f{s}").read_bytes()
    drop_page_cache(m / f"f{s}")
    fd = os.open(m / f"f{s}", os.O_RDONLY)
    try:
        for off in range(s - s % 65536, -1, -65536):
            assert os.pread(fd, 65536, off) == want[off:off + 65536], off
    finally:
        os.close(fd)


def test_remote_change_seen_after_ttl(uftpd_root, mount_factory):  # noqa: F811
    d = uftpd_root / "fuse-change"
    d.mkdir(exist_ok=True)
    (d / "f.txt").write_bytes(b"first version")
    m = mount_factory(d, options="attr_ttl=0.2,attr_timeout=0.1,entry_timeout=0.1")
    assert (m / "f.txt").read_bytes() == b"first version"
    (d / "f.txt").write_bytes(b"second, longer version")
    import time

    time.sleep(0.5)
    assert (m / "f.txt").read_bytes() == b"second, longer version"
