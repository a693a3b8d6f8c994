"""Per-stream byte layers of the server's stream stacks: socket, cipher, gzip (spec §6–§8).

Every layer is a tiny object with uftpd's file-like interface: readers have ``read(n)``,
writers ``write(data)`` / ``flush()`` / ``finish()``.  They are stacked per TCP stream,
``data → gzip → cipher → socket`` on the sending side and the reverse on the receiving
side, by the single-stream and multi-stream data channels.

The *faithful* layers reproduce uftpd 3.5.3's observable behaviour, defects included:

* :class:`DecryptReader` decrypts what one network read returned, keeps the unaligned
  rest, and treats a read that came back *short* as the end of the stream (only then the
  padding is removed: spec §6.4).  Asked for ``n`` bytes it may return fewer without being
  at the end (any unaligned rest is held back) — the multi-stream reader does not retry,
  which misaligns the frames (§6.5);
* :class:`GzipReader` inflates until it has ``n`` bytes or the input ended; a missing
  trailer is tolerated (§7.1, §7.2);
* :class:`CryptWriter` encrypts whole blocks and keeps the rest; only ``finish`` pads.

:class:`StrictDecryptReader` is the corrected reader used when the matching bug switch is
off: it returns short reads only at the end of the stream and checks the padding.

Cipher objects come from ``cryptography``; the error messages for bad keys are uftpd's
(``CryptUtil.create_cipher`` and pycryptodome's).
"""

from __future__ import annotations

import socket
import zlib

#: bytes one socket read may ask for at most (large BUFFER_SIZE values read in pieces)
_MAX_PIECE = 4 * 1024 * 1024
_WAITALL = getattr(socket, "MSG_WAITALL", 0)


# ------------------------------------------------------------------------------ ciphers
def _blowfish(key: bytes):
    try:  # cryptography >= 43 keeps Blowfish in the "decrepit" module
        from cryptography.hazmat.decrepit.ciphers.algorithms import Blowfish
    except ImportError:  # pragma: no cover - older cryptography
        from cryptography.hazmat.primitives.ciphers.algorithms import (  # type: ignore[attr-defined,no-redef]
            Blowfish,
        )
    return Blowfish(key)


class CipherSpec:
    """Key material + algorithm of a session, validated like uftpd's ``create_cipher``.

    ``encryptor()`` / ``decryptor()`` start a fresh cipher (same key, same AES IV) — one
    per stream and direction, as uftpd creates one per stream of a connection set.
    """

    def __init__(self, key: bytes, algo: str):
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

        if algo == "BLOWFISH":
            if len(key) > 56:
                raise ValueError(f"Key length must <=56 for encryption algorithm: {algo}")
            if len(key) < 4:  # pycryptodome's check
                raise ValueError(f"Incorrect Blowfish key length ({len(key)} bytes)")
            self._cipher = Cipher(_blowfish(key), modes.ECB())
            self.block_size = 8
            self.mode = "ECB"
        elif algo == "AES":
            if len(key) < 32:
                raise ValueError(f"Key length must be >32 for encryption algorithm: {algo}")
            if len(key) - 16 not in (16, 24, 32):
                raise ValueError(f"Illegal key length for encryption algorithm: {algo}")
            self._cipher = Cipher(algorithms.AES(key[16:]), modes.CBC(key[:16]))
            self.block_size = 16
            self.mode = "CBC"
        else:
            raise ValueError(f"Unknown encryption algorithm: {algo}")

    def encryptor(self):
        return self._cipher.encryptor()

    def decryptor(self):
        return self._cipher.decryptor()

    def alignment_error(self) -> ValueError:
        """What pycryptodome raises when uftpd decrypts an unaligned rest."""
        if self.mode == "ECB":
            return ValueError("Data must be aligned to block boundary in ECB mode")
        return ValueError(f"Data must be padded to {self.block_size} byte boundary in CBC mode")


# ------------------------------------------------------------------------------ sockets
class SocketReader:
    """``read(n)`` of a buffered socket file: up to ``n`` bytes, short only at EOF."""

    def __init__(self, sock: socket.socket):
        self.sock = sock

    def read(self, n: int) -> bytes:
        if n <= 0:
            return b""
        if n <= _MAX_PIECE:
            return self._read_piece(n)
        pieces = []
        got = 0
        while got < n:
            piece = self._read_piece(min(_MAX_PIECE, n - got))
            if not piece:
                break
            pieces.append(piece)
            got += len(piece)
            if len(piece) < _MAX_PIECE:
                break
        return b"".join(pieces)

    def _read_piece(self, n: int) -> bytes:
        buf = bytearray(n)
        with memoryview(buf) as view:
            got = self.read_into(view)
        if got < n:
            del buf[got:]
        return bytes(buf)

    def read_into(self, view: memoryview) -> int:
        """Fill ``view``; fewer bytes only at EOF."""
        n = len(view)
        got = 0
        recv_into = self.sock.recv_into
        try:
            while got < n:
                k = recv_into(view[got:], n - got, _WAITALL)
                if k == 0:
                    break
                got += k
        finally:
            view.release()
        return got


class SocketWriter:
    """``write`` = ``sendall``; nothing is buffered."""

    def __init__(self, sock: socket.socket):
        self.sock = sock

    def write(self, data) -> None:
        if data:
            self.sock.sendall(data)

    def flush(self) -> None:
        pass


# ------------------------------------------------------------------------------ cipher layers
class CryptWriter:
    """Encrypts everything written; the unaligned rest waits for more data or ``finish``."""

    def __init__(self, target, spec: CipherSpec):
        self.target = target
        self._enc = spec.encryptor()
        self._bs = spec.block_size
        self._count = 0
        self._finished = False

    def write(self, data) -> None:
        self._count += len(data)
        out = self._enc.update(data)  # cryptography keeps an unaligned rest itself
        if out:
            self.target.write(out)

    def flush(self) -> None:
        """uftpd's cipher writer does not flush: the unaligned rest stays behind (§7.3)."""

    def finish(self) -> None:
        """Write the PKCS#5 padding (completing the held-back rest)."""
        if self._finished:
            return
        self._finished = True
        pad = self._bs - self._count % self._bs
        self.target.write(self._enc.update(bytes([pad]) * pad) + self._enc.finalize())


class DecryptReader:
    """uftpd's decrypting reader (``CryptUtil.DecryptReader`` semantics, §6.4/§6.5).

    One call = one network read of ``max(n, block size)`` bytes.  The aligned part is
    decrypted, an unaligned rest is kept for the next call (and the call returns *fewer*
    bytes than asked, although the stream goes on).  A short network read is taken as the
    end of the stream: only then is the padding removed — blindly, by the value of the
    last byte.  A ciphertext whose length is a multiple of the read size therefore keeps
    its padding.  An unaligned rest at the real end raises pycryptodome's error.
    """

    def __init__(self, source, spec: CipherSpec):
        self.source = source
        self.spec = spec
        self._dec = spec.decryptor()
        self._bs = spec.block_size
        self._stored = b""

    def read(self, n: int) -> bytes:
        data = self.source.read(max(n, self._bs))
        finish = len(data) < n
        if self._stored:
            data = self._stored + data
        blocks, extra = divmod(len(data), self._bs)
        if blocks > 0 and extra > 0:
            plain = self._dec.update(data[:-extra])
            self._stored = data[-extra:]
            finish = False
        else:
            if extra:
                raise self.spec.alignment_error()
            plain = self._dec.update(data) if data else b""
            self._stored = b""
        if finish and plain:
            return plain[: -plain[-1]]  # no check: a wrong key strips up to 255 bytes
        return plain


class StrictDecryptReader:
    """A correct decrypting reader: short reads only at the end of the stream.

    ``padding``: ``"padded"`` — the stream ends with PKCS#5 padding, checked and removed
    (single stream); ``"unpadded"`` — no padding expected, nothing removed (the frame reader
    recognises a padding block where a header would start); ``"auto"`` — remove the last
    block's padding only if it is valid (multi-stream gzip, whose sync-flushed or finished
    data never ends like padding).
    """

    def __init__(self, source, spec: CipherSpec, padding: str = "padded"):
        self.source = source
        self.spec = spec
        self._dec = spec.decryptor()
        self._bs = spec.block_size
        self._padding = padding
        self._hold = self._bs if padding != "unpadded" else 0
        self._plain = bytearray()
        self._held = b""
        self._carry = b""
        self._eof = False

    def read(self, n: int) -> bytes:
        bs = self._bs
        while len(self._plain) < n and not self._eof:
            want = -(-(n - len(self._plain)) // bs) * bs + self._hold - len(self._held)
            data = self.source.read(max(bs, want - len(self._carry)))
            if not data:
                self._end()
                break
            data = self._carry + data if self._carry else data
            cut = len(data) - len(data) % bs
            self._carry = data[cut:]
            out = self._dec.update(data[:cut]) if cut else b""
            if self._hold:
                out = self._held + out
                split = max(0, len(out) - self._hold)
                self._held = out[split:]
                out = out[:split]
            self._plain += out
        result = bytes(self._plain[:n])
        del self._plain[:n]
        return result

    def _end(self) -> None:
        self._eof = True
        if self._carry:
            raise ValueError(f"encrypted stream ended inside a cipher block ({len(self._carry)} extra bytes)")
        self._dec.finalize()
        held, self._held = self._held, b""
        if not held:  # an empty stream: nothing was sent at all
            return
        p = held[-1]
        valid = 1 <= p <= self._bs and held[-p:] == bytes([p]) * p
        if valid:
            held = held[:-p]
        elif self._padding == "padded":
            raise ValueError("Padding is incorrect.")
        self._plain += held


# ------------------------------------------------------------------------------ gzip layers
class GzipWriter:
    """gzip (wbits 31, default level); ``flush`` is a ``Z_SYNC_FLUSH``, ``finish`` ends the
    member (deflate end, CRC32, ISIZE)."""

    def __init__(self, target):
        self.target = target
        self._zip = zlib.compressobj(wbits=31)
        self._finished = False

    def write(self, data) -> None:
        out = self._zip.compress(data)
        if out:
            self.target.write(out)

    def flush(self) -> None:
        if not self._finished:
            self.target.write(self._zip.flush(zlib.Z_SYNC_FLUSH))
            self.target.flush()

    def finish(self) -> None:
        if self._finished:
            return
        self._finished = True
        self.target.write(self._zip.flush(zlib.Z_FINISH))


class GzipReader:
    """Inflates until ``n`` bytes are available or the input ended (``GzipReader`` of uftpd).

    Each network read asks the layer below for the missing *uncompressed* count; input
    after the end of the gzip member is ignored, a missing trailer is not an error.
    """

    def __init__(self, source):
        self.source = source
        self._unzip = zlib.decompressobj(wbits=31)
        self._stored = b""

    def read(self, n: int) -> bytes:
        buf = bytearray(self._stored)
        finish = False
        while len(buf) < n and not finish:
            data = self.source.read(n - len(buf))
            if not data:
                finish = True
                buf += self._unzip.flush()
            else:
                buf += self._unzip.decompress(data)
        if len(buf) > n:
            self._stored = bytes(buf[n:])
            del buf[n:]
        else:
            self._stored = b""
        return bytes(buf)


# ------------------------------------------------------------------------------ stacks
class WriterStack:
    """``data → gzip → cipher → socket`` for one stream.

    ``flush`` is what uftpd does after every multi-stream frame (a gzip sync flush; the
    cipher layer keeps its unaligned rest).  ``finish`` ends the layers — each one can be
    left unfinished to reproduce uftpd's multi-stream defects (§6.5, §7.2).
    """

    def __init__(self, sock: socket.socket, spec: CipherSpec | None, compress: bool):
        self.crypt = CryptWriter(SocketWriter(sock), spec) if spec is not None else None
        below = self.crypt if self.crypt is not None else SocketWriter(sock)
        self.gzip = GzipWriter(below) if compress else None
        self.top = self.gzip if self.gzip is not None else below

    def write(self, data) -> None:
        self.top.write(data)

    def flush(self) -> None:
        self.top.flush()

    def finish(self, gzip: bool = True, crypt: bool = True) -> None:
        if self.gzip is not None and gzip:
            self.gzip.finish()
        if self.crypt is not None and crypt:
            self.crypt.finish()


def build_reader(sock: socket.socket, spec: CipherSpec | None, compress: bool, faithful_crypt: bool,
                 padding: str = "padded"):
    """``socket → cipher → gunzip → data`` for one stream."""
    src = SocketReader(sock)
    if spec is not None:
        src = DecryptReader(src, spec) if faithful_crypt else StrictDecryptReader(src, spec, padding)
    if compress:
        src = GzipReader(src)
    return src
