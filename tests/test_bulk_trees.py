"""uftpcore.transfer trees: round trips with mtimes/modes, many small files, escape refusals, archive mode."""

from __future__ import annotations

import os
import stat

import pytest

from uftpcore import transfer
from uftpcore.errors import UFTPError
from uftpcore.listing import FileInfo
from uftpcore.session import Features, Session

from .bulkhelpers import job_endpoint, leftovers, write_random


@pytest.fixture
def ep(uftpd, workdir, impl):
    with job_endpoint(uftpd, workdir, impl) as endpoint:
        yield endpoint


def make_tree(root, files: int = 10, seed: int = 0) -> dict[str, bytes]:
    """A nested tree with varied sizes, modes and mtimes; returns rel path -> content."""
    content = {}
    for i in range(files):
        rel = f"d{i % 3}/sub{i % 2}/f{i}.bin" if i % 4 else f"top{i}.bin"
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        content[rel] = write_random(path, (i * 7919) % 50_000, seed=seed + i)
        os.chmod(path, 0o600 if i % 2 else 0o644)
        os.utime(path, (1_600_000_000 + i * 100, 1_600_000_000 + i * 100))
    (root / "empty_dir").mkdir()
    big = "d1/big.bin"
    content[big] = write_random(root / big, 900_001, seed=seed + 1000)
    os.utime(root / big, (1_650_000_000, 1_650_000_000))
    for d in ["d0", "d1/sub1", "empty_dir"]:
        os.chmod(root / d, 0o750)
        os.utime(root / d, (1_550_000_000, 1_550_000_000))
    return content


def assert_same_tree(a, b, content):
    for rel, data in content.items():
        pa, pb = a / rel, b / rel
        assert pb.read_bytes() == data, rel
        assert int(pb.stat().st_mtime) == int(pa.stat().st_mtime), rel
        assert stat.S_IMODE(pb.stat().st_mode) == stat.S_IMODE(pa.stat().st_mode), rel
    for d in ["d0", "d1/sub1", "empty_dir"]:
        assert (b / d).is_dir()
        assert int((b / d).stat().st_mtime) == 1_550_000_000, d
        assert stat.S_IMODE((b / d).stat().st_mode) == 0o750, d


def test_tree_round_trip(ep, workdir, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    content = make_tree(src)
    up = transfer.upload_tree(ep, src, "remote/tree", sessions=3, split_threshold=300_000)
    assert up.files == len(content) and up.verified and up.sessions_used == 3
    assert_same_tree(src, workdir / "remote" / "tree", content)

    dst = tmp_path / "dst"
    down = transfer.download_tree(ep, "remote/tree", dst, sessions=3, split_threshold=300_000)
    assert down.files == len(content) and down.verified and down.bytes == sum(map(len, content.values()))
    assert_same_tree(src, dst, content)
    assert leftovers(dst) == []

    again = transfer.download_tree(ep, "remote/tree", dst, sessions=2, resume=True)
    assert again.skipped == len(content) and again.bytes == 0


def test_many_small_files(ep, workdir, tmp_path):
    src = workdir / "many"
    for i in range(200):
        d = src / f"g{i % 8}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"s{i}.txt").write_bytes(f"file {i}\n".encode() * (i % 17))
    res = transfer.download_tree(ep, "many", tmp_path / "many", sessions=4, preserve=False)
    assert res.files == 200 and res.sessions_used == 4 and res.verified
    for i in range(200):
        assert (tmp_path / "many" / f"g{i % 8}" / f"s{i}.txt").read_bytes() == f"file {i}\n".encode() * (i % 17)

    pairs = [(f"many/g{i % 8}/s{i}.txt", tmp_path / "flat" / f"s{i}.txt") for i in range(200)]
    res = transfer.download_many(ep, pairs, sessions=4)
    assert res.files == 200 and len(res.checksums) == 200
    assert (tmp_path / "flat" / "s199.txt").read_bytes() == (src / "g7" / "s199.txt").read_bytes()

    res = transfer.upload_tree(ep, tmp_path / "many", "copy", sessions=4)
    assert res.files == 200 and res.sessions_used == 4
    assert (workdir / "copy" / "g3" / "s11.txt").read_bytes() == (src / "g3" / "s11.txt").read_bytes()


# ------------------------------------------------------------------------------ safety
@pytest.mark.parametrize("evil", ["..", "../evil", "a/../../b", "/etc/passwd", "x\0y", ".", ""])
def test_escaping_remote_names_are_refused(ep, workdir, tmp_path, monkeypatch, evil):
    (workdir / "t").mkdir()
    (workdir / "t" / "ok.txt").write_bytes(b"ok")
    real = Session.listdir

    def lying_listdir(self, path="."):
        entries = real(self, path)
        return entries + [FileInfo(name=evil, size=3, mtime=0.0, is_dir=False, mode=0o100644)]

    monkeypatch.setattr(Session, "listdir", lying_listdir)
    target = tmp_path / "inner" / "target"
    with pytest.raises(UFTPError, match="refusing remote entry"):
        transfer.download_tree(ep, "t", target)
    assert list(tmp_path.iterdir()) == []  # refused while listing, before anything was created


def test_local_symlink_out_of_target_is_not_followed(ep, workdir, tmp_path):
    (workdir / "t" / "sub").mkdir(parents=True)
    (workdir / "t" / "sub" / "x.txt").write_bytes(b"payload")
    outside = tmp_path / "outside"
    outside.mkdir()
    target = tmp_path / "target"
    target.mkdir()
    os.symlink(outside, target / "sub")
    with pytest.raises(UFTPError, match="symlink"):
        transfer.download_tree(ep, "t", target)
    assert list(outside.iterdir()) == []

    # a symlink inside the target that stays inside is fine
    os.unlink(target / "sub")
    (target / "real").mkdir()
    os.symlink(target / "real", target / "sub")
    transfer.download_tree(ep, "t", target)
    assert (target / "real" / "x.txt").read_bytes() == b"payload"


def test_check_remote_name():
    from uftpcore.trees import check_relative_path, check_remote_name

    assert check_remote_name("a b.txt") == "a b.txt" and check_remote_name("..x") == "..x"
    for bad in ["..", ".", "", "a/b", "nul\0"]:
        with pytest.raises(UFTPError):
            check_remote_name(bad)
    with pytest.raises(UFTPError, match="absolute"):
        check_relative_path("/abs")
    with pytest.raises(UFTPError):
        check_relative_path("a/../b")


def test_upload_tree_skips_symlinks_and_refuses_unaddressable_names(ep, workdir, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "real.txt").write_bytes(b"r")
    os.symlink("/etc/hostname", src / "link")
    res = transfer.upload_tree(ep, src, "up")
    assert (workdir / "up" / "real.txt").read_bytes() == b"r" and not (workdir / "up" / "link").exists()
    assert any("skipped 1" in n for n in res.notes)
    (src / " lead").write_bytes(b"x")
    with pytest.raises(UFTPError, match="cannot address"):
        transfer.upload_tree(ep, src, "up2")


# ------------------------------------------------------------------------------ archive mode
def test_archive_upload(ep, workdir, tmp_path):
    with ep.session() as s:
        if not s.features.archive:
            pytest.skip("server does not advertise ARCHIVE in FEAT")
    src = tmp_path / "src"
    src.mkdir()
    content = make_tree(src, files=30)
    seen = []
    res = transfer.upload_tree(ep, src, "arch", sessions=3, archive=True, progress=seen.append)
    assert res.files == len(content) and res.verified and res.sessions_used == 3
    assert_same_tree(src, workdir / "arch", content)
    assert seen[-1].bytes_done == sum(map(len, content.values()))


def test_archive_refused_without_server_support(ep, tmp_path, monkeypatch):
    real_init = Features.__init__

    def no_archive(self, lines):
        real_init(self, lines)
        self.archive = False

    monkeypatch.setattr(Features, "__init__", no_archive)
    (tmp_path / "f").write_bytes(b"1")
    with pytest.raises(UFTPError, match="archive mode"):
        transfer.upload_tree(ep, tmp_path, "x", archive=True)
    with pytest.raises(ValueError, match="resume"):
        transfer.upload_tree(ep, tmp_path, "x", archive=True, resume=True)
