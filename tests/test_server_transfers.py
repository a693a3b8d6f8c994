"""Data connections (§4), RETR/STOR/APPE/HASH and the RANG/REST/ALLO machine (§3.7).

Includes the §4.5 example transcripts as golden tests on raw sockets.
"""

from __future__ import annotations

import hashlib
import io
import os
import socket
import struct
import tarfile
import time

import pytest

from uftpcore.server import UFTPD

try:
    from .test_server_support import RawFTP, connect, new_secret, recv_all, recv_exact, root, uftpd
except ImportError:
    from test_server_support import RawFTP, connect, new_secret, recv_all, recv_exact, root, uftpd  # noqa: F401

CONTENT = b"ABCDEFGHIJKLMNOPQRST"


def err(code: int, verb: str, message: str) -> str:
    return f"{code} Error processing command '{verb}': {message}\n"


def retr(client: RawFTP, name: str, data: socket.socket | None = None) -> tuple[str, bytes, bytes]:
    """RETR on a fresh (or the given) data connection: (150 line, payload, final reply)."""
    data = data or client.open_data()
    first = client.cmd(f"RETR {name}")
    payload = recv_all(data) if first.startswith("150") else b""
    return first, payload, client.read_reply()


def stor(client: RawFTP, name: str, payload: bytes, close: bool = True) -> tuple[str, str]:
    data = client.open_data()
    first = client.cmd(f"STOR {name}")
    if first.startswith("150"):
        data.sendall(payload)
        if close:
            data.close()
    return first, client.read_reply().decode()


# -- §4.5 transcripts -------------------------------------------------------------------
def test_transcript_java_style_two_streams(uftpd, root):
    (root / "big.bin").write_bytes(os.urandom(150000))
    secret = new_secret()
    uftpd.add_job(secret, "demouser", file=str(root) + "/")
    client = RawFTP(uftpd.port)
    assert client.read_reply() == b"220 UFTPD 3.5.3, https://www.unicore.eu\n"
    assert client.cmd("USER anonymous") == "331 Please specify the password\n"
    assert client.cmd(f"PASS {secret}") == "230 Login successful\n"
    assert client.cmd("SYST") == "215 Unix Type: L8\n"
    feat = client.cmd("FEAT")
    assert feat.startswith("211-Features:\n PASV\n EPSV\n") and feat.endswith("211 END\n")
    assert client.cmd("NOOP 2") == "222 Opening 2 data connections\n"
    first = client.open_data()
    second = client.open_data()
    assert client.cmd("RANG 0 100000") == "350 Restarting at 0. End byte range at 100000\n"
    assert client.cmd("RETR big.bin") == "150 OK 100000 bytes available for reading.\n"
    # D: frames seq 0..6 on both connections (§5), then both connections are closed
    streams = [recv_all(first), recv_all(second)]
    assert client.read_reply() == b"226 File transfer successful\n"
    blob = (root / "big.bin").read_bytes()[:100000]
    for index, raw in enumerate(streams):
        pos = seq = 0
        while raw:
            magic, idx, got_seq, size, chunk = struct.unpack(">HHIII", raw[:16])
            assert (magic, idx, got_seq) == (0xCEBF, index, seq)
            assert size == min(16384, 100000 - pos) and chunk == size // 2
            assert raw[16:16 + chunk] == blob[pos + index * chunk:pos + (index + 1) * chunk]
            raw = raw[16 + chunk:]
            pos += size
            seq += 1
        assert seq == 7 and pos == 100000
    client.send("QUIT")
    assert client.expect_eof()
    client.close()


def test_transcript_pyuftp_style_upload(connect, root):
    client = connect()
    assert client.cmd("ALLO 10") == "200 OK Will read up to 10 bytes from data connection.\n"
    reply = client.cmd("PASV")
    assert reply.startswith("227 Entering Passive Mode (127,0,0,1,") and reply.endswith(")\n")
    p1, p2 = (int(x) for x in reply[reply.index("(") + 1 : reply.index(")")].split(",")[4:])
    data = socket.create_connection(("127.0.0.1", p1 * 256 + p2), timeout=10)
    assert client.cmd("STOR up.bin") == "150 OK\n"
    data.sendall(b"0123456789")
    data.close()
    assert client.read_reply() == b"226 File transfer successful\n"
    assert (root / "up.bin").read_bytes() == b"0123456789"


# -- data connections (§4.1) ------------------------------------------------------------
def test_epsv_all_and_pasv_format(connect):
    client = connect()
    assert client.cmd("EPSV ALL") == "200 OK\n"
    reply = client.cmd("EPSV")
    assert reply.startswith("229 Entering Extended Passive Mode (|||") and reply.endswith("|)\n")


def test_retr_plain_and_data_closed(connect):
    client = connect()
    assert retr(client, "a.txt") == ("150 OK 12 bytes available for reading.\n", b"hello world\n",
                                     b"226 File transfer successful\n")


def test_errors_before_150_keep_data(connect):
    client = connect()
    data = client.open_data()
    assert client.cmd("RETR nosuch") == err(550, "RETR", "Directory/file does not exist or cannot be accessed!")
    assert client.cmd("RETR /etc/passwd").startswith("534 ")
    assert client.cmd("NOOP") == "200 OK\n"
    assert retr(client, "a.txt", data)[1] == b"hello world\n"  # the same connection, no new EPSV


def test_keep_alive_and_forgotten_connections(connect):
    client = connect()
    assert client.cmd("KEEP-ALIVE true") == "200 OK\n"
    data = client.open_data()
    for _ in range(2):
        assert client.cmd("RETR a.txt") == "150 OK 12 bytes available for reading.\n"
        assert recv_exact(data, 12) == b"hello world\n"
        assert client.read_reply() == b"226 File transfer successful\n"
    fresh = client.open_data()  # the kept connection is "forgotten" and closed
    assert recv_all(data) == b""
    assert client.cmd("RETR a.txt").startswith("150 OK 12")
    assert recv_exact(fresh, 12) == b"hello world\n"
    assert client.read_reply() == b"226 File transfer successful\n"


def test_stream_count_resets_to_one_after_close(connect, root):
    client = connect()
    assert client.cmd("NOOP 3") == "222 Opening 3 data connections\n"
    socks = [client.open_data() for _ in range(3)]
    # a 4th EPSV finds the set complete: closes all three, back to one stream
    single = client.open_data()
    for sock in socks:
        assert recv_all(sock) == b""
    assert retr(client, "a.txt", single)[1] == b"hello world\n"
    # after the close the expected count is 1 again: one EPSV suffices
    assert retr(client, "a.txt")[1] == b"hello world\n"


def test_job_with_two_streams_breaks_single_pasv_clients(connect):
    client = connect(streams=2)
    data = client.open_data()
    assert client.cmd("RETR a.txt") == "150 OK 12 bytes available for reading.\n"
    assert client.read_reply() == err(500, "RETR", "'NoneType' object has no attribute 'write'").encode()
    assert recv_all(data) == b""
    assert retr(client, "a.txt")[1] == b"hello world\n"  # the failure reset the count to 1


def test_encrypted_and_compressed_sessions_transfer(connect):
    """Coded single streams (§6, §7): details and defects in test_multistream_server.py."""
    import gzip

    client = connect(compress=True)
    first, payload, final = retr(client, "a.txt")
    assert first == "150 OK 12 bytes available for reading.\n" and final == b"226 File transfer successful\n"
    assert gzip.decompress(payload) == b"hello world\n"
    client = connect(key=b"k" * 56)
    first, payload, final = retr(client, "a.txt")
    assert first == "150 OK 12 bytes available for reading.\n" and len(payload) == 16  # 12 + 4 padding


def test_data_connection_from_other_ip_ends_session(connect):
    client = connect()
    reply = client.cmd("EPSV")
    port = int(reply.split("|||")[1].split("|")[0])
    intruder = socket.create_connection(("127.0.0.1", port), source_address=("127.0.0.2", 0), timeout=10)
    assert client.expect_eof()
    intruder.close()


def test_accept_timeout_ends_session_silently(root):
    with UFTPD(accept_timeout=0.3) as srv:
        srv.add_job("t", "demouser", file=str(root) + "/")
        client = RawFTP(srv.port)
        assert client.login("t") == "230 Login successful\n"
        assert client.cmd("EPSV").startswith("229 ")
        client.send("NOOP")  # never answered
        started = time.time()
        assert client.expect_eof()
        assert time.time() - started < 5
        client.close()


def test_port_range(root):
    probe = socket.create_server(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    with UFTPD(port_range=(port, port)) as srv:
        srv.add_job("pr", "demouser", file=str(root) + "/")
        client = RawFTP(srv.port)
        client.login("pr")
        # the only port of the range is taken
        assert client.cmd("EPSV") == err(
            500, "EPSV", f"Cannot set up data connection - no free ports in range {port}:{port}"
        )
        probe.close()
        assert client.cmd("EPSV") == f"229 Entering Extended Passive Mode (|||{port}|)\n"
        data = socket.create_connection(("127.0.0.1", port))
        assert retr(client, "a.txt", data)[1] == b"hello world\n"
        client.close()


# -- RETR counts (§3.5.5) ---------------------------------------------------------------
def test_retr_rest_announces_full_size(connect):
    client = connect()
    assert client.cmd("REST 6") == "350 Restarting at 6.\n"
    assert retr(client, "a.txt")[:2] == ("150 OK 12 bytes available for reading.\n", b"world\n")


def test_retr_rang_exclusive_end_and_beyond_eof(connect):
    client = connect()
    assert client.cmd("RANG 2 5") == "350 Restarting at 2. End byte range at 5\n"
    assert retr(client, "a.txt")[:2] == ("150 OK 3 bytes available for reading.\n", b"llo")
    assert retr(client, "a.txt")[:2] == ("150 OK 12 bytes available for reading.\n", b"hello world\n")  # reset
    assert client.cmd("RANG 10 100") == "350 Restarting at 10. End byte range at 100\n"
    assert retr(client, "a.txt")[:2] == ("150 OK 90 bytes available for reading.\n", b"d\n")


def test_range_survives_errors_and_rang_reset(connect):
    client = connect()
    client.cmd("RANG 2 5")
    assert client.cmd("RETR nosuch").startswith("550 ")
    assert retr(client, "a.txt")[:2] == ("150 OK 3 bytes available for reading.\n", b"llo")
    client.cmd("RANG 2 5")
    assert client.cmd("RANG 1 0") == "350 Resetting range\n"
    assert retr(client, "a.txt")[1] == b"hello world\n"


def test_range_syntax_errors(connect):
    client = connect()
    assert client.cmd("RANG 5") == err(501, "RANG", "Argument syntax error")
    assert client.cmd("RANG a b") == err(501, "RANG", "Argument syntax error")
    assert client.cmd("RANG") == err(500, "RANG", "'NoneType' object has no attribute 'split'")
    assert client.cmd("REST x") == err(501, "REST", "Argument syntax error")
    assert client.cmd("REST") == err(501, "REST", "Argument syntax error")
    assert client.cmd("ALLO x") == err(500, "ALLO", "invalid literal for int() with base 10: 'x'")


def test_retr_special_file_with_range(connect):
    client = connect(file="/dev/")
    client.cmd("RANG 0 3000000")
    first, payload, last = retr(client, "zero")
    assert first == "150 OK 3000000 bytes available for reading.\n"
    assert payload == bytes(3000000) and last == b"226 File transfer successful\n"
    assert retr(client, "/dev/zero")[:2] == ("150 OK 0 bytes available for reading.\n", b"")


def test_retr_directory(connect, root):
    client = connect()
    data = client.open_data()
    assert client.cmd("RETR sub") == f"150 OK {os.stat(root / 'sub').st_size} bytes available for reading.\n"
    assert client.read_reply() == err(500, "RETR", f"[Errno 21] Is a directory: '{root}/sub'").encode()
    assert recv_all(data) == b""


def test_retr_without_data_connection(connect):
    client = connect()
    assert client.cmd("RETR a.txt") == "150 OK 12 bytes available for reading.\n"
    assert client.read_reply() == err(500, "RETR", "'NoneType' object has no attribute 'write'").encode()
    assert client.cmd("RETR empty.txt") == "150 OK 0 bytes available for reading.\n"
    assert client.read_reply() == b"226 File transfer successful\n"


def test_large_download_and_upload(connect, root):
    blob = os.urandom(24 * 1024 * 1024 + 123)
    (root / "large.bin").write_bytes(blob)
    client = connect()
    first, payload, last = retr(client, "large.bin")
    assert first == f"150 OK {len(blob)} bytes available for reading.\n"
    assert last == b"226 File transfer successful\n"
    assert hashlib.md5(payload).digest() == hashlib.md5(blob).digest()
    assert stor(client, "copy.bin", blob) == ("150 OK\n", "226 File transfer successful\n")
    assert (root / "copy.bin").read_bytes() == blob


def test_rate_limited_download(connect, root):
    blob = os.urandom(3 * 1024 * 1024)
    (root / "r.bin").write_bytes(blob)
    client = connect(rate_limit=1 << 40)
    assert retr(client, "r.bin")[1] == blob


# -- STOR / APPE (§3.5.6, truncation table of §3.7) -------------------------------------
@pytest.mark.parametrize(
    "commands, payload, close, expected",
    [
        ([], b"xyz", True, b"xyz"),
        (["ALLO 3"], b"xyzEXTRA", False, b"xyz"),
        (["RANG 5 8"], b"xyz", True, b"ABCDExyzIJKLMNOPQRST"),
        (["RANG 25 28"], b"xyz", True, CONTENT + bytes(5) + b"xyz"),
        (["RANG 5 8", "ALLO 2"], b"xyQQ", False, b"ABCDExyHIJKLMNOPQRST"),
        (["ALLO 2", "RANG 5 8"], b"xyzQQ", False, b"ABCDExyzIJKLMNOPQRST"),
        (["REST 5"], b"xyz", True, bytes(5) + b"xyz"),
        (["REST 5", "ALLO 3"], b"xyzQQ", False, b"xyz"),
        (["ALLO 0"], b"", False, b""),
    ],
    ids=["plain", "allo", "rang", "rang-beyond-eof", "rang-allo", "allo-rang", "rest", "rest-allo", "allo0"],
)
def test_upload_truncation_table(connect, root, commands, payload, close, expected):
    target = root / "t.bin"
    target.write_bytes(CONTENT)
    client = connect()
    for line in commands:
        assert client.cmd(line)[:3] in ("200", "350")
    assert stor(client, "t.bin", payload, close=close) == ("150 OK\n", "226 File transfer successful\n")
    assert target.read_bytes() == expected
    # the state was reset by the transfer: a plain STOR truncates again
    assert stor(client, "t.bin", b"new") == ("150 OK\n", "226 File transfer successful\n")
    assert target.read_bytes() == b"new"


def test_stor_touches_before_150_and_errors(connect, root):
    client = connect()
    data = client.open_data()
    assert client.cmd("STOR nodir/x") == err(500, "STOR", f"[Errno 2] No such file or directory: '{root}/nodir/x'")
    assert client.cmd("STOR new.bin") == "150 OK\n"  # the data connection survived the error
    data.sendall(b"data")
    data.close()
    assert client.read_reply() == b"226 File transfer successful\n"
    assert (root / "new.bin").read_bytes() == b"data"
    # no data connection: the file is created (touched) and the transfer fails after 150
    assert client.cmd("STOR touched.bin") == "150 OK\n"
    assert client.read_reply() == err(500, "STOR", "'NoneType' object has no attribute 'read'").encode()
    assert (root / "touched.bin").read_bytes() == b""


def test_appe_bug_and_allo(connect, root):
    (root / "t.bin").write_bytes(CONTENT)
    client = connect()
    data = client.open_data()
    assert client.cmd("APPE t.bin") == err(500, "APPE", "tuple indices must be integers or slices, not str")
    # uftpd set the length before failing, so the next APPE passes the check (state survives errors)
    assert client.cmd("APPE nosuch") == "150 OK\n"
    assert client.read_reply() == err(
        500, "APPE", f"[Errno 2] No such file or directory: '{root}/nosuch'"
    ).encode()
    assert recv_all(data) == b""  # failure after 150: data closed
    assert client.cmd("RANG 1 0") == "350 Resetting range\n"
    assert client.cmd("APPE t.bin").startswith("500 ")  # bug again without ALLO/RANG
    assert client.cmd("ALLO 3") == "200 OK Will read up to 3 bytes from data connection.\n"
    data = client.open_data()
    assert client.cmd("APPE t.bin") == "150 OK\n"
    data.sendall(b"xyz")
    assert client.read_reply() == b"226 File transfer successful\n"
    assert (root / "t.bin").read_bytes() == b"xyz"  # truncated and written at 0: no real append


def test_upload_keep_alive(connect, root):
    client = connect()
    client.cmd("KEEP-ALIVE 1")
    data = client.open_data()
    for name, payload in (("k1", b"first"), ("k2", b"second!")):
        client.cmd(f"ALLO {len(payload)}")
        assert client.cmd(f"STOR {name}") == "150 OK\n"
        data.sendall(payload)
        assert client.read_reply() == b"226 File transfer successful\n"
    assert (root / "k1").read_bytes() == b"first" and (root / "k2").read_bytes() == b"second!"


# -- archive mode -----------------------------------------------------------------------
def make_tar(entries: dict[str, bytes | None]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, content in entries.items():
            info = tarfile.TarInfo(name)
            if content is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
    return buf.getvalue()


def test_archive_mode_extracts_tar(connect, root):
    client = connect()
    assert client.cmd("TYPE ARCHIVE") == "200 OK\n"
    archive = make_tar({"d1": None, "d1/x.txt": b"x" * 5000, "deep/er/y.txt": b"yy", "empty-dir": None})
    assert stor(client, "sub", archive) == ("150 OK\n", "226 File transfer successful\n")
    assert (root / "sub" / "d1" / "x.txt").read_bytes() == b"x" * 5000
    assert (root / "sub" / "deep" / "er" / "y.txt").read_bytes() == b"yy"
    assert (root / "sub" / "empty-dir").is_dir()
    # archive mode stays on; an escaping member is refused by the path check
    first, last = stor(client, "sub", make_tar({"../../../evil.txt": b"bad"}))
    assert first == "150 OK\n" and last.startswith("534 Error processing command 'STOR': Forbidden: ")
    assert client.cmd("TYPE NORMAL") == "200 OK\n"
    assert stor(client, "plain.tar", archive) == ("150 OK\n", "226 File transfer successful\n")
    assert (root / "plain.tar").read_bytes() == archive


def test_archive_target_must_exist(connect, root):
    client = connect()
    client.cmd("TYPE ARCHIVE")
    first, last = stor(client, "newdir", make_tar({"f.txt": b"1"}))
    assert first == "150 OK\n"
    assert last == err(500, "STOR", f"[Errno 20] Not a directory: '{root}/newdir/f.txt'")
    assert (root / "newdir").is_file()


# -- HASH (§3.5.7) ----------------------------------------------------------------------
def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def test_hash(connect, root):
    client = connect()
    assert client.cmd("HASH a.txt") == f"213 MD5 0-11 6f5902ac237024bdd0c176cb93063dc4 {root}/a.txt\n"
    client.cmd("RANG 0 5")
    assert client.cmd("HASH a.txt") == f"213 MD5 0-4 {md5(b'hello')} {root}/a.txt\n"
    assert client.cmd("HASH a.txt").startswith("213 MD5 0-11 ")  # range reset
    client.cmd("REST 6")
    assert client.cmd("HASH a.txt") == f"213 MD5 6-11 {md5(b'world' + bytes([10]))} {root}/a.txt\n"
    client.cmd("RANG 5 100")  # beyond EOF: the requested range is reported
    assert client.cmd("HASH a.txt") == f"213 MD5 5-99 {md5(b' world' + bytes([10]))} {root}/a.txt\n"
    assert client.cmd("HASH empty.txt") == f"213 MD5 0-0 {md5(b'')} {root}/empty.txt\n"
    assert client.cmd("OPTS HASH SHA-256") == "200 HASH=SHA-256\n"
    assert client.cmd("HASH sub/b.bin") == (
        f"213 SHA-256 0-999 {hashlib.sha256((root / 'sub' / 'b.bin').read_bytes()).hexdigest()} {root}/sub/b.bin\n"
    )
    (root / "my file.txt").write_bytes(b"spaces")
    client.cmd("OPTS HASH SHA-1")
    assert client.cmd("HASH my file.txt") == f"213 SHA-1 0-5 {hashlib.sha1(b'spaces').hexdigest()} {root}/my file.txt\n"
    assert client.cmd("HASH nosuch") == err(550, "HASH", "Directory/file does not exist or cannot be accessed!")
    assert client.cmd("HASH sub") == err(500, "HASH", f"[Errno 21] Is a directory: '{root}/sub'")


def test_hash_keepalive_lines(root):
    blob = os.urandom(3 * 1024 * 1024)
    (root / "h.bin").write_bytes(blob)
    with UFTPD(hash_keepalive_interval=-1) as srv:  # every chunk is "too long"
        srv.add_job("h", "demouser", file=str(root) + "/")
        client = RawFTP(srv.port)
        client.login("h")
        lines = client.cmd("HASH h.bin").split("\n")
        assert lines[:3] == ["213-", "213-", "213-"]
        assert lines[3] == f"213 MD5 0-{len(blob) - 1} {md5(blob)} {root}/h.bin"
        client.close()
