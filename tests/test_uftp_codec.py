"""Encryption and compression layers (spec §6, §7), independent of any server."""

from __future__ import annotations

import gzip
import os
import socket
import threading

import numpy as np
import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from uftpcore import movers
from uftpcore._impl import get_fastpath
from uftpcore.auth import make_key
from uftpcore.errors import ProtocolError
from uftpcore.streamcodec import Decoder, Encoder, padded_length


@pytest.mark.parametrize("algo", ["AES", "BLOWFISH", None])
@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("size", [0, 1, 15, 16, 17, 100_000])
def test_single_stream_round_trip(algo, compress, size):
    key = make_key(algo) if algo else None
    data = os.urandom(size // 2) + b"a" * (size - size // 2)
    enc = Encoder(key, algo, compress)
    wire = b"".join(enc.encode(data[i:i + 7000]) for i in range(0, len(data), 7000)) + enc.finish()
    dec = Decoder(key, algo, compress)
    out = b"".join(dec.decode(wire[i:i + 333]) for i in range(0, len(wire), 333)) + dec.finish()
    assert out == data
    if algo and not compress:
        assert len(wire) == padded_length(size, 16 if algo == "AES" else 8)


def test_wire_format_is_standard_aes_cbc_pkcs5_and_gzip():
    key = make_key("AES")
    data = b"hello uftp" * 100
    enc = Encoder(key, "AES", True)
    wire = enc.encode(data) + enc.finish()
    dec = Cipher(algorithms.AES(key[16:]), modes.CBC(key[:16])).decryptor()
    plain = dec.update(wire) + dec.finalize()
    plain = plain[: -plain[-1]]
    assert gzip.decompress(plain) == data


def test_wrong_key_is_detected():
    k1, k2 = make_key("BLOWFISH"), make_key("BLOWFISH")
    enc = Encoder(k1, "BLOWFISH", True)
    wire = enc.encode(b"x" * 1000) + enc.finish()
    dec = Decoder(k2, "BLOWFISH", True)
    with pytest.raises(ProtocolError):
        dec.decode(wire)
        dec.finish()


def test_corrupted_gzip_is_detected():
    enc = Encoder(None, None, True)
    wire = bytearray(enc.encode(os.urandom(5000)) + enc.finish())
    wire[20] ^= 0xFF
    dec = Decoder(None, None, True)
    with pytest.raises(ProtocolError):
        dec.decode(bytes(wire))
        dec.finish()


def test_padding_bug_avoidance_for_compressed_encrypted_uploads():
    """uftpd keeps the padding when the ciphertext length is a multiple of its read size."""
    for n in range(200):
        enc = Encoder(make_key("AES"), "AES", True)
        wire = enc.encode(os.urandom(n * 37)) + enc.finish(avoid_multiple=64)
        assert len(wire) % 64, n


def test_unpadded_stream_must_be_block_aligned():
    enc = Encoder(make_key("AES"), "AES", False)
    enc.encode(b"x" * 32)
    assert enc.finish(padded=False) == b""
    enc = Encoder(make_key("AES"), "AES", False)
    enc.encode(b"x" * 33)
    with pytest.raises(ValueError):
        enc.finish(padded=False)


@pytest.mark.parametrize("streams", [1, 2, 4])
@pytest.mark.parametrize("algo,compress", [("AES", False), ("BLOWFISH", False), (None, True), ("AES", True)])
def test_coded_transfers_over_sockets(impl, streams, algo, compress):
    """movers.send/receive with codecs, the way a session uses them (multi-stream unpadded)."""
    fp = get_fastpath(impl)
    if algo and compress and streams > 1:
        with pytest.raises(ValueError):  # sessions never plan this (uftpd cannot do it, spec §7.3)
            movers.receive(fp, [socket.socketpair()[0]] * streams, None, 10, 1.0, make_key(algo), algo, True)
        return
    key = make_key(algo) if algo else None
    length = 16384 * 5 if (key and streams > 1) else 100_003
    data = np.random.default_rng(1).integers(0, 256, length, dtype=np.uint8)
    pairs = [socket.socketpair() for _ in range(streams)]
    out = np.zeros(length, dtype=np.uint8)
    got = {}

    def sender():
        movers.send(fp, [p[0] for p in pairs], movers.BufferSource(memoryview(data)), 5.0, key, algo, compress)
        for p in pairs:
            p[0].close()

    t = threading.Thread(target=sender)
    t.start()
    got["n"] = movers.receive(fp, [p[1] for p in pairs], movers.BufferDest(memoryview(out)), length, 5.0,
                              key, algo, compress)
    t.join()
    assert got["n"] == length
    assert (out == data).all()
