"""Per-stream encryption and compression layers (spec §6, §7, §8).

Layering per TCP stream, sender side: ``data (or JPARSS frames) -> gzip -> cipher -> socket``;
the receiver undoes it in reverse.  Every transfer on every stream starts a fresh cipher (same
key, and for AES the same IV) and a fresh gzip member.

* Blowfish: ECB with PKCS#5 padding, key = the whole key material (4..56 bytes).
* AES: CBC with PKCS#5 padding, key material = 16-byte IV || 16/24/32-byte key.
* gzip: RFC 1952 (zlib ``wbits=31``).

``cryptography`` and ``zlib`` release the GIL for large updates, so decoding on several stream
threads overlaps with network I/O.  Streams are *padded* (single stream: PKCS#5 block at the
end, gzip trailer) or *unpadded* (multi-stream as uftpd writes and reads them, spec §6.5/§7.2:
no padding block, no gzip trailer, every stream ending on a cipher block boundary).
"""

from __future__ import annotations

import socket
import zlib

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from .errors import ProtocolError, UFTPTimeoutError

try:  # cryptography >= 43 keeps Blowfish in the "decrepit" module
    from cryptography.hazmat.decrepit.ciphers.algorithms import Blowfish as _Blowfish
except ImportError:  # pragma: no cover - older cryptography
    _Blowfish = algorithms.Blowfish  # type: ignore[attr-defined]

RECV_CHUNK = 256 * 1024
#: plaintext bytes a compressing+encrypting encoder keeps back for ``finish`` (see there)
HOLD_BACK = 16


def block_size(algo: str | None) -> int:
    """Cipher block size in bytes (1 = no encryption)."""
    if not algo:
        return 1
    return 16 if algo.upper() == "AES" else 8


def make_cipher(key: bytes, algo: str) -> Cipher:
    algo = algo.upper()
    if algo == "AES":
        if len(key) not in (32, 40, 48):
            raise ValueError("AES key material must be a 16-byte IV + a 16/24/32-byte key")
        return Cipher(algorithms.AES(key[16:]), modes.CBC(key[:16]))
    if algo == "BLOWFISH":
        if not 4 <= len(key) <= 56:
            raise ValueError("a Blowfish key has 4 to 56 bytes")
        return Cipher(_Blowfish(key), modes.ECB())
    raise ValueError(f"unknown encryption algorithm {algo!r}")


def padded_length(plain: int, bs: int) -> int:
    """Ciphertext length of ``plain`` bytes with PKCS#5 padding (always at least one pad byte)."""
    return (plain // bs + 1) * bs


class Encoder:
    """Sender side of one stream: gzip, then the cipher."""

    def __init__(self, key: bytes | None, algo: str | None, compress: bool):
        self.bs = block_size(algo) if key else 1
        self._enc = make_cipher(key, algo).encryptor() if key else None  # type: ignore[arg-type]
        self._zip = zlib.compressobj(6, zlib.DEFLATED, 31) if compress else None
        self._carry = b""  # plaintext (post-gzip) not yet a whole cipher block
        # compressed+encrypted: the last bytes are compressed only at the end, so ``finish`` can
        # choose among several equivalent gzip encodings of them (see ``avoid_multiple``)
        self._hold = HOLD_BACK if (compress and key) else 0
        self._held = b""
        #: ciphertext bytes produced so far
        self.produced = 0

    def _encrypt(self, data: bytes | memoryview) -> bytes:
        if self._enc is None:
            out = bytes(data)
        else:
            buf = self._carry + bytes(data) if self._carry else bytes(data)
            cut = len(buf) - len(buf) % self.bs
            self._carry = buf[cut:]
            out = self._enc.update(buf[:cut]) if cut else b""
        self.produced += len(out)
        return out

    def encode(self, data: bytes | memoryview, sync_flush: bool = False) -> bytes:
        """Encode a piece of the stream; ``sync_flush`` makes it decodable on arrival (§7.2)."""
        if self._zip is not None:
            if self._hold:
                data = self._held + bytes(data)
                self._held = data[-self._hold:]
                data = data[: -self._hold]
            out = self._zip.compress(data)
            if sync_flush:
                out += self._zip.flush(zlib.Z_SYNC_FLUSH)
            data = out
        return self._encrypt(data)

    def finish(self, padded: bool = True, avoid_multiple: int = 0) -> bytes:
        """End of the stream.

        ``padded``: write the gzip trailer and the PKCS#5 block; unpadded streams (uftpd's
        multi-stream reader) must end on a block boundary and get neither.
        ``avoid_multiple``: make the total ciphertext length *not* a multiple of this (uftpd
        writes the padding into the file when its last read is not short, §6.4); for
        compressed streams empty sync flushes shift the length.
        """
        if not padded:
            tail = b""
            if self._zip is not None:
                rest, self._held = self._held, b""
                tail = self._zip.compress(rest) + self._zip.flush(zlib.Z_SYNC_FLUSH)
            out = self._encrypt(tail)
            if self._carry:
                raise ValueError("an unpadded encrypted stream must end on a cipher block boundary")
            if self._enc is not None:
                out += self._enc.finalize()
            return out
        extra = b""
        if self._zip is not None:
            rest, self._held = self._held, b""
            # Each sync flush between held bytes lengthens the gzip stream by a few bytes while
            # encoding the same data: pick the first variant whose ciphertext length is safe.
            for splits in range(len(rest) + 1):
                z = self._zip.copy()
                trial = b"".join(z.compress(rest[i:i + 1]) + z.flush(zlib.Z_SYNC_FLUSH) for i in range(splits))
                trial += z.compress(rest[splits:]) + z.flush(zlib.Z_FINISH)
                total = self.produced + padded_length(len(self._carry) + len(trial), self.bs)
                if not avoid_multiple or self._enc is None or total % avoid_multiple:
                    break
            self._zip = z
            extra = trial
        out = self._encrypt(extra)
        if self._enc is not None:
            p = self.bs - len(self._carry)
            last = self._enc.update(self._carry + bytes([p]) * p) + self._enc.finalize()
            self._carry = b""
            self.produced += len(last)
            out += last
        return out


class Decoder:
    """Receiver side of one stream: the cipher, then gunzip."""

    def __init__(self, key: bytes | None, algo: str | None, compress: bool, padded: bool = True):
        self.bs = block_size(algo) if key else 1
        self._dec = make_cipher(key, algo).decryptor() if key else None  # type: ignore[arg-type]
        self._zip = zlib.decompressobj(31) if compress else None
        self.padded = padded
        self._held = b""  # padded streams: the last block may be padding

    def decode(self, data: bytes | memoryview) -> bytes:
        if self._dec is not None:
            plain = self._dec.update(data)
            if self.padded:
                plain = self._held + plain
                cut = max(0, len(plain) - self.bs)
                self._held = plain[cut:]
                plain = plain[:cut]
            data = plain
        return self._inflate(data)

    def _inflate(self, data: bytes | memoryview) -> bytes:
        if self._zip is None:
            return bytes(data)
        if self._zip.eof:
            return b""  # bytes after the gzip trailer (never sent by uftpd) are ignored
        try:
            return self._zip.decompress(data)
        except zlib.error as exc:
            raise ProtocolError(f"corrupted compressed stream: {exc}") from exc

    def finish(self) -> bytes:
        """End of the stream: check and strip the padding (padded streams)."""
        tail = b""
        if self._dec is not None:
            try:
                rest = self._dec.finalize()
            except ValueError as exc:
                raise ProtocolError("encrypted stream ended inside a cipher block") from exc
            if self.padded:
                rest = self._held + rest
                self._held = b""
                p = rest[-1] if rest else 0
                if not rest or not 1 <= p <= self.bs or rest[-p:] != bytes([p]) * p:
                    raise ProtocolError("bad cipher padding at the end of the stream (wrong key or truncated)")
                rest = rest[:-p]
            tail = rest
        out = self._inflate(tail)
        if self._zip is not None and not self._zip.eof:
            out += self._zip.flush()
            if self.padded:
                raise ProtocolError("compressed stream ended without its gzip trailer")
        return out


class DecodingReader:
    """``readinto`` over one socket with a ``Decoder`` in between (encrypted/compressed
    transfers, single or multi-stream); the frame parser reads exact counts from it."""

    def __init__(self, sock: socket.socket, decoder: Decoder, timeout: float):
        self.sock = sock
        self.decoder = decoder
        self.timeout = timeout
        self._buf = bytearray()
        self._pos = 0
        self._eof = False
        self._scratch = bytearray(RECV_CHUNK)
        sock.settimeout(timeout)

    def _fill(self) -> bool:
        if self._eof:
            return False
        try:
            n = self.sock.recv_into(self._scratch)
        except socket.timeout as exc:
            raise UFTPTimeoutError(f"encrypted/compressed stream stalled for {self.timeout} s") from exc
        if n == 0:
            self._eof = True
            more = self.decoder.finish()
        else:
            more = self.decoder.decode(memoryview(self._scratch)[:n])
        if more:
            if self._pos:
                del self._buf[: self._pos]
                self._pos = 0
            self._buf += more
        return True

    def readinto(self, view: memoryview) -> int:
        """Up to ``len(view)`` decoded bytes; 0 only at the end of the stream."""
        while len(self._buf) == self._pos:
            if not self._fill():
                return 0
        n = min(len(view), len(self._buf) - self._pos)
        view[:n] = self._buf[self._pos:self._pos + n]
        self._pos += n
        return n

    def read_exact(self, view: memoryview) -> int:
        """Fill ``view``; fewer bytes only at the end of the stream."""
        got = 0
        while got < len(view):
            n = self.readinto(view[got:])
            if n == 0:
                break
            got += n
        return got
