"""Multi-stream framing (§5), encryption (§6) and compression (§7) of the test UFTPD, on raw
sockets: golden bytes, uftpd's error texts and its data-path defects (``bug_compat``).

Ciphertexts are produced and checked with ``cryptography`` directly, frames with
``struct`` — nothing of uftpcore's client side is used here.
"""

from __future__ import annotations

import gzip
import os
import socket
import struct
import threading
import time
import zlib

import pytest
from cryptography.hazmat.decrepit.ciphers.algorithms import Blowfish
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from uftpcore.server import UFTPD

try:
    from .test_server_support import RawFTP, new_secret, recv_all, recv_exact
except ImportError:
    from test_server_support import RawFTP, new_secret, recv_all, recv_exact  # noqa: F401

HEADER = struct.Struct(">HHIII")
KEYS = {"BLOWFISH": bytes(range(1, 57)), "AES": bytes(range(100, 148))}
BS = {"BLOWFISH": 8, "AES": 16}


# -- helpers ------------------------------------------------------------------------------
def err(verb: str, message: str, code: int = 500) -> bytes:
    return f"{code} Error processing command '{verb}': {message}\n".encode()


def cipher(algo: str, key: bytes | None = None) -> Cipher:
    key = KEYS[algo] if key is None else key
    if algo == "AES":
        return Cipher(algorithms.AES(key[16:]), modes.CBC(key[:16]))
    return Cipher(Blowfish(key), modes.ECB())


def encrypt(algo: str, data: bytes, pad: bool = True) -> bytes:
    if pad:
        p = BS[algo] - len(data) % BS[algo]
        data += bytes([p]) * p
    enc = cipher(algo).encryptor()
    return enc.update(data) + enc.finalize()


def decrypt(algo: str, data: bytes, padded: bool = True) -> bytes:
    dec = cipher(algo).decryptor()
    plain = dec.update(data) + dec.finalize()
    if padded:
        p = plain[-1]
        assert 1 <= p <= BS[algo] and plain[-p:] == bytes([p]) * p, "bad padding"
        plain = plain[:-p]
    return plain


def frames(data: bytes, n: int, block: int = 16384, seq0: int = 0) -> list[bytes]:
    """The N per-stream byte streams of a JPARSS writer (§5.1/§5.2)."""
    out = [bytearray() for _ in range(n)]
    pos, seq = 0, seq0
    while pos < len(data):
        size = min(block, len(data) - pos)
        base = size // n
        for i in range(n):
            start = i * base
            length = size - start if i == n - 1 else base
            out[i] += HEADER.pack(0xCEBF, i, seq, size, length) + data[pos + start:pos + start + length]
        pos += size
        seq += 1
    return [bytes(o) for o in out]


def parse_frames(raw: bytes, index: int, n: int) -> tuple[bytes, list[tuple[int, int, int]]]:
    """Check stream ``index``'s frames; returns (payload placed by block, [(seq, S, chunk)])."""
    pos = 0
    placed = bytearray()
    heads = []
    while pos < len(raw):
        magic, idx, seq, size, chunk = HEADER.unpack(raw[pos:pos + 16])
        assert (magic, idx, seq) == (0xCEBF, index, len(heads))
        assert chunk == (size - (n - 1) * (size // n) if index == n - 1 else size // n)
        heads.append((seq, size, chunk))
        placed += raw[pos + 16:pos + 16 + chunk]
        pos += 16 + chunk
    return bytes(placed), heads


def join_streams(raws: list[bytes], n: int) -> bytes:
    parts = [parse_frames(raw, i, n) for i, raw in enumerate(raws)]
    heads = parts[0][1]
    out = bytearray()
    offsets = [0] * n
    for b, (_seq, size, _chunk) in enumerate(heads):
        for i in range(n):
            chunk = parts[i][1][b][2]
            out += parts[i][0][offsets[i]:offsets[i] + chunk]
            offsets[i] += chunk
    return bytes(out)


def send_streams(socks: list[socket.socket], payloads: list[bytes], close: bool = True) -> None:
    """Send every stream in its own thread (like a real client), then half-close."""

    def run(sock: socket.socket, payload: bytes) -> None:
        try:
            sock.sendall(payload)
            if close:
                sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server may stop reading early (errors, ALLO count)

    threads = [threading.Thread(target=run, args=pair) for pair in zip(socks, payloads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)


def open_set(client: RawFTP, n: int) -> list[socket.socket]:
    if n > 1:
        assert client.cmd(f"NOOP {n}") == f"222 Opening {n} data connections\n"
    return [client.open_data() for _ in range(n)]


def retr_streams(client: RawFTP, name: str, n: int) -> tuple[str, list[bytes], bytes]:
    socks = open_set(client, n)
    first = client.cmd(f"RETR {name}")
    raws = [b""] * n

    def run(i: int) -> None:
        raws[i] = recv_all(socks[i])

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    return first, raws, client.read_reply()


def stor_streams(client: RawFTP, name: str, payloads: list[bytes], close: bool = True,
                 pre: tuple[str, ...] = ()) -> tuple[str, bytes]:
    socks = open_set(client, len(payloads))
    for line in pre:
        assert client.cmd(line).startswith(("200", "350")), line
    first = client.cmd(f"STOR {name}")
    assert first == "150 OK\n"
    send_streams(socks, payloads, close)
    return first, client.read_reply()


@pytest.fixture
def root(tmp_path):
    base = tmp_path / "data"
    base.mkdir()
    return base


@pytest.fixture(params=[True, False], ids=["faithful", "fixed"])
def bug_compat(request):
    return request.param


@pytest.fixture
def server(bug_compat):
    with UFTPD(accept_timeout=5.0, housekeeping_interval=3600, bug_compat=bug_compat,
               max_connections=1000) as srv:
        yield srv


@pytest.fixture
def faithful():
    with UFTPD(accept_timeout=5.0, housekeeping_interval=3600, max_connections=1000) as srv:
        yield srv


@pytest.fixture
def fixed():
    with UFTPD(accept_timeout=5.0, housekeeping_interval=3600, bug_compat=False, max_connections=1000) as srv:
        yield srv


def login(srv: UFTPD, root, **job) -> RawFTP:
    secret = new_secret()
    srv.add_job(secret, "demouser", file=str(root) + "/", **job)
    client = RawFTP(srv.port)
    assert client.login(secret) == "230 Login successful\n"
    return client


# -- §4.5 / §5.2 golden transcript --------------------------------------------------------
def test_golden_two_stream_transcript(faithful, root):
    blob = bytes((i * 7 + 3) & 0xFF for i in range(150000))
    (root / "big.bin").write_bytes(blob)
    secret = new_secret()
    faithful.add_job(secret, "demouser", file=str(root) + "/")
    client = RawFTP(faithful.port)
    assert client.read_reply() == b"220 UFTPD 3.5.3, https://www.unicore.eu\n"
    assert client.cmd("USER anonymous") == "331 Please specify the password\n"
    assert client.cmd(f"PASS {secret}") == "230 Login successful\n"
    assert client.cmd("SYST") == "215 Unix Type: L8\n"
    assert client.cmd("FEAT").endswith("211 END\n")
    assert client.cmd("NOOP 2") == "222 Opening 2 data connections\n"
    first, second = client.open_data(), client.open_data()
    assert client.cmd("RANG 0 100000") == "350 Restarting at 0. End byte range at 100000\n"
    assert client.cmd("RETR big.bin") == "150 OK 100000 bytes available for reading.\n"
    raws = [recv_all(first), recv_all(second)]  # both closed after the frames
    assert client.read_reply() == b"226 File transfer successful\n"
    # §5.2 worked example: the first block's headers, byte for byte
    assert raws[0][:16] == bytes.fromhex("ce bf 00 00 00 00 00 00 00 00 40 00 00 00 20 00")
    assert raws[1][:16] == bytes.fromhex("ce bf 00 01 00 00 00 00 00 00 40 00 00 00 20 00")
    assert raws[0][16:16 + 8192] == blob[:8192] and raws[1][16:16 + 8192] == blob[8192:16384]
    # seq 0..6: six full blocks and 100000 - 6*16384 = 1696 bytes (848 per stream)
    assert raws == frames(blob[:100000], 2)
    assert [h[:2] for h in parse_frames(raws[0], 0, 2)[1]] == [(s, 16384) for s in range(6)] + [(6, 1696)]
    client.send("QUIT")
    assert client.expect_eof()
    client.close()


def test_three_stream_split_and_tiny_blocks(server, root):
    blob = os.urandom(16384 + 2)
    (root / "f.bin").write_bytes(blob)
    client = login(server, root)
    first, raws, final = retr_streams(client, "f.bin", 3)
    assert first == "150 OK 16386 bytes available for reading.\n"
    assert final == b"226 File transfer successful\n"
    assert [parse_frames(r, i, 3)[1] for i, r in enumerate(raws)] == [
        [(0, 16384, 5461), (1, 2, 0)], [(0, 16384, 5461), (1, 2, 0)], [(0, 16384, 5462), (1, 2, 2)]]
    assert join_streams(raws, 3) == blob
    client.close()


@pytest.mark.parametrize("n", [2, 3, 4])
def test_multistream_download_ranges_and_eof(server, root, n):
    blob = os.urandom(300001)
    (root / "f.bin").write_bytes(blob)
    client = login(server, root)
    for command, expect in (("RANG 1000 201000", blob[1000:201000]), ("REST 299990", blob[299990:]),
                            ("RANG 290000 400000", blob[290000:])):
        assert client.cmd(command).startswith("350")
        first, raws, final = retr_streams(client, "f.bin", n)
        assert first.startswith("150 OK ") and final == b"226 File transfer successful\n"
        assert join_streams(raws, n) == expect
    client.close()


def test_multistream_block_option(root):
    blob = os.urandom(10000)
    (root / "f.bin").write_bytes(blob)
    with UFTPD(multistream_block=4096, housekeeping_interval=3600) as srv:
        client = login(srv, root)
        _first, raws, _final = retr_streams(client, "f.bin", 2)
        assert [h[1] for h in parse_frames(raws[0], 0, 2)[1]] == [4096, 4096, 1808]
        assert join_streams(raws, 2) == blob
        client.close()


def test_multistream_keep_alive_continues_sequence(faithful, root):
    blob = os.urandom(40000)
    (root / "f.bin").write_bytes(blob)
    client = login(faithful, root)
    assert client.cmd("KEEP-ALIVE true") == "200 OK\n"
    socks = open_set(client, 2)
    assert client.cmd("RETR f.bin").startswith("150")
    raws = [recv_exact(s, len(frames(blob, 2)[i])) for i, s in enumerate(socks)]
    assert client.read_reply() == b"226 File transfer successful\n"
    assert raws == frames(blob, 2)
    # the same set again: the frame sequence continues at 3 (uftpd's counter lives in the connector)
    assert client.cmd("RETR f.bin").startswith("150")
    again = frames(blob, 2, seq0=3)
    assert [recv_exact(s, len(again[i])) for i, s in enumerate(socks)] == again
    assert client.read_reply() == b"226 File transfer successful\n"
    # ... and an upload on it must continue the sequence, too
    assert client.cmd("ALLO 40000").startswith("200")
    assert client.cmd("STOR up.bin") == "150 OK\n"
    send_streams(socks, frames(blob, 2, seq0=6), close=False)
    assert client.read_reply() == b"226 File transfer successful\n"
    assert (root / "up.bin").read_bytes() == blob
    client.close()


def test_listing_on_multistream_set_sends_nothing(server, root):
    (root / "a.txt").write_bytes(b"x")
    client = login(server, root)
    socks = open_set(client, 2)
    assert client.cmd("MLSD") == "150 OK\n"
    assert client.read_reply() == b"226 File transfer successful\n"
    assert [recv_all(s) for s in socks] == [b"", b""]
    client.close()


# -- multi-stream uploads: the strict reader (§5.4) ----------------------------------------
@pytest.mark.parametrize("n", [2, 3, 4])
@pytest.mark.parametrize("block", [16384, 1 << 20, 1000])
def test_multistream_upload_any_block_size(server, root, n, block):
    blob = os.urandom(2 * 1048576 + 77)
    client = login(server, root)
    _first, final = stor_streams(client, "up.bin", frames(blob, n, block))
    assert final == b"226 File transfer successful\n"
    assert (root / "up.bin").read_bytes() == blob
    client.close()


def test_multistream_upload_allo_and_rang(server, root):
    blob = os.urandom(100003)
    (root / "up.bin").write_bytes(b"z" * 200000)
    client = login(server, root)
    # ALLO: truncate, stop after the count without waiting for EOF
    _first, final = stor_streams(client, "up.bin", frames(blob, 2), close=False, pre=("ALLO 100003",))
    assert final == b"226 File transfer successful\n"
    assert (root / "up.bin").read_bytes() == blob
    # RANG: no truncation, written at the offset
    _first, final = stor_streams(client, "up.bin", frames(b"Q" * 5000, 3), close=False, pre=("RANG 10 5010",))
    assert final == b"226 File transfer successful\n"
    assert (root / "up.bin").read_bytes() == blob[:10] + b"Q" * 5000 + blob[5010:]
    client.close()


def _bad(raw: bytes, offset: int, value: bytes) -> bytes:
    return raw[:offset] + value + raw[offset + len(value):]


@pytest.mark.parametrize("case,expect,written", [
    ("magic", "I/O error reader 1 (magic number)", 16384),
    ("sequence", "I/O error reader 0 (sequence number)", 16384),
    ("index", "not all arguments converted during string formatting", 16384),
    ("truncated", "unpack requires a buffer of 16 bytes", 16384),
    ("index_and_magic", "not all arguments converted during string formatting", 16384),
])
def test_multistream_upload_errors(server, root, case, expect, written):
    blob = os.urandom(3 * 16384)
    streams = frames(blob, 2)
    frame = 16 + 8192  # second block starts here on both streams
    if case == "magic":
        streams[1] = _bad(streams[1], frame, b"\xca\xfe")
    elif case == "sequence":
        streams[0] = _bad(streams[0], frame + 4, struct.pack(">I", 7))
    elif case == "index":
        streams[0] = _bad(streams[0], frame + 2, b"\x00\x01")
    elif case == "index_and_magic":
        streams[1] = _bad(streams[1], frame, b"\x00\x00\x00\x00")
    elif case == "truncated":
        streams[1] = streams[1][:frame + 9]
    client = login(server, root)
    _first, final = stor_streams(client, "up.bin", streams)
    assert final == err("STOR", expect)
    # the blocks before the bad one were written; the data connections are gone, count reset
    assert (root / "up.bin").read_bytes() == blob[:written]
    assert client.cmd("EPSV").startswith("229 ")
    client.close()


def test_multistream_upload_eof_on_any_stream_ends(server, root):
    blob = os.urandom(3 * 16384)
    streams = frames(blob, 2)
    streams[1] = streams[1][:2 * (16 + 8192)]  # stream 1 ends after two blocks
    client = login(server, root)
    _first, final = stor_streams(client, "up.bin", streams)
    assert final == b"226 File transfer successful\n"
    assert (root / "up.bin").read_bytes() == blob[:2 * 16384]
    client.close()


# -- encryption, single stream (§6.2–§6.4) -------------------------------------------------
@pytest.mark.parametrize("algo", ["BLOWFISH", "AES"])
@pytest.mark.parametrize("size", [0, 1, 15, 16, 100003])
def test_encrypted_single_stream_download(server, root, algo, size):
    blob = os.urandom(size)
    (root / "f.bin").write_bytes(blob)
    client = login(server, root, key=KEYS[algo], algo=algo)
    assert f" CRYPTED-{algo}\n" in client.cmd("FEAT")
    first, raws, final = retr_streams(client, "f.bin", 1)
    assert first == f"150 OK {size} bytes available for reading.\n"
    assert final == b"226 File transfer successful\n"
    assert len(raws[0]) == (size // BS[algo] + 1) * BS[algo]  # always padded
    assert decrypt(algo, raws[0]) == blob
    # a range is encrypted as a message of its own (fresh cipher per transfer)
    assert client.cmd("RANG 1 11").startswith("350")
    _first, raws, _final = retr_streams(client, "f.bin", 1)
    assert decrypt(algo, raws[0]) == blob[1:11]
    client.close()


def test_algorithm_inferred_from_key_length(server, root):
    (root / "f.bin").write_bytes(b"abc")
    client = login(server, root, key=KEYS["AES"])  # 48 bytes, no algo: AES
    assert " CRYPTED-AES\n" in client.cmd("FEAT")
    assert decrypt("AES", retr_streams(client, "f.bin", 1)[1][0]) == b"abc"
    client = login(server, root, key=KEYS["BLOWFISH"][:20])
    assert " CRYPTED-BLOWFISH\n" in client.cmd("FEAT")
    raw = retr_streams(client, "f.bin", 1)[1][0]
    dec = Cipher(Blowfish(KEYS["BLOWFISH"][:20]), modes.ECB()).decryptor()
    assert dec.update(raw) + dec.finalize() == b"abc" + b"\x05" * 5
    client.close()


@pytest.mark.parametrize("key,algo,message", [
    (b"k" * 20, "AES", "Key length must be >32 for encryption algorithm: AES"),
    (b"k" * 36, "AES", "Illegal key length for encryption algorithm: AES"),
    (b"k" * 3, "BLOWFISH", "Incorrect Blowfish key length (3 bytes)"),
    (b"k" * 16, "aes", "Unknown encryption algorithm: aes"),
])
def test_bad_key_material(faithful, root, key, algo, message):
    """uftpd creates the ciphers when the set is complete: the 229 is followed by a 500."""
    secret = new_secret()
    faithful.add_job(secret, "demouser", file=str(root) + "/", key=key)
    faithful.registry.lookup(secret).request["algo"] = algo  # as a raw command-port request would
    client = RawFTP(faithful.port)
    assert client.login(secret) == "230 Login successful\n"
    reply = client.cmd("EPSV")
    port = int(reply.split("|||")[1].split("|")[0])
    data = socket.create_connection(("127.0.0.1", port), timeout=10)
    assert client.read_reply() == err("EPSV", message)
    # no stream stack: a transfer finds none (uftpd: 'NoneType' ... 'write')
    (root / "a.txt").write_bytes(b"a")
    assert client.cmd("RETR a.txt") == "150 OK 1 bytes available for reading.\n"
    assert client.read_reply() == err("RETR", "'NoneType' object has no attribute 'write'")
    assert recv_all(data) == b""
    client.close()


@pytest.mark.parametrize("algo", ["BLOWFISH", "AES"])
@pytest.mark.parametrize("size", [0, 1, 8, 16, 100003, 1048576 + 5])
def test_encrypted_single_stream_upload(server, root, algo, size):
    blob = os.urandom(size)
    (root / "up.bin").write_bytes(b"old content" * 1000)
    client = login(server, root, key=KEYS[algo], algo=algo)
    # the ALLO length is ignored when encrypted (reads until EOF), so is a smaller one
    _first, final = stor_streams(client, "up.bin", [encrypt(algo, blob)], pre=("ALLO 3",))
    assert final == b"226 File transfer successful\n"
    assert (root / "up.bin").read_bytes() == blob
    # RANG: the offset applies, the length does not
    _first, final = stor_streams(client, "up.bin", [encrypt(algo, b"XYZ" * 10)], pre=("RANG 5 6",))
    assert final == b"226 File transfer successful\n"
    assert (root / "up.bin").read_bytes() == (blob[:5].ljust(5, b"\0") + b"XYZ" * 10 + blob[35:])
    client.close()


@pytest.mark.parametrize("algo,size,grown", [
    ("BLOWFISH", 1048575, b"\x01"), ("AES", 1048575, b"\x01"), ("AES", 1048560, b"\x10" * 16),
    ("BLOWFISH", 2 * 1048576 - 8, b"\x08" * 8),
])
def test_padding_defect_single_stream_upload(server, bug_compat, root, algo, size, grown):
    """§6.4: the ciphertext length is a multiple of the 1 MiB read size → padding kept."""
    blob = os.urandom(size)
    client = login(server, root, key=KEYS[algo], algo=algo)
    _first, final = stor_streams(client, "up.bin", [encrypt(algo, blob)])
    assert final == b"226 File transfer successful\n"
    assert (root / "up.bin").read_bytes() == (blob + grown if bug_compat else blob)
    # the work-around: a read size that does not divide the ciphertext length
    assert client.cmd("OPTS BUFFER_SIZE 1048575") == "200 BUFFER_SIZE=1048575\n"
    _first, final = stor_streams(client, "up.bin", [encrypt(algo, blob)])
    assert final == b"226 File transfer successful\n"
    assert (root / "up.bin").read_bytes() == blob
    client.close()


def test_opts_buffer_size_is_the_read_size(faithful, root):
    """With BUFFER_SIZE 4096 the 1 MiB defect moves to 4 KiB multiples (uftpd ≤ 3.5.2: 64 KiB)."""
    client = login(faithful, root, key=KEYS["AES"], algo="AES")
    assert client.cmd("OPTS BUFFER_SIZE 4096").startswith("200")
    blob = os.urandom(4096 * 3 - 1)
    _first, final = stor_streams(client, "up.bin", [encrypt("AES", blob)])
    assert (root / "up.bin").read_bytes() == blob + b"\x01"
    blob = os.urandom(4096 * 3 + 100)
    _first, final = stor_streams(client, "up.bin", [encrypt("AES", blob)])
    assert final == b"226 File transfer successful\n" and (root / "up.bin").read_bytes() == blob
    client.close()


def test_encrypted_upload_unaligned_or_wrong_key(server, bug_compat, root):
    client = login(server, root, key=KEYS["AES"], algo="AES")
    _first, final = stor_streams(client, "up.bin", [encrypt("AES", b"x" * 100)[:-3]])
    assert final == err("STOR", "Data must be padded to 16 byte boundary in CBC mode" if bug_compat else
                        "encrypted stream ended inside a cipher block (13 extra bytes)")
    client = login(server, root, key=KEYS["BLOWFISH"], algo="BLOWFISH")
    _first, final = stor_streams(client, "up.bin", [encrypt("BLOWFISH", b"x" * 100)[:-3]])
    assert final == err("STOR", "Data must be aligned to block boundary in ECB mode" if bug_compat else
                        "encrypted stream ended inside a cipher block (5 extra bytes)")
    # a wrong key: uftpd strips "padding" blindly; corrected: refused
    other = bytes(56)
    enc = Cipher(Blowfish(other), modes.ECB()).encryptor()
    _first, final = stor_streams(client, "up.bin", [enc.update(b"y" * 96) + enc.finalize()])
    if bug_compat:
        assert final == b"226 File transfer successful\n"
    else:
        assert final == err("STOR", "Padding is incorrect.")
    client.close()


# -- encryption, multiple streams (§6.5) ---------------------------------------------------
@pytest.mark.parametrize("algo", ["BLOWFISH", "AES"])
def test_multistream_encrypted_download(server, bug_compat, root, algo):
    blob = os.urandom(100003)
    (root / "f.bin").write_bytes(blob)
    client = login(server, root, key=KEYS[algo], algo=algo)
    first, raws, final = retr_streams(client, "f.bin", 2)
    assert first == "150 OK 100003 bytes available for reading.\n"
    assert final == b"226 File transfer successful\n"
    plain = frames(blob, 2)  # 50113 and 50114 bytes per stream
    bs = BS[algo]
    if bug_compat:
        # tails of len mod bs never sent, no padding: 1-2 bytes short per stream
        assert [len(r) for r in raws] == [len(p) - len(p) % bs for p in plain] == [50112, 50112]
        assert [decrypt(algo, r, padded=False) for r in raws] == [p[:50112] for p in plain]
    else:
        assert [decrypt(algo, r) for r in raws] == plain
    # the safe recipe: N=2 and a range that is a multiple of 16384 → nothing lost
    assert client.cmd("RANG 0 98304").startswith("350")
    _first, raws, _final = retr_streams(client, "f.bin", 2)
    good = frames(blob[:98304], 2)
    assert [decrypt(algo, r, padded=not bug_compat) for r in raws] == good
    client.close()


@pytest.mark.parametrize("algo", ["BLOWFISH", "AES"])
@pytest.mark.parametrize("n", [2, 4])
def test_multistream_encrypted_upload_safe_recipe(server, root, algo, n):
    """Every chunk block-aligned, streams closed without padding: works, also faithful."""
    blob = os.urandom(5 * 16384)
    client = login(server, root, key=KEYS[algo], algo=algo)
    _first, final = stor_streams(client, "up.bin", [encrypt(algo, s, pad=False) for s in frames(blob, n)])
    assert final == b"226 File transfer successful\n"
    assert (root / "up.bin").read_bytes() == blob
    client.close()


def test_multistream_encrypted_upload_padding_block(server, bug_compat, root):
    blob = os.urandom(3 * 16384)
    # AES: the padding block is read as a header → error after all data was written
    client = login(server, root, key=KEYS["AES"], algo="AES")
    _first, final = stor_streams(client, "up.bin", [encrypt("AES", s) for s in frames(blob, 2)])
    assert final == (err("STOR", "not all arguments converted during string formatting") if bug_compat
                     else b"226 File transfer successful\n")
    assert (root / "up.bin").read_bytes() == blob
    # Blowfish: the 8-byte padding is a short last read, stripped to nothing → a clean EOF
    client = login(server, root, key=KEYS["BLOWFISH"], algo="BLOWFISH")
    _first, final = stor_streams(client, "up.bin", [encrypt("BLOWFISH", s) for s in frames(blob, 2)])
    assert final == b"226 File transfer successful\n"
    assert (root / "up.bin").read_bytes() == blob
    client.close()


@pytest.mark.parametrize("algo,data_size,expect", [
    ("BLOWFISH", 100003, "not all arguments converted during string formatting"),
    ("AES", 100003, "not all arguments converted during string formatting"),
    ("BLOWFISH", 100, "unpack requires a buffer of 16 bytes"),
])
def test_multistream_encrypted_upload_misaligned(server, bug_compat, root, algo, data_size, expect):
    """Chunks that are not a multiple of the block size: uftpd's decryptor returns short
    reads, the reader does not retry and the frames slip (§6.5)."""
    blob = os.urandom(data_size)
    client = login(server, root, key=KEYS[algo], algo=algo)
    n = 3 if data_size > 100 else 2
    _first, final = stor_streams(client, "up.bin", [encrypt(algo, s) for s in frames(blob, n)])
    if bug_compat:
        assert final == err("STOR", expect)
        assert (root / "up.bin").read_bytes() != blob
    else:
        assert final == b"226 File transfer successful\n"
        assert (root / "up.bin").read_bytes() == blob
    client.close()


# -- compression (§7) ----------------------------------------------------------------------
def test_compressed_single_stream(server, root):
    blob = os.urandom(50000) + b"a" * 300000
    (root / "f.bin").write_bytes(blob)
    client = login(server, root, compress=True)
    first, raws, final = retr_streams(client, "f.bin", 1)
    assert first == "150 OK 350000 bytes available for reading.\n"
    assert final == b"226 File transfer successful\n"
    assert gzip.decompress(raws[0]) == blob  # one complete member, trailer included
    assert client.cmd("RANG 49990 50010").startswith("350")
    assert gzip.decompress(retr_streams(client, "f.bin", 1)[1][0]) == blob[49990:50010]
    # upload: with trailer and EOF; without trailer; ALLO stops early (trailer left unread)
    _first, final = stor_streams(client, "up.bin", [gzip.compress(blob)])
    assert final == b"226 File transfer successful\n" and (root / "up.bin").read_bytes() == blob
    z = zlib.compressobj(wbits=31)
    _first, final = stor_streams(client, "up.bin", [z.compress(blob) + z.flush(zlib.Z_SYNC_FLUSH)])
    assert final == b"226 File transfer successful\n" and (root / "up.bin").read_bytes() == blob
    _first, final = stor_streams(client, "up.bin", [gzip.compress(blob)], close=False, pre=("ALLO 1000",))
    assert final == b"226 File transfer successful\n" and (root / "up.bin").read_bytes() == blob[:1000]
    # corrupted: zlib's text
    _first, final = stor_streams(client, "up.bin", [b"not gzip at all"])
    assert final == err("STOR", "Error -3 while decompressing data: incorrect header check")
    client.close()


@pytest.mark.parametrize("n", [2, 3])
def test_compressed_multistream_download(server, bug_compat, root, n):
    blob = os.urandom(20000) + b"b" * 60000
    (root / "f.bin").write_bytes(blob)
    client = login(server, root, compress=True)
    _first, raws, final = retr_streams(client, "f.bin", n)
    assert final == b"226 File transfer successful\n"
    plain = []
    for raw in raws:
        d = zlib.decompressobj(wbits=31)
        plain.append(d.decompress(raw))
        assert d.eof is (not bug_compat)  # faithful: never finished, no trailer
    assert plain == frames(blob, n)
    # a sync flush after every frame: the first frame decodes from the first bytes
    d = zlib.decompressobj(wbits=31)
    first_frame = 16 + 16384 // n
    assert raws[0].find(b"\x00\x00\xff\xff") > 0
    assert len(d.decompress(raws[0][:raws[0].find(b"\x00\x00\xff\xff") + 4])) == first_frame
    client.close()


@pytest.mark.parametrize("flush", ["sync", "finish", "both", "none"])
def test_compressed_multistream_upload(server, root, flush):
    blob = os.urandom(20000) + b"c" * 70000
    payloads = []
    for stream in frames(blob, 2):
        z = zlib.compressobj(wbits=31)
        out = b""
        for k in range(0, len(stream), 5000):
            out += z.compress(stream[k:k + 5000])
            if flush in ("sync", "both"):
                out += z.flush(zlib.Z_SYNC_FLUSH)
        out += z.flush(zlib.Z_FINISH if flush in ("finish", "both", "none") else zlib.Z_SYNC_FLUSH)
        payloads.append(out)
    client = login(server, root, compress=True)
    _first, final = stor_streams(client, "up.bin", payloads)
    assert final == b"226 File transfer successful\n"
    assert (root / "up.bin").read_bytes() == blob
    client.close()


@pytest.mark.parametrize("algo", ["BLOWFISH", "AES"])
def test_compressed_and_encrypted_single_stream(server, root, algo):
    """§7.3: data → gzip → cipher, both directions."""
    blob = os.urandom(30000) + b"d" * 100000
    (root / "f.bin").write_bytes(blob)
    client = login(server, root, key=KEYS[algo], algo=algo, compress=True)
    _first, raws, final = retr_streams(client, "f.bin", 1)
    assert final == b"226 File transfer successful\n"
    assert gzip.decompress(decrypt(algo, raws[0])) == blob
    _first, final = stor_streams(client, "up.bin", [encrypt(algo, gzip.compress(blob))])
    assert final == b"226 File transfer successful\n" and (root / "up.bin").read_bytes() == blob
    client.close()


def test_compressed_and_encrypted_multistream_download_loses_tail(faithful, root):
    """Sync flushes do not flush the cipher writer: the last bytes stay behind (§7.3)."""
    blob = os.urandom(40000)
    (root / "f.bin").write_bytes(blob)
    client = login(faithful, root, key=KEYS["AES"], algo="AES", compress=True)
    _first, raws, final = retr_streams(client, "f.bin", 2)
    assert final == b"226 File transfer successful\n"
    for i, raw in enumerate(raws):
        assert len(raw) % 16 == 0
        d = zlib.decompressobj(wbits=31)
        got = d.decompress(decrypt("AES", raw, padded=False))
        assert len(got) < len(frames(blob, 2)[i])  # the end is missing
    client.close()


@pytest.mark.parametrize("job", [{"compress": True}, {"key": KEYS["AES"], "algo": "AES"},
                                 {"key": KEYS["BLOWFISH"], "algo": "BLOWFISH"}])
def test_listing_on_coded_connection(faithful, root, job):
    """uftpd's coded connectors have no ``write_message``: no entries are sent, and closing
    the unused writer sends an empty gzip member / one encrypted padding block."""
    (root / "a.txt").write_bytes(b"x")
    client = login(faithful, root, **job)
    data = client.open_data()
    assert client.cmd("MLSD") == "150 OK\n"
    assert client.read_reply() == b"226 File transfer successful\n"
    raw = recv_all(data)
    if "key" in job:
        assert decrypt(job["algo"], raw) == b"" and len(raw) == BS[job["algo"]]
    else:
        assert gzip.decompress(raw) == b""
    client.close()


# -- rate limit (§11.1) --------------------------------------------------------------------
@pytest.mark.parametrize("how", ["job", "opts"])
def test_rate_limit_multistream(faithful, root, how):
    blob = os.urandom(10 * 16384)
    (root / "f.bin").write_bytes(blob)
    client = login(faithful, root, **({"rate_limit": 20000} if how == "job" else {}))
    if how == "opts":
        assert client.cmd("OPTS RATE_LIMIT 20000") == "200 RATE_LIMIT=20000\n"
    started = time.monotonic()
    _first, raws, final = retr_streams(client, "f.bin", 2)
    elapsed = time.monotonic() - started
    assert final == b"226 File transfer successful\n" and join_streams(raws, 2) == blob
    # uftpd's coarse scheme: +5 ms of sleep per 16 KiB block while above the limit
    assert elapsed >= 0.15
    started = time.monotonic()
    _first, final = stor_streams(client, "up.bin", frames(blob, 2))
    assert time.monotonic() - started >= 0.15
    assert (root / "up.bin").read_bytes() == blob
    client.close()


@pytest.mark.parametrize("job,n", [({}, 2), ({"compress": True}, 1), ({"key": KEYS["AES"], "algo": "AES"}, 1),
                                   ({"compress": True}, 3)])
def test_archive_mode_over_coded_and_multistream_sets(server, root, job, n):
    import io
    import tarfile

    buf = io.BytesIO()
    members = {"x/a.bin": os.urandom(70000), "b.txt": b"hello"}
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, payload in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    stream = buf.getvalue()
    (root / "target").mkdir()
    client = login(server, root, **job)
    assert client.cmd("TYPE ARCHIVE") == "200 OK\n"
    if "compress" in job:
        payloads = [gzip.compress(s) for s in (frames(stream, n) if n > 1 else [stream])]
    elif "key" in job:
        payloads = [encrypt("AES", stream)]
    else:
        payloads = frames(stream, n)
    _first, final = stor_streams(client, "target", payloads)
    assert final == b"226 File transfer successful\n"
    assert {name: (root / "target" / name).read_bytes() for name in members} == members
    client.close()


def test_multistream_allo_smaller_than_a_block(server, root):
    """uftpd asks its reader for min(16384, rest) bytes but takes whole blocks: the block
    that crosses the ALLO count is written completely."""
    blob = os.urandom(40000)
    client = login(server, root)
    _first, final = stor_streams(client, "up.bin", frames(blob, 2), close=False, pre=("ALLO 100",))
    assert final == b"226 File transfer successful\n"
    assert (root / "up.bin").read_bytes() == blob[:16384]
    client.close()
