"""Directories and metadata through a real UFTP FUSE mount, and what they cost on the wire."""

from __future__ import annotations

import errno
import os
import stat
import subprocess
import time

import pytest

from .fuse_support import CommandCounter, mount_factory  # noqa: F401 - fixture


def test_ls_l_of_1000_files_is_one_listing(workdir, mount_factory, monkeypatch):  # noqa: F811
    d = workdir / "many"
    d.mkdir()
    for i in range(1000):
        (d / f"file{i:04d}.dat").write_bytes(b"x" * (i % 50))
    m = mount_factory(workdir)
    counter = CommandCounter(monkeypatch)
    t0 = time.monotonic()
    out = subprocess.run(["ls", "-l", "--time-style=+%s", str(m / "many")], capture_output=True, text=True,
                         timeout=60, check=True).stdout
    elapsed = time.monotonic() - t0
    lines = [ln for ln in out.splitlines() if ln.startswith("-")]
    assert len(lines) == 1000
    sizes = {ln.split()[-1]: int(ln.split()[4]) for ln in lines}
    assert sizes["file0049.dat"] == 49 and sizes["file0050.dat"] == 0
    # one MLSD for the directory; no MLST (or anything) per file
    assert counter.counts["MLSD"] == 1, counter.counts
    assert counter.counts["MLST"] <= 2, counter.counts
    assert sum(counter.counts.values()) < 20, counter.counts
    assert elapsed < 10, f"ls -l of 1000 files took {elapsed:.1f} s"
    # a second ls within the TTL costs nothing at all
    counter.reset()
    subprocess.run(["ls", "-l", str(m / "many")], capture_output=True, timeout=60, check=True)
    assert counter.counts["MLSD"] == 0 and counter.counts["MLST"] == 0, counter.counts


def test_missing_names_are_cached(workdir, mount_factory, monkeypatch):  # noqa: F811
    # the kernel must ask us each time; our negative entries live 1 s
    m = mount_factory(workdir, options="negative_timeout=0,negative_ttl=1")
    counter = CommandCounter(monkeypatch)
    for _ in range(5):
        assert not os.path.exists(m / "nothere")
    assert counter.counts["MLST"] + counter.counts["MLSD"] <= 1, counter.counts
    (workdir / "later").write_text("x")  # created behind the mount's back...
    time.sleep(1.2)  # ...appears once the negative entry expired
    assert os.path.exists(m / "later")


def test_directory_operations(workdir, mount_factory):  # noqa: F811
    m = mount_factory(workdir)
    os.mkdir(m / "a")
    os.makedirs(m / "a" / "b" / "c")
    assert (workdir / "a" / "b" / "c").is_dir()
    (m / "a" / "b" / "c" / "f.txt").write_text("hello")
    assert sorted(os.listdir(m / "a")) == ["b"]
    with pytest.raises(OSError) as info:
        os.rmdir(m / "a" / "b" / "c")
    assert info.value.errno in (errno.ENOTEMPTY, errno.EIO, errno.EEXIST)
    # rename a file, then a whole directory with content
    os.rename(m / "a" / "b" / "c" / "f.txt", m / "a" / "g.txt")
    assert (workdir / "a" / "g.txt").read_text() == "hello"
    assert not (m / "a" / "b" / "c" / "f.txt").exists()
    os.rename(m / "a" / "b", m / "moved")
    assert (workdir / "moved" / "c").is_dir() and not (workdir / "a" / "b").exists()
    assert os.listdir(m / "moved") == ["c"]
    assert sorted(os.listdir(m)) == ["a", "moved"]
    # rename over an existing file replaces it
    (m / "x.txt").write_text("x")
    (m / "y.txt").write_text("y")
    os.replace(m / "x.txt", m / "y.txt")
    assert (m / "y.txt").read_text() == "x" and not (m / "x.txt").exists()
    os.unlink(m / "y.txt")
    os.unlink(m / "a" / "g.txt")
    os.rmdir(m / "moved" / "c")
    os.rmdir(m / "moved")
    os.rmdir(m / "a")
    assert os.listdir(m) == [] and os.listdir(workdir) == []
    with pytest.raises(FileNotFoundError):
        os.stat(m / "a")
    with pytest.raises(FileNotFoundError):
        os.unlink(m / "nothing")


def test_chmod_and_utime(workdir, mount_factory):  # noqa: F811
    m = mount_factory(workdir)
    (m / "f.sh").write_text("#!/bin/sh\n")
    os.chmod(m / "f.sh", 0o750)
    assert stat.S_IMODE(os.stat(workdir / "f.sh").st_mode) == 0o750
    assert stat.S_IMODE(os.stat(m / "f.sh").st_mode) == 0o750
    when = 1_600_000_000
    os.utime(m / "f.sh", (when, when))
    assert int(os.stat(workdir / "f.sh").st_mtime) == when
    assert int(os.stat(m / "f.sh").st_mtime) == when
    # cp -p: data, mode and time survive (chown to ourselves is accepted)
    src = workdir / "src.txt"
    src.write_text("preserved")
    os.chmod(src, 0o640)
    os.utime(src, (when, when))
    subprocess.run(["cp", "-p", str(m / "src.txt"), str(m / "dst.txt")], check=True, timeout=30)
    st = os.stat(workdir / "dst.txt")
    assert (workdir / "dst.txt").read_text() == "preserved"
    assert int(st.st_mtime) == when and stat.S_IMODE(st.st_mode) == 0o640


def test_attributes(workdir, mount_factory):  # noqa: F811
    (workdir / "f.bin").write_bytes(b"z" * 1234)
    (workdir / "sub").mkdir()
    m = mount_factory(workdir)
    st = os.stat(m / "f.bin")
    assert stat.S_ISREG(st.st_mode) and st.st_size == 1234 and st.st_nlink == 1
    assert st.st_uid == os.getuid() and st.st_gid == os.getgid()
    assert abs(st.st_mtime - os.stat(workdir / "f.bin").st_mtime) < 2
    assert stat.S_ISDIR(os.stat(m / "sub").st_mode)
    assert stat.S_ISDIR(os.stat(m).st_mode)
    with pytest.raises(NotADirectoryError):
        os.listdir(m / "f.bin")
    with pytest.raises(IsADirectoryError), open(m / "sub", "rb"):
        pass
    vfs = os.statvfs(m)
    assert vfs.f_bavail > 0 and vfs.f_namemax >= 255
