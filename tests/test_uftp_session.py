"""Control-session operations against the UFTPD-compatible server over real loopback sockets."""

from __future__ import annotations

import os
import stat as statmod
import time

import pytest

import uftpcore
from uftpcore.errors import LoginError, NotFoundError, PermissionDeniedError, ReplyError

from .conftest import new_secret


def test_connect_by_host_port_secret_and_features(session):
    assert session.server_version
    assert session.features.epsv
    assert "HASH" in " ".join(session.features.lines)
    assert session.features.keep_alive  # found inside uftpd's merged "MFF ...;KEEP-ALIVE" line
    assert "secret" not in repr(session).lower()
    assert session.system() == "Unix Type: L8"


def test_wrong_secret_is_login_error(uftpd, impl):
    with pytest.raises(LoginError) as err:
        uftpcore.connect("127.0.0.1", uftpd.port, "nosuchsecretatall", timeout=5, implementation=impl)
    assert err.value.code == 530
    assert "nosuchsecretatall" not in str(err.value)


def test_stat_file_and_dir(session, workdir):
    (workdir / "a.txt").write_bytes(b"hello world!")
    os.utime(workdir / "a.txt", (1_700_000_000, 1_700_000_000))
    info = session.stat("a.txt")
    assert info.name == "a.txt" and info.size == 12 and not info.is_dir
    assert info.mtime == pytest.approx(1_700_000_000, abs=1)
    assert statmod.S_ISREG(info.mode)
    assert info.path == str(workdir / "a.txt")
    d = session.stat(".")
    assert d.is_dir and statmod.S_ISDIR(d.mode)
    with pytest.raises(NotFoundError):
        session.stat("missing.txt")
    assert session.exists("a.txt") and not session.exists("missing.txt")
    assert session.size("a.txt") == 12  # SIZE is broken on uftpd 3.5: falls back to MLST


def test_listdir_one_round_trip(session, workdir):
    names = {f"f{i:03d}.bin" for i in range(50)} | {"with space.txt", "ünïcødé.txt"}
    for n in names:
        (workdir / n).write_bytes(b"x" * 3)
    (workdir / "sub").mkdir()
    listing = session.listdir(".")
    assert {i.name for i in listing} == names | {"sub"}
    assert all(i.size == 3 for i in listing if not i.is_dir)
    assert [i for i in listing if i.name == "sub"][0].is_dir
    assert set(session.nlst(".")) == names | {"sub"}
    lines = session.list_lines(".")
    assert any(ln.endswith(" with space.txt") for ln in lines)
    st = session.stat_listing(".")
    assert {i.name for i in st} == names | {"sub"}


def test_directories_rename_remove(session, workdir):
    session.mkdir("d1")
    assert (workdir / "d1").is_dir()
    session.makedirs("d1/a/b/c")
    assert (workdir / "d1/a/b/c").is_dir()
    session.write("d1/file", b"abc")
    session.rename("d1/file", "d1/renamed")
    assert (workdir / "d1/renamed").read_bytes() == b"abc"
    session.remove("d1/renamed")
    assert not (workdir / "d1/renamed").exists()
    with pytest.raises(ReplyError):
        session.rmdir("d1")  # not empty
    for p in ("d1/a/b/c", "d1/a/b", "d1/a", "d1"):
        session.rmdir(p)
    assert not (workdir / "d1").exists()
    with pytest.raises(ReplyError):
        session.remove("nope")


def test_pwd_cwd_cdup_and_base_directory(session, workdir):
    assert session.pwd() == str(workdir)
    (workdir / "sub").mkdir()
    session.cwd("sub")
    assert session.pwd() == str(workdir / "sub")
    session.cdup()
    assert session.pwd() == str(workdir)
    with pytest.raises(PermissionDeniedError) as err:
        session.stat("../..")
    assert err.value.code == 534
    with pytest.raises(PermissionDeniedError):
        session.cdup()


def test_set_mtime_and_chmod(session, workdir):
    (workdir / "t.txt").write_bytes(b"x")
    session.set_mtime("t.txt", 1_600_000_000)
    assert os.stat(workdir / "t.txt").st_mtime == pytest.approx(1_600_000_000, abs=1)
    session.chmod("t.txt", 0o600)
    assert statmod.S_IMODE(os.stat(workdir / "t.txt").st_mode) == 0o600
    assert statmod.S_IMODE(session.stat("t.txt").mode) == 0o600
    # uftpd cannot address spaces in MFMT: the directory part is handled via CWD
    (workdir / "dir with space").mkdir()
    (workdir / "dir with space" / "f").write_bytes(b"y")
    session.set_mtime("dir with space/f", 1_500_000_000)
    assert os.stat(workdir / "dir with space" / "f").st_mtime == pytest.approx(1_500_000_000, abs=1)
    assert session.pwd() == str(workdir)


@pytest.mark.parametrize("algo,hname", [("MD5", "md5"), ("SHA-1", "sha1"), ("SHA-256", "sha256"), ("SHA-512", "sha512")])
def test_checksum_whole_and_range(session, workdir, algo, hname):
    import hashlib

    data = os.urandom(100_000)
    (workdir / "h.bin").write_bytes(data)
    assert session.checksum("h.bin", algo) == hashlib.new(hname, data).hexdigest()
    assert session.checksum("h.bin", algo, offset=1000, length=5000) == hashlib.new(hname, data[1000:6000]).hexdigest()
    a, first, last, _, path = session.hash("h.bin", algo, 10, 5)
    assert (a, first, last, path) == (algo, 10, 14, str(workdir / "h.bin"))


def test_failed_command_does_not_leave_a_range_behind(session, workdir):
    import hashlib

    data = b"0123456789" * 100
    (workdir / "r.bin").write_bytes(data)
    with pytest.raises(NotFoundError):
        session.read_into("missing.bin", bytearray(10), 5)  # RANG sent, RETR fails
    assert session.checksum("r.bin", "MD5") == hashlib.md5(data).hexdigest()
    session.write("w.bin", b"abc")  # ALLO must truncate at 0, not inherit the old range
    assert (workdir / "w.bin").read_bytes() == b"abc"


def test_metadata_round_trip_is_fast(session, workdir):
    (workdir / "m").write_bytes(b"1")
    session.stat("m")
    t0 = time.perf_counter()
    for _ in range(200):
        session.stat("m")
    per = (time.perf_counter() - t0) / 200
    # a naive client waits ~40 ms per reply (Nagle + delayed ACK); we must be far below
    assert per < 0.02, per


def test_persistent_ticket_allows_several_sessions(uftpd, workdir, impl):
    secret = new_secret()
    uftpd.add_job(secret=secret, user="tester", file=str(workdir) + "/", client_ip="127.0.0.1", persistent=True)
    with uftpcore.connect("127.0.0.1", uftpd.port, secret, implementation=impl) as a, \
            uftpcore.connect("127.0.0.1", uftpd.port, secret, implementation=impl) as b:
        a.write("x", b"1")
        assert b.read("x") == b"1"
