"""End to end: uftpcore's client against the test UFTPD with several streams, encryption and
compression — against the faithful server (uftpd's defects on: the client's work-arounds of
spec §6.4/§6.5/§7.2 must keep the data correct) and against the corrected one.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import time

import pytest

import uftpcore
from uftpcore.errors import ProtocolError, ReplyError, TransferIncompleteError, UFTPError
from uftpcore.server import UFTPD

SIZES = [0, 1, 16383, 16384, 100003, 1048576 + 5]
CODECS = {
    "plain": {},
    "aes": {"key": bytes(range(48)), "algo": "AES"},
    "blowfish": {"key": bytes(range(200, 256)), "algo": "BLOWFISH"},
    "gzip": {"compress": True},
    "aes+gzip": {"key": bytes(range(48)), "algo": "AES", "compress": True},
}
_BLOBS = {size: os.urandom(size) for size in SIZES}


@pytest.fixture(scope="module", params=[True, False], ids=["faithful", "fixed"])
def server(request, tmp_path_factory):
    with UFTPD(max_connections=100000, bug_compat=request.param) as srv:
        srv.root = tmp_path_factory.mktemp("ms-root")
        yield srv


def open_session(srv: UFTPD, root, n: int, codec: str, impl: str | None = None, **job):
    opts = CODECS[codec]
    secret = "".join(secrets.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(24))
    srv.add_job(secret, "tester", file=str(root) + "/", key=opts.get("key"), algo=opts.get("algo"),
                compress=opts.get("compress", False), **job)
    return uftpcore.connect("127.0.0.1", srv.port, secret, timeout=20, streams=n, key=opts.get("key"),
                            algo=opts.get("algo"), compress=opts.get("compress"), implementation=impl)


@pytest.fixture
def workdir(server):
    d = server.root / secrets.token_hex(6)
    d.mkdir()
    return d


@pytest.mark.parametrize("codec", list(CODECS))
@pytest.mark.parametrize("n", [1, 2, 3, 4])
@pytest.mark.parametrize("op", ["read_into", "download", "upload", "write_at"])
def test_matrix(server, workdir, impl, n, codec, op, tmp_path):
    with open_session(server, workdir, n, codec, impl) as s:
        for size in SIZES:
            blob = _BLOBS[size]
            name = f"f{size}.bin"
            if op == "read_into":
                (workdir / name).write_bytes(blob)
                buf = bytearray(size)
                assert s.read_into(name, buf) == size
                assert buf == blob, (size, n, codec)
            elif op == "download":
                (workdir / name).write_bytes(blob)
                local = tmp_path / name
                assert s.download(name, local) == size
                assert local.read_bytes() == blob, (size, n, codec)
            elif op == "upload":
                local = tmp_path / name
                local.write_bytes(blob)
                (workdir / name).write_bytes(b"longer old content " * 100000)  # must be replaced
                assert s.upload(local, name) == size
                assert (workdir / name).read_bytes() == blob, (size, n, codec)
            else:
                old = os.urandom(3000)
                (workdir / name).write_bytes(old)
                assert s.write(name, blob, offset=1000) == size
                expect = old[:1000] + blob + old[1000 + size:]
                assert (workdir / name).read_bytes() == expect, (size, n, codec)


@pytest.mark.parametrize("codec", ["plain", "aes", "gzip"])
def test_server_lowers_stream_count(tmp_path, impl, codec):
    """223: the client uses what the server grants (encrypted: a power of two, §6.5)."""
    blob = os.urandom(19 * 16384)  # whole blocks: no single-stream tail part
    (tmp_path / "f.bin").write_bytes(blob)
    with UFTPD(max_streams=3, max_connections=100) as srv:
        with open_session(srv, tmp_path, 4, codec, impl) as s:
            assert s.read("f.bin") == blob
            assert s.streams_used == (2 if codec == "aes" else 3)
            s.write("g.bin", blob)
            assert (tmp_path / "g.bin").read_bytes() == blob
            assert s.streams_used == (2 if codec == "aes" else 3)


def _no_partial(directory) -> bool:
    return not [p for p in os.listdir(directory) if p.endswith(".uftp-part")]


@pytest.mark.parametrize("n", [1, 2])
@pytest.mark.parametrize("codec", ["plain", "aes", "gzip"])
def test_short_stream_is_an_error(tmp_path, monkeypatch, impl, n, codec):
    """The server sends fewer bytes than announced: clear error, no file under the final name."""
    from uftpcore.server import codedchannel, datapath, multistream

    for cls in (datapath.PlainDataChannel, codedchannel.CodedDataChannel, multistream.MultiStreamDataChannel):
        original = cls.send_file

        def short(self, fd, offset, count, limiter=None, _original=original):
            return _original(self, fd, offset, count - 20000, limiter)

        monkeypatch.setattr(cls, "send_file", short)
    blob = os.urandom(100003)
    (tmp_path / "f.bin").write_bytes(blob)
    local = tmp_path / "local" / "f.bin"
    local.parent.mkdir()
    with UFTPD(max_connections=100) as srv:
        with open_session(srv, tmp_path, n, codec, impl) as s:
            with pytest.raises(UFTPError) as info:
                s.download("f.bin", local)
            assert isinstance(info.value, (TransferIncompleteError, ProtocolError)), info.value
    assert not local.exists() and _no_partial(local.parent)


@pytest.mark.parametrize("n", [1, 2, 4])
@pytest.mark.parametrize("algo", ["AES", "BLOWFISH"])
def test_wrong_key_is_an_error(tmp_path, impl, n, algo):
    blob = os.urandom(100003)
    (tmp_path / "f.bin").write_bytes(blob)
    local = tmp_path / "local" / "f.bin"
    local.parent.mkdir()
    key = CODECS[algo.lower()]["key"]
    with UFTPD(max_connections=100) as srv:
        secret = "wrongkey" + secrets.token_hex(8)
        srv.add_job(secret, "tester", file=str(tmp_path) + "/", key=key, algo=algo)
        wrong = bytes(len(key))
        with uftpcore.connect("127.0.0.1", srv.port, secret, timeout=10, streams=n, key=wrong, algo=algo,
                              implementation=impl) as s:
            with pytest.raises(ProtocolError):
                s.download("f.bin", local)
    assert not local.exists() and _no_partial(local.parent)


@pytest.mark.parametrize("n", [1, 2])
def test_corrupted_gzip_is_an_error(tmp_path, monkeypatch, impl, n):
    """A flipped byte in the compressed stream (and a server that does not compress at all)."""
    from uftpcore.server import streamlayers

    blob = os.urandom(100003)
    (tmp_path / "f.bin").write_bytes(blob)
    local = tmp_path / "local" / "f.bin"
    local.parent.mkdir()
    original = streamlayers.SocketWriter.write

    def flip(self, data):
        data = bytearray(data)
        if len(data) > 100:
            data[20] ^= 0xFF
        return original(self, bytes(data))

    with UFTPD(max_connections=100) as srv:
        monkeypatch.setattr(streamlayers.SocketWriter, "write", flip)
        with open_session(srv, tmp_path, n, "gzip", impl) as s:
            with pytest.raises(ProtocolError):
                s.download("f.bin", local)
        monkeypatch.setattr(streamlayers.SocketWriter, "write", original)
        secret = "nogzip" + secrets.token_hex(8)
        srv.add_job(secret, "tester", file=str(tmp_path) + "/")  # the server does not compress
        with uftpcore.connect("127.0.0.1", srv.port, secret, timeout=10, streams=n, compress=True,
                              implementation=impl) as s:
            with pytest.raises(ProtocolError, match="corrupted compressed stream"):
                s.download("f.bin", local)
    assert not local.exists() and _no_partial(local.parent)


def test_upload_error_reply_reaches_client(tmp_path, impl):
    """A server-side failure after 150 is a ReplyError carrying uftpd's text."""
    with UFTPD(max_connections=100) as srv:
        with open_session(srv, tmp_path, 2, "plain", impl) as s:
            with pytest.raises(ReplyError, match="Is a directory"):
                (tmp_path / "d").mkdir()
                s.write("d", b"x" * 1000)


def test_hash_ranges_with_client(tmp_path, impl):
    blob = os.urandom(100003)
    (tmp_path / "f.bin").write_bytes(blob)
    with UFTPD(max_connections=100) as srv:
        with open_session(srv, tmp_path, 2, "aes", impl) as s:
            assert s.checksum("f.bin", "MD5") == hashlib.md5(blob).hexdigest()
            algo, first, last, digest, path = s.hash("f.bin", "SHA-256", offset=1000, length=5000)
            assert (algo, first, last, path) == ("SHA-256", 1000, 5999, str(tmp_path / "f.bin"))
            assert digest == hashlib.sha256(blob[1000:6000]).hexdigest()
            assert s.checksum("f.bin", "SHA-1", offset=99999) == hashlib.sha1(blob[99999:]).hexdigest()
            assert s.checksum("f.bin", "SHA-512") == hashlib.sha512(blob).hexdigest()  # range reset


def test_persistent_sessions_per_user_limit(tmp_path):
    """§2.4: every extra concurrent login of a persistent job counts against MAX_CONNECTIONS."""
    (tmp_path / "f.bin").write_bytes(b"data")
    with UFTPD(max_connections=3, housekeeping_interval=3600) as srv:
        srv.add_job("persistentjobsecret", "paula", file=str(tmp_path) + "/", persistent=True)
        sessions = [uftpcore.connect("127.0.0.1", srv.port, "persistentjobsecret", timeout=10)
                    for _ in range(3)]
        assert srv.registry.count("paula") == 3
        with pytest.raises(UFTPError, match="Too many active transfer requests / sessions for 'paula'"):
            uftpcore.connect("127.0.0.1", srv.port, "persistentjobsecret", timeout=10)
        assert [s.read("f.bin") for s in sessions] == [b"data"] * 3
        sessions.pop().close()  # the session ends asynchronously; housekeeping reaps it
        deadline = time.time() + 5
        while srv.registry.count("paula") == 3 and time.time() < deadline:
            srv.run_housekeeping()
            time.sleep(0.02)
        extra = uftpcore.connect("127.0.0.1", srv.port, "persistentjobsecret", timeout=10)
        assert extra.read("f.bin") == b"data"
        for s in sessions + [extra]:
            s.close()


@pytest.mark.parametrize("codec", ["aes", "gzip", "plain"])
def test_listdir_in_coded_sessions(tmp_path, impl, codec):
    """MLSD over a coded connection carries no entries (uftpd): the client lists with STAT N."""
    from uftpcore.errors import NotFoundError

    (tmp_path / "a.txt").write_bytes(b"abc")
    (tmp_path / "sub").mkdir()
    with UFTPD(max_connections=100) as srv:
        with open_session(srv, tmp_path, 2, codec, impl) as s:
            entries = {info.name: info for info in s.listdir(".")}
            assert sorted(entries) == ["a.txt", "sub"]
            assert entries["a.txt"].size == 3 and not entries["a.txt"].is_dir and entries["sub"].is_dir
            with pytest.raises(NotFoundError):
                s.listdir("nosuch")
            assert s.read("a.txt") == b"abc"  # the session is still usable
