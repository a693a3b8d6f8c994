"""Client robustness against a misbehaving server: every failure is a typed exception within
the timeout, never a hang, never a partial file under the final name."""

from __future__ import annotations

import os
import time

import pytest

import uftpcore
from uftpcore.errors import (
    ConnectionClosedError,
    LoginError,
    NotFoundError,
    ProtocolError,
    TransferIncompleteError,
    UFTPTimeoutError,
)

from .fakeserver import ScriptedServer

TIMEOUT = 1.0


def _connect(srv, impl):
    return uftpcore.connect("127.0.0.1", srv.port, "secretsecret", timeout=TIMEOUT, implementation=impl)


def test_exact_login_sequence_and_secret_not_in_errors(impl):
    def script(p):
        p.send("220 UFTPD 3.5.3, https://www.unicore.eu\n")
        p.expect("USER anonymous")
        p.send("331 Please specify the password\n")
        p.expect("PASS secretsecret")
        p.send("530 Not logged in: no matching transfer request found\n")

    with ScriptedServer(script) as srv:
        with pytest.raises(LoginError) as err:
            _connect(srv, impl)
    assert err.value.code == 530
    assert "secretsecret" not in str(err.value)
    assert "no matching transfer request" in str(err.value)


def test_garbled_reply(impl):
    def script(p):
        p.send("220 UFTPD 3.5.3, https://www.unicore.eu\n")
        p.expect("USER")
        p.send("hello there\n")

    with ScriptedServer(script) as srv:
        with pytest.raises(ProtocolError, match="garbled"):
            _connect(srv, impl)


def test_truncated_reply_then_close(impl):
    def script(p):
        p.login()
        p.expect("MLST")
        p.send("250- Listing /x\n size=1")  # no newline, then close
        p.conn.shutdown(2)

    with ScriptedServer(script) as srv:
        s = _connect(srv, impl)
        with pytest.raises(ConnectionClosedError):
            s.stat("x")


def test_multiline_without_end_times_out(impl):
    def script(p):
        p.login()
        p.expect("MLST")
        p.send("250- Listing /x\n size=1;type=file; x\n")
        time.sleep(2)

    with ScriptedServer(script) as srv:
        s = _connect(srv, impl)
        t0 = time.monotonic()
        with pytest.raises(UFTPTimeoutError):
            s.stat("x")
        assert time.monotonic() - t0 < TIMEOUT + 1.5


def test_stalled_server_times_out(impl):
    def script(p):
        p.login()
        p.expect("PWD")
        time.sleep(2)

    with ScriptedServer(script) as srv:
        s = _connect(srv, impl)
        t0 = time.monotonic()
        with pytest.raises(UFTPTimeoutError):
            s.pwd()
        assert time.monotonic() - t0 < TIMEOUT + 1.5


def _mlst(p, size):
    p.expect("MLST")
    p.send(f"250- Listing /f\n size={size};modify=20260101000000;type=file;perm=rw;UNIX.mode=100644; f\n250 End\n")


def test_close_mid_download_leaves_no_file(tmp_path, impl):
    def script(p):
        p.login()
        _mlst(p, 100000)
        data = p.epsv()
        p.expect("RANG 0 100000")
        p.send("350 Restarting at 0. End byte range at 100000\n")
        p.expect("RETR f")
        p.send("150 OK 100000 bytes available for reading.\n")
        data.sendall(b"x" * 40000)
        data.close()
        p.send("226 File transfer successful\n")

    target = tmp_path / "out.bin"
    with ScriptedServer(script) as srv:
        s = _connect(srv, impl)
        with pytest.raises(TransferIncompleteError) as err:
            s.download("f", target)
    assert err.value.received == 40000
    assert not target.exists()
    assert os.listdir(tmp_path) == []


def test_stall_mid_download_times_out_and_cleans_up(tmp_path, impl):
    def script(p):
        p.login()
        _mlst(p, 100000)
        data = p.epsv()
        p.expect("RANG")
        p.send("350 Restarting at 0. End byte range at 100000\n")
        p.expect("RETR")
        p.send("150 OK 100000 bytes available for reading.\n")
        data.sendall(b"x" * 1000)
        time.sleep(2)

    target = tmp_path / "out.bin"
    with ScriptedServer(script) as srv:
        s = _connect(srv, impl)
        t0 = time.monotonic()
        with pytest.raises(UFTPTimeoutError):
            s.download("f", target)
        assert time.monotonic() - t0 < TIMEOUT + 1.5
    assert os.listdir(tmp_path) == []


def test_error_after_150_is_raised(tmp_path, impl):
    def script(p):
        p.login()
        _mlst(p, 10)
        data = p.epsv()
        p.expect("RANG")
        p.send("350 Restarting at 0. End byte range at 10\n")
        p.expect("RETR")
        p.send("150 OK 10 bytes available for reading.\n")
        data.sendall(b"0123456789")
        data.close()
        p.send("500 Error processing command 'RETR': disk on fire\n")

    with ScriptedServer(script) as srv:
        s = _connect(srv, impl)
        with pytest.raises(uftpcore.ReplyError, match="disk on fire"):
            s.download("f", tmp_path / "out")
    assert os.listdir(tmp_path) == []


def test_550_is_not_found(impl):
    def script(p):
        p.login()
        p.expect("MLST")
        p.send("550 Error processing command 'MLST': Directory/file does not exist or cannot be accessed!\n")

    with ScriptedServer(script) as srv:
        s = _connect(srv, impl)
        with pytest.raises(NotFoundError) as err:
            s.stat("nope")
        assert isinstance(err.value, FileNotFoundError)
        assert err.value.code == 550


def test_hash_skips_keepalive_lines(impl):
    def script(p):
        p.login(" HASH MD5*;SHA-1;SHA-256;SHA-512\n")
        p.expect("OPTS HASH SHA-256")
        p.send("200 HASH=SHA-256\n")
        p.expect("HASH f")
        p.send("213-\n213-\n213 SHA-256 0-9 " + "ab" * 32 + " /data/f with space\n")

    with ScriptedServer(script) as srv:
        s = _connect(srv, impl)
        algo, first, last, digest, path = s.hash("f")
    assert (algo, first, last, digest, path) == ("SHA-256", 0, 9, "ab" * 32, "/data/f with space")


def test_rfc_rang_server_gets_inclusive_end(impl):
    def script(p):
        p.login(" PASV\n EPSV\n RFC_RANG\n")
        data = p.epsv()
        p.expect("RANG 10 14")  # 5 bytes from 10, inclusive end
        p.send("350 Restarting at 10. End byte range at 14\n")
        p.expect("RETR f")
        p.send("150 OK 5 bytes available for reading.\n")
        data.sendall(b"abcde")
        data.close()
        p.send("226 File transfer successful\n")

    with ScriptedServer(script) as srv:
        s = _connect(srv, impl)
        buf = bytearray(5)
        assert s.read_into("f", buf, 10) == 5
    assert bytes(buf) == b"abcde"


def test_java_style_download_transcript(impl):
    """The client side of spec §4.5 (single stream): data first, then RANG, RETR, 226."""
    sent = []

    def script(p):
        p.login()
        data = p.epsv()
        p.expect("RANG 0 100000")
        p.send("350 Restarting at 0. End byte range at 100000\n")
        p.expect("RETR big.bin")
        p.send("150 OK 100000 bytes available for reading.\n")
        p.send("226 File transfer successful\n")  # 226 may come before the data
        data.sendall(bytes(range(256)) * 390 + bytes(160))
        data.close()
        sent.extend(p.received)

    with ScriptedServer(script) as srv:
        s = _connect(srv, impl)
        out = bytearray(100000)
        assert s.read_into("big.bin", out) == 100000
    assert bytes(out[:256]) == bytes(range(256))
    assert sent[0] == "USER anonymous" and sent[1].startswith("PASS ")
    assert sent[2:] == ["FEAT", "NOOP 1", "EPSV", "RANG 0 100000", "RETR big.bin"]


def test_upload_transcript_uses_allo_then_stor(tmp_path, impl):
    src = tmp_path / "up.bin"
    src.write_bytes(b"0123456789")
    got = bytearray()

    def script(p):
        p.login()
        data = p.epsv()
        p.expect("ALLO 10")
        p.send("200 OK Will read up to 10 bytes from data connection.\n")
        p.expect("STOR up.bin")
        p.send("150 OK\n")
        while len(got) < 10:
            chunk = data.recv(100)
            if not chunk:
                break
            got.extend(chunk)
        data.close()
        p.send("226 File transfer successful\n")

    with ScriptedServer(script) as srv:
        s = _connect(srv, impl)
        assert s.upload(src, "up.bin") == 10
    assert bytes(got) == b"0123456789"


def test_ranged_upload_uses_rang_and_never_allo(tmp_path, impl):
    src = tmp_path / "up.bin"
    src.write_bytes(b"abc")
    lines = []

    def script(p):
        p.login()
        data = p.epsv()
        p.expect("RANG 100 103")
        p.send("350 Restarting at 100. End byte range at 103\n")
        p.expect("STOR up.bin")
        p.send("150 OK\n")
        assert data.recv(10) == b"abc"
        data.close()
        p.send("226 File transfer successful\n")
        lines.extend(p.received)

    with ScriptedServer(script) as srv:
        s = _connect(srv, impl)
        assert s.upload(src, "up.bin", offset=100) == 3
    assert not any(ln.startswith("ALLO") for ln in lines)
