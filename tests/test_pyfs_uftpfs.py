"""UFTPFS (PyFilesystem2): PyUNICORE's constructor and opener, lazy ``fs`` import, file semantics,
fast paths (range reads, server-side hash, rename, pwrite/sendfile transfers)."""

from __future__ import annotations

import hashlib
import io
import os
import random
import subprocess
import sys
import threading

import numpy as np
import pytest

from tests.fsconfig import KEY_PASSPHRASE, KEY_USER, PASSWORD, TOKEN, USER, hostpart

pytest_plugins = ("tests.fsfixtures",)  # fixtures: auth, rsa_identity

fs_errors = pytest.importorskip("fs.errors")


def payload(n: int, seed: int = 0) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()


@pytest.fixture
def ufs(auth, workdir):
    from pyunicore_fast.credentials import UsernamePassword
    from pyunicore_fast.uftp.uftpfs import UFTPFS

    fsys = UFTPFS(auth.url, UsernamePassword(USER, PASSWORD), str(workdir))
    yield fsys
    fsys.close()


# ------------------------------------------------------------------ import and construction
def test_module_imports_without_fs():
    """``fs`` is optional: the module imports without it; using UFTPFS then explains the extra."""
    code = ("import sys; sys.modules['fs'] = None\n"
            "import pyunicore_fast.uftp.uftpfs as m\n"
            "try:\n    m.UFTPFS\nexcept ImportError as e:\n    print('HINT', e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "HINT" in out and "setuptools<82" in out and "pyunicore_fast[fs]" in out


def test_opener_entry_point_and_url(auth, workdir):
    from fs import open_fs
    from fs.opener import registry

    from pyunicore_fast.uftp.uftpfs import UFTPFS, UFTPOpener

    assert isinstance(registry.get_opener("uftp+https"), UFTPOpener)
    # PyUNICORE (a dev dependency here) registers "uftp" too; either may be found first
    assert type(registry.get_opener("uftp")).__name__ == "UFTPOpener"
    (workdir / "f.txt").write_text("via url")
    with open_fs(f"uftp+http://{USER}:{PASSWORD}@{hostpart(auth)}:{workdir}") as ufs:
        assert isinstance(ufs, UFTPFS)
        assert ufs.readtext("f.txt") == "via url"
        assert ufs.uftp_host == "127.0.0.1" and ufs.base_path == str(workdir)
        assert repr(ufs) == f"UFTPFS('127.0.0.1', port={ufs.uftp_port!r}), base_path={str(workdir)!r}"


def test_opener_token_and_identity(auth, workdir, rsa_identity, monkeypatch):
    from fs import open_fs

    (workdir / "t.txt").write_text("tok")
    monkeypatch.setenv("TOK_VAR", TOKEN)
    with open_fs(f"uftp+http://{hostpart(auth)}:{workdir}?token=@@TOK_VAR") as ufs:
        assert ufs.readtext("t.txt") == "tok"
    key = rsa_identity[0]
    with open_fs(f"uftp+http://{KEY_USER}:{KEY_PASSPHRASE}@{hostpart(auth)}:{workdir}?identity={key}") as ufs:
        assert ufs.readtext("t.txt") == "tok"


def test_opener_create_makes_base(auth, workdir):
    from fs import open_fs

    with open_fs(f"uftp+http://{USER}:{PASSWORD}@{hostpart(auth)}:{workdir}/made/here", create=True) as ufs:
        ufs.writetext("x", "y")
    assert (workdir / "made" / "here" / "x").read_text() == "y"


def test_pyunicore_opener_helpers(tmp_path, monkeypatch):
    """The checks of PyUNICORE's tests/unit/test_uftpfs.py."""
    from fs.opener.parse import ParseResult, parse_fs_url

    from pyunicore_fast.uftp.uftpfs import UFTPOpener

    op = UFTPOpener()
    assert op._parse("localhost:9000/rest/auth/TEST:/data") == ("https://localhost:9000/rest/auth/TEST", "/data")
    assert op._parse("localhost:9000/rest/auth/TEST") == ("https://localhost:9000/rest/auth/TEST", "/")
    cred = op._create_credential(parse_fs_url("uftp://demouser:test123@localhost:9000/rest/auth/TEST:/data"))
    assert cred.username == "demouser" and cred.password == "test123"
    tok = tmp_path / "token.txt"
    tok.write_text("some_token\n")
    monkeypatch.setenv("MY_VAR", "env_token")
    for spec, value in (("some_token", "some_token"), (f"@{tok}", "some_token"), ("@@MY_VAR", "env_token")):
        parsed = ParseResult("uftp", None, None, "localhost:9000/rest/auth/TEST:/data", {"token": spec}, None)
        assert op._create_credential(parsed).token == value


def test_constructor_with_tuple_and_bad_password(auth, workdir):
    from pyunicore_fast.uftp.uftpfs import UFTPFS

    with UFTPFS(auth.url, (USER, PASSWORD), str(workdir)) as ufs:
        ufs.writebytes("a", b"b")
    with pytest.raises(fs_errors.RemoteConnectionError):
        UFTPFS(auth.url, (USER, "wrong"), str(workdir))


# ------------------------------------------------------------------ files
def test_openbin_range_reads(ufs, workdir):
    data = payload(3 << 20, 1)
    (workdir / "big.bin").write_bytes(data)
    rng = random.Random(2)
    with ufs.openbin("big.bin") as f:
        for _ in range(100):
            off, n = rng.randrange(len(data)), rng.randrange(1, 70_000)
            f.seek(off)
            assert f.read(n) == data[off:off + n]
        f.seek(0)
        assert f.read() == data
    with ufs.openbin("big.bin", buffering=0) as raw:  # unbuffered: every read is exact
        raw.seek(123)
        assert raw.read(10) == data[123:133]


def test_read_write_random_access(ufs, workdir):
    ufs.writebytes("rw.bin", b"0123456789")
    with ufs.openbin("rw.bin", "r+") as f:
        f.seek(3)
        f.write(b"abc")
        f.seek(0)
        assert f.read() == b"012abc6789"
        f.seek(12)
        f.write(b"Z")  # beyond the end: a hole of zeros
    assert (workdir / "rw.bin").read_bytes() == b"012abc6789\0\0Z"
    with ufs.openbin("rw.bin", "r+") as f:
        assert f.truncate(4) == 4
    assert ufs.readbytes("rw.bin") == b"012a"
    with ufs.openbin("rw.bin", "a") as f:
        f.write(b"++")
    assert ufs.readbytes("rw.bin") == b"012a++"


def test_write_in_one_thread_close_in_another(ufs, workdir):
    """fs.copy's workers get files the main thread opened (fs._bulk.Copier)."""
    f = ufs.openbin("x.bin", "w")
    f.write(b"a" * 300_000)
    t = threading.Thread(target=lambda: (f.write(b"b" * 300_000), f.close()))
    t.start()
    t.join()
    assert (workdir / "x.bin").read_bytes() == b"a" * 300_000 + b"b" * 300_000


def test_hash_on_server_and_locally(ufs):
    ufs.writebytes("h.bin", b"hash me" * 1000)
    content = b"hash me" * 1000
    assert ufs.hash("h.bin", "sha256") == hashlib.sha256(content).hexdigest()
    assert ufs.hash("h.bin", "sha1") == hashlib.sha1(content).hexdigest()
    assert ufs.hash("h.bin", "blake2b") == hashlib.blake2b(content).hexdigest()  # local fallback
    with pytest.raises(fs_errors.ResourceNotFound):
        ufs.hash("nope", "md5")


def test_setinfo_permissions_and_mtime(ufs, workdir):
    from fs.permissions import Permissions

    ufs.create("p.txt")
    ufs.setinfo("p.txt", {"access": {"permissions": Permissions(mode=0o640).dump()},
                          "details": {"modified": 1_500_000_000}})
    st = os.stat(workdir / "p.txt")
    assert st.st_mode & 0o777 == 0o640 and st.st_mtime == 1_500_000_000
    info = ufs.getinfo("p.txt", namespaces=["access", "details", "stat"])
    assert info.permissions.mode == 0o640 and info.raw["stat"]["st_size"] == 0


def test_download_upload_local_files_and_streams(ufs, workdir, tmp_path):
    data = payload(2 << 20, 3)
    (tmp_path / "local.bin").write_bytes(data)
    with open(tmp_path / "local.bin", "rb") as f:
        f.seek(100)
        ufs.upload("up.bin", f)  # regular file: sendfile from the current position
        assert f.tell() == len(data)
    assert (workdir / "up.bin").read_bytes() == data[100:]
    with open(tmp_path / "down.bin", "wb") as f:
        f.write(b"HEAD")
        ufs.download("up.bin", f)  # regular file: pwrite after what is already there
    assert (tmp_path / "down.bin").read_bytes() == b"HEAD" + data[100:]
    buf = io.BytesIO()
    ufs.download("up.bin", buf)  # a stream
    assert buf.getvalue() == data[100:]
    ufs.upload("stream.bin", io.BytesIO(b"streamed"))
    assert ufs.readbytes("stream.bin") == b"streamed"
    assert ufs.download_file("up.bin", str(tmp_path / "bulk.bin")) == len(data) - 100
    assert (tmp_path / "bulk.bin").read_bytes() == data[100:]
    ufs.upload_file(str(tmp_path / "bulk.bin"), "bulk-up.bin")
    assert (workdir / "bulk-up.bin").read_bytes() == data[100:]


def test_move_and_movedir_are_renames(ufs, workdir):
    ufs.makedirs("a/b")
    ufs.writetext("a/b/f.txt", "x")
    ufs.movedir("a", "c", create=True)
    assert ufs.readtext("c/b/f.txt") == "x" and not ufs.exists("a")
    ufs.move("c/b/f.txt", "g.txt")
    assert ufs.readtext("g.txt") == "x"
    with pytest.raises(fs_errors.DestinationExists):
        ufs.move("g.txt", "g.txt")


def test_errors(ufs, workdir):
    ufs.makedir("d")
    with pytest.raises(fs_errors.ResourceNotFound):
        ufs.getinfo("nope")
    with pytest.raises(fs_errors.DirectoryExpected):
        ufs.writebytes("file", b"")
        ufs.listdir("file")
    with pytest.raises(fs_errors.FileExpected):
        ufs.openbin("d", "w")
    with pytest.raises(fs_errors.DirectoryNotEmpty):
        ufs.writebytes("d/x", b"")
        ufs.removedir("d")
    with pytest.raises(fs_errors.FilesystemClosed):
        ufs.close()
        ufs.listdir("/")


def test_listdir_of_directory_named_like_its_only_file(ufs, workdir):
    (workdir / "same").mkdir()
    (workdir / "same" / "same").write_bytes(b"x")
    assert ufs.listdir("same") == ["same"]
    with pytest.raises(fs_errors.DirectoryExpected):
        ufs.listdir("same/same")
    with pytest.raises(fs_errors.ResourceNotFound):
        ufs.listdir("nothing")
