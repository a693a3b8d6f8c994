"""UFTPFileSystem (fsspec): URLs, the three auth types, https, reads, caches, writes, bulk transfers.

Runs against the suite's embedded UFTPD behind the test Auth server (``tests/fsfixtures.py``).
"""

from __future__ import annotations

import errno
import importlib.metadata
import io
import logging
import os
import pickle
import random
import threading
import time

import fsspec
import numpy as np
import pytest

from pyunicore_fast.uftp import rawtransfer
from pyunicore_fast.uftp.fsspec_impl import UFTPFile, UFTPFileSystem
from pyunicore_fast.uftp.urls import parse_uftp_url, read_token, split_resource
from tests.fsconfig import KEY_PASSPHRASE, KEY_USER, PASSWORD, TOKEN, USER, hostpart, http_url

pytest_plugins = ("tests.fsfixtures",)  # fixtures: auth, tls_auth, fs, rsa_identity

MiB = 1 << 20


def payload(n: int, seed: int = 0) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()


# ------------------------------------------------------------------ URLs (no server)
class TestURLs:
    def test_full_url(self):
        u = parse_uftp_url("uftp://demo%40x:p%3Aw@auth.example.org:9000/rest/auth/TEST:/data/x.npy?identity=~/k")
        assert u.auth_url == "https://auth.example.org:9000/rest/auth/TEST"
        assert (u.path, u.username, u.password, u.identity, u.token) == ("/data/x.npy", "demo@x", "p:w", "~/k", None)

    def test_http_alias_and_scheme_override(self):
        assert parse_uftp_url("uftp+http://h:1/rest/auth/T:/d").auth_url == "http://h:1/rest/auth/T"
        assert parse_uftp_url("uftp://h:1/rest/auth/T:/d", scheme="http").auth_url == "http://h:1/rest/auth/T"
        assert parse_uftp_url("uftp+https://h:1/rest/auth/T").auth_url == "https://h:1/rest/auth/T"

    def test_without_path_and_ipv6(self):
        u = parse_uftp_url("uftp://[::1]:9000/rest/auth/TEST")
        assert (u.auth_url, u.path, u.username) == ("https://[::1]:9000/rest/auth/TEST", "", None)

    def test_unencoded_at_in_password(self):
        u = parse_uftp_url("uftp://user:p@ss@h:9000/rest/auth/TEST:/x")
        assert (u.username, u.password, u.auth_url) == ("user", "p@ss", "https://h:9000/rest/auth/TEST")

    def test_token_specs(self, tmp_path, monkeypatch):
        tok = tmp_path / "token.txt"
        tok.write_text("  from-file \n")
        monkeypatch.setenv("MY_UFTP_TOKEN", "from-env")
        assert read_token("literal") == "literal"
        assert read_token(f"@{tok}") == "from-file"
        assert read_token("@@MY_UFTP_TOKEN") == "from-env"
        assert parse_uftp_url(f"uftp://h:1/rest/auth/T:/d?token=@{tok}").token == "from-file"

    def test_split_resource(self):
        assert split_resource("h:9/rest/auth/T:/a:b") == ("https://h:9/rest/auth/T", "/a:b")

    def test_strip_protocol_and_kwargs(self):
        url = "uftp+http://u:pw@127.0.0.1:5/rest/auth/TEST:/data/dir/"
        assert UFTPFileSystem._strip_protocol(url) == "/data/dir"
        assert UFTPFileSystem._strip_protocol("/a/b/") == "/a/b"
        assert UFTPFileSystem._strip_protocol("/") == "/"
        assert UFTPFileSystem._get_kwargs_from_urls(url) == {
            "auth_url": "http://127.0.0.1:5/rest/auth/TEST", "username": "u", "password": "pw"}
        assert UFTPFileSystem._parent("/a/b") == "/a" and UFTPFileSystem._parent("/a") == "/"
        assert UFTPFileSystem._parent("rel") == ""

    def test_entry_points_registered(self):
        eps = {ep.name: ep.value for ep in importlib.metadata.entry_points(group="fsspec.specs")}
        assert eps["uftp"] == "pyunicore_fast.uftp.fsspec_impl:UFTPFileSystem"
        assert fsspec.get_filesystem_class("uftp") is UFTPFileSystem
        assert fsspec.get_filesystem_class("uftp+http") is UFTPFileSystem


# ------------------------------------------------------------------ authentication
def test_password_url_roundtrip(auth, workdir):
    url = http_url(auth, f"{workdir}/hello.txt")
    with fsspec.open(url, "wb") as f:
        f.write(b"hello")
    with fsspec.open(url, "rb") as f:
        assert f.read() == b"hello"
    fsys, path = fsspec.core.url_to_fs(url)
    assert path == f"{workdir}/hello.txt"
    assert fsys.unstrip_protocol(path) == f"uftp+http://{USER}@{hostpart(auth)}:{path}"
    assert PASSWORD not in fsys.unstrip_protocol(path)


@pytest.mark.parametrize("spec", ["literal", "file", "env"])
def test_token_auth(auth, workdir, tmp_path, monkeypatch, spec):
    (workdir / "t.txt").write_bytes(b"tok")
    value = {"literal": TOKEN, "file": f"@{tmp_path / 'tok'}", "env": "@@UFTP_TEST_TOKEN"}[spec]
    (tmp_path / "tok").write_text(TOKEN + "\n")
    monkeypatch.setenv("UFTP_TEST_TOKEN", TOKEN)
    url = f"uftp+http://{hostpart(auth)}:{workdir}/t.txt?token={value}"
    assert fsspec.open(url).open().read() == b"tok"


def test_identity_jwt_auth(auth, workdir, rsa_identity):
    """SSH-key auth: a JWT signed with the (passphrase-protected) key is sent as Bearer."""
    (workdir / "k.txt").write_bytes(b"key")
    before = auth.jwt_logins
    key_path, _ = rsa_identity
    fsys = UFTPFileSystem(auth.url, username=KEY_USER, password=KEY_PASSPHRASE, identity=key_path,
                          skip_instance_cache=True)
    assert fsys.cat_file(f"{workdir}/k.txt") == b"key"
    assert auth.jwt_logins == before + 1
    url = f"uftp+http://{KEY_USER}:{KEY_PASSPHRASE}@{hostpart(auth)}:{workdir}/k.txt?identity={key_path}"
    assert fsspec.open(url).open().read() == b"key"


def test_wrong_password_is_permission_error(auth, workdir):
    fsys = UFTPFileSystem(auth.url, username=USER, password="wrong", skip_instance_cache=True)
    with pytest.raises(PermissionError):
        fsys.ls(str(workdir))


def test_https_verified_with_ca_bundle(tls_auth, workdir, monkeypatch, caplog):
    (workdir / "s.txt").write_bytes(b"secure")
    url = f"uftp://{USER}:{PASSWORD}@{hostpart(tls_auth)}:{workdir}/s.txt"  # https is the default
    fsys = UFTPFileSystem(**UFTPFileSystem._get_kwargs_from_urls(url), skip_instance_cache=True)
    with pytest.raises(OSError):  # self-signed certificate: refused without the CA bundle
        fsys.cat_file(f"{workdir}/s.txt")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", tls_auth.cert_file)
    fsys = UFTPFileSystem(**UFTPFileSystem._get_kwargs_from_urls(url), skip_instance_cache=True)
    assert fsys.cat_file(f"{workdir}/s.txt") == b"secure"


def test_cleartext_warning_only_for_remote_hosts(caplog):
    caplog.set_level(logging.WARNING)
    UFTPFileSystem("http://127.0.0.1:1/rest/auth/T", username="u", password="p", skip_instance_cache=True)
    assert "plain http" not in caplog.text
    UFTPFileSystem("http://auth.example.org:1/rest/auth/T", username="u", password="p", skip_instance_cache=True)
    assert "plain http" in caplog.text


# ------------------------------------------------------------------ metadata and directories
def test_ls_info_and_errors(fs, workdir):
    (workdir / "a.bin").write_bytes(b"12345")
    (workdir / "sub").mkdir()
    listing = {e["name"]: e for e in fs.ls(str(workdir))}
    assert listing[f"{workdir}/a.bin"]["size"] == 5 and listing[f"{workdir}/a.bin"]["type"] == "file"
    assert listing[f"{workdir}/sub"]["type"] == "directory"
    assert fs.ls(f"{workdir}/a.bin", detail=False) == [f"{workdir}/a.bin"]  # ls of a file: itself
    info = fs.info(f"{workdir}/a.bin")
    assert info["mtime"] == pytest.approx(os.stat(workdir / "a.bin").st_mtime, abs=1)
    assert fs.modified(f"{workdir}/a.bin").tzinfo is not None
    assert fs.created(f"{workdir}/a.bin") == fs.modified(f"{workdir}/a.bin")
    with pytest.raises(FileNotFoundError):
        fs.info(f"{workdir}/missing")
    with pytest.raises(FileNotFoundError):
        fs.ls(f"{workdir}/missing")
    assert not fs.exists(f"{workdir}/missing") and fs.isdir(f"{workdir}/sub") and fs.isfile(f"{workdir}/a.bin")


def test_mkdir_makedirs_rm_rmdir(fs, workdir):
    d = f"{workdir}/x/y/z"
    fs.mkdir(d)
    assert fs.isdir(d)
    with pytest.raises(FileExistsError):
        fs.mkdir(d)
    with pytest.raises(FileExistsError):
        fs.makedirs(d)
    fs.makedirs(d, exist_ok=True)
    with pytest.raises(FileNotFoundError):
        fs.mkdir(f"{workdir}/p/q", create_parents=False)
    fs.pipe(f"{d}/f", b"1")
    with pytest.raises(OSError) as err:
        fs.rmdir(d)
    assert err.value.errno == errno.ENOTEMPTY
    fs.rm(f"{workdir}/x", recursive=True)
    assert not fs.exists(f"{workdir}/x")


def test_mv_is_a_rename(fs, workdir, monkeypatch):
    fs.pipe(f"{workdir}/a/f1", b"one")
    fs.mkdir(f"{workdir}/target")
    moved = []
    orig = fs._run

    def spy(path, fn, **kw):
        moved.append(path)
        return orig(path, fn, **kw)

    monkeypatch.setattr(fs, "_run", spy)
    fs.mv(f"{workdir}/a/f1", f"{workdir}/target")  # into an existing directory
    assert (workdir / "target" / "f1").read_bytes() == b"one"
    fs.mv(f"{workdir}/a", f"{workdir}/b", recursive=True)  # a directory, one RNFR/RNTO
    assert fs.isdir(f"{workdir}/b") and not fs.exists(f"{workdir}/a")
    fs.mv(f"{workdir}/target/f1", f"{workdir}/new/deep/f1")  # missing parents are created
    assert (workdir / "new" / "deep" / "f1").read_bytes() == b"one"


def test_touch_checksum_hash(fs, workdir):
    p = f"{workdir}/t"
    fs.pipe(p, b"content")
    os.utime(workdir / "t", (1_000_000_000, 1_000_000_000))
    fs.touch(p, truncate=False)
    assert (workdir / "t").read_bytes() == b"content"
    assert fs.info(p)["mtime"] > time.time() - 60
    import hashlib

    assert fs.file_hash(p, "SHA-256") == hashlib.sha256(b"content").hexdigest()
    assert fs.checksum(p) == int(hashlib.md5(b"content").hexdigest(), 16)
    fs.touch(p)
    assert fs.cat_file(p) == b""


def test_names_uftpd_cannot_address(fs, workdir):
    """uftpd strips arguments, so names with leading/trailing blanks cannot be addressed."""
    assert not fs.exists(f"{workdir}/ lead")
    with pytest.raises(OSError) as err:
        fs.pipe_file(f"{workdir}/trail ", b"x")
    assert err.value.errno == errno.EINVAL


# ------------------------------------------------------------------ reading
def test_readinto_is_zero_copy_and_streams(fs, workdir, monkeypatch):
    data = payload(24 * MiB, 1)
    (workdir / "big.bin").write_bytes(data)
    arr = np.empty(len(data), dtype=np.uint8)
    with fs.open(f"{workdir}/big.bin", "rb", block_size=4 * MiB) as f:
        monkeypatch.setattr(UFTPFile, "read", lambda *a, **k: pytest.fail("readinto must not go through read()"))
        view = memoryview(arr)
        pos = 0
        while pos < len(data):
            pos += f.readinto(view[pos:pos + 6 * MiB])
        assert f._reader.streams_started >= 1 and f._reader.range_reads == 0
    assert arr.tobytes() == data


def test_seeks_reuse_one_session(fs, workdir):
    data = payload(4 * MiB, 2)
    (workdir / "r.bin").write_bytes(data)
    rng = random.Random(3)
    with fs.open(f"{workdir}/r.bin", "rb", cache_type="none") as f:
        for _ in range(200):
            off = rng.randrange(0, len(data) - 4096)
            f.seek(off)
            assert f.read(4096) == data[off:off + 4096]
    assert fs._pool.created == 1  # every seek + read on the same kept session


@pytest.mark.parametrize("cache_type", ["readahead", "blockcache", "background", "none", "bytes", "all", "first"])
def test_cache_types(fs, workdir, cache_type):
    data = payload(3 * MiB + 123, 4)
    (workdir / "c.bin").write_bytes(data)
    rng = random.Random(5)
    with fs.open(f"{workdir}/c.bin", "rb", cache_type=cache_type, block_size=256 * 1024) as f:
        assert f.read(1000) == data[:1000]
        for _ in range(30):
            off, n = rng.randrange(0, len(data)), rng.randrange(1, 600_000)
            f.seek(off)
            assert f.read(n) == data[off:off + n]
        f.seek(0)
        assert f.read() == data


def test_cat_file_ranges_and_parallel_cat_ranges(fs, workdir):
    data = payload(2 * MiB, 6)
    (workdir / "d.bin").write_bytes(data)
    p = f"{workdir}/d.bin"
    assert fs.cat_file(p) == data
    assert fs.cat_file(p, 10, 20) == data[10:20]
    assert fs.cat_file(p, -100) == data[-100:]
    assert fs.cat_file(p, 5, -5) == data[5:-5]
    assert fs.cat_file(p, 100, 50) == b""
    starts = [i * 100_000 for i in range(16)]
    out = fs.cat_ranges([p] * 16 + [f"{workdir}/nope"], starts + [0], [s + 5000 for s in starts] + [10])
    assert out[:16] == [data[s:s + 5000] for s in starts]
    assert isinstance(out[16], FileNotFoundError)
    assert fs._pool.created >= 2  # several sessions at once
    assert fs.cat([p, p + "x"], on_error="omit") == {p: data}


# ------------------------------------------------------------------ writing
def test_write_is_one_streaming_upload(fs, workdir, monkeypatch):
    started = []
    real = rawtransfer.RawTransfer.__init__

    def counting(self, pool, verb, path, *a, **k):
        started.append(verb)
        return real(self, pool, verb, path, *a, **k)

    monkeypatch.setattr(rawtransfer.RawTransfer, "__init__", counting)
    data = payload(5 * MiB, 7)
    with fs.open(f"{workdir}/w.bin", "wb", block_size=MiB) as f:
        for i in range(0, len(data), 300_000):
            f.write(data[i:i + 300_000])
        f.write(b"")
    assert started == ["STOR"]
    assert (workdir / "w.bin").read_bytes() == data


def test_append_exclusive_and_auto_mkdir(fs, workdir, auth):
    p = f"{workdir}/deep/er/a.txt"
    with fs.open(p, "wb") as f:  # auto_mkdir (default): parents created
        f.write(b"one")
    with fs.open(p, "ab") as f:
        f.write(b"two")
    assert fs.cat_file(p) == b"onetwo"
    with pytest.raises(FileExistsError):
        fs.open(p, "xb")
    strict = UFTPFileSystem(auth.url, username=USER, password=PASSWORD, auto_mkdir=False, skip_instance_cache=True)
    with pytest.raises(FileNotFoundError):
        strict.open(f"{workdir}/no/such/dir.txt", "wb")
    with pytest.raises(IsADirectoryError):
        fs.open(str(workdir), "rb")


def test_transaction_commits_or_discards(fs, workdir):
    p = f"{workdir}/tx.txt"
    with fs.transaction:
        with fs.open(p, "wb") as f:
            f.write(b"data")
        assert not fs.exists(p)
    assert fs.cat_file(p) == b"data"
    with pytest.raises(RuntimeError), fs.transaction:
        with fs.open(f"{workdir}/tx2.txt", "wb") as f:
            f.write(b"x")
        raise RuntimeError("roll back")
    assert not fs.exists(f"{workdir}/tx2.txt")
    assert [n for n in os.listdir(workdir) if "uftp-txn" in n] == []


def test_writer_closed_from_another_thread(fs, workdir):
    """PyFilesystem's copy workers write and close files another thread opened."""
    f = fs.open(f"{workdir}/cross.bin", "wb", block_size=64 * 1024)
    f.write(b"a" * 100_000)
    t = threading.Thread(target=lambda: (f.write(b"b" * 100_000), f.close()))
    t.start()
    t.join()
    assert (workdir / "cross.bin").read_bytes() == b"a" * 100_000 + b"b" * 100_000


# ------------------------------------------------------------------ bulk transfers
def test_get_put_files_and_trees(fs, workdir, tmp_path):
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    files = {"a.bin": payload(300_000, 8), "sub/b.bin": payload(70_000, 9), "sub/c.txt": b"c"}
    for name, data in files.items():
        (src / name).write_bytes(data)
    cb = fsspec.callbacks.Callback()
    fs.put(str(src), f"{workdir}/up", recursive=True, callback=cb)
    for name, data in files.items():
        assert (workdir / "up" / name).read_bytes() == data
    assert cb.size == cb.value == 5  # 2 directories + 3 files, as fsspec counts them
    out = tmp_path / "down"
    fs.get(f"{workdir}/up", str(out), recursive=True)
    for name, data in files.items():
        assert (out / name).read_bytes() == data
    fs.get_file(f"{workdir}/up/a.bin", str(tmp_path / "single.bin"))
    assert (tmp_path / "single.bin").read_bytes() == files["a.bin"]
    fs.put_file(str(src / "a.bin"), f"{workdir}/new/parent/a.bin")
    assert (workdir / "new" / "parent" / "a.bin").read_bytes() == files["a.bin"]
    buf = io.BytesIO()
    fs.get_file(f"{workdir}/up/sub/b.bin", buf)
    assert buf.getvalue() == files["sub/b.bin"]


def test_cp_file_streams_between_sessions(fs, workdir):
    data = payload(3 * MiB, 10)
    (workdir / "orig.bin").write_bytes(data)
    fs.cp(f"{workdir}/orig.bin", f"{workdir}/copy/of.bin")
    assert (workdir / "copy" / "of.bin").read_bytes() == data


# ------------------------------------------------------------------ codec sessions, pickling
@pytest.mark.parametrize("encryption,compress", [("AES", False), (None, True)])
def test_encrypted_and_compressed_sessions(auth, workdir, encryption, compress):
    fsys = UFTPFileSystem(auth.url, username=USER, password=PASSWORD, encryption=encryption, compress=compress,
                          skip_instance_cache=True)
    data = payload(2 * MiB + 17, 11)
    with fsys.open(f"{workdir}/e.bin", "wb", block_size=MiB) as f:
        f.write(data)
    assert (workdir / "e.bin").read_bytes() == data
    with fsys.open(f"{workdir}/e.bin", "rb") as f:
        f.seek(1000)
        assert f.read(5000) == data[1000:6000]
        f.seek(0)
        assert f.read() == data


def test_pickle_filesystem_and_file(fs, workdir):
    (workdir / "p.txt").write_bytes(b"pickled")
    fs2 = pickle.loads(pickle.dumps(fs))
    assert fs2.cat_file(f"{workdir}/p.txt") == b"pickled"
    with fs.open(f"{workdir}/p.txt", "rb") as f:
        f.seek(2)
        g = pickle.loads(pickle.dumps(f))
        assert g.read() == b"ckled"


# ------------------------------------------------------------------ the session pool
def test_dead_idle_session_is_replaced(fs, workdir):
    """A kept session the server dropped meanwhile costs a retry, not an error."""
    import socket

    (workdir / "k.txt").write_bytes(b"kept")
    assert fs.cat_file(f"{workdir}/k.txt") == b"kept"
    session = fs._pool._idle[-1][0]
    session._ctrl.sock.shutdown(socket.SHUT_RDWR)  # as if uftpd had closed it
    assert fs.cat_file(f"{workdir}/k.txt") == b"kept"
    assert fs._pool.created == 2


def test_pool_forgets_sessions_after_fork(fs, workdir):
    """A forked child must not share the parent's control connections (nor QUIT them)."""
    fs.ls(str(workdir))
    parent_session = fs._pool._idle[-1][0]
    fs._pool._pid = -1  # what the child sees after fork
    fs.ls(str(workdir))
    assert fs._pool.created == 2 and not parent_session.closed
    parent_session.close()


def test_names_listing_and_its_ambiguous_case(fs, workdir):
    """ls(detail=False) uses STAT N, which lists a file as itself: a directory whose only
    entry has the directory's name must still be told apart from a file."""
    (workdir / "d").mkdir()
    (workdir / "d" / "d").write_bytes(b"inner")
    (workdir / "lone").write_bytes(b"file")
    assert fs.ls(f"{workdir}/d", detail=False) == [f"{workdir}/d/d"]
    assert fs.ls(f"{workdir}/lone", detail=False) == [f"{workdir}/lone"]
    assert sorted(fs.ls(str(workdir), detail=False)) == [f"{workdir}/d", f"{workdir}/lone"]
    with pytest.raises(FileNotFoundError):
        fs.ls(f"{workdir}/missing", detail=False)
