"""JPARSS multi-stream transfers (spec §5), optionally per-stream encrypted/compressed (§5.5).

Writer (downloads): the range is read in ``multistream_block`` pieces (uftpd: 16384; the
last piece is the remainder) and every piece becomes one frame on each stream — 16-byte
big-endian header (magic 0xCEBF, stream index, sequence, block size S, chunk length) and
chunk ``[i·⌊S/N⌋, …)``, the last stream taking the rest.  Per stream the frames are
strictly in sequence order.  Plain downloads run one thread per stream with
``fastpath.send_frames`` (``sendfile`` per chunk, GIL released); the byte stream of every
connection is identical to uftpd's block-by-block writer.  Coded and rate-limited
downloads, non-regular files and kept-alive sets (whose sequence numbers continue) use the
sequential writer.

Reader (uploads): uftpd's strict sequential reader — for each block one header from
stream 0, 1, …, N−1, each checked for stream index (first!), magic and sequence, then one
read of the chunk placed at ``index·⌊S/N⌋`` of a buffer of the requested size (larger
blocks are accepted: the buffer grows).  EOF where a header should start ends the
transfer; the ``ALLO``/``RANG`` count ends it after the block that reaches it.  Error
texts are uftpd's: ``I/O error reader <i> (magic number)``, ``... (sequence number)``,
``unpack requires a buffer of 16 bytes`` and, for a wrong stream index, the Python
formatting error ``not all arguments converted during string formatting``.

Coded streams: ``frames → gzip → cipher → socket`` per stream.  uftpd's defects are
reproduced unless switched off (``options.bugs``): ciphers never finalised on download
(unaligned tails and padding are not sent), gzip never finished (sync flush per frame, no
trailer), and the decrypting reader's short reads on upload (§6.5, §7.2).
"""

from __future__ import annotations

import os
import socket
import stat as _stat
import struct
import threading
from collections.abc import Callable, Sequence
from typing import Any

from .datapath import DataChannel, FileReader, FileWriter, RateLimiter, close_socket
from .options import SessionOptions
from .streamlayers import CipherSpec, WriterStack, build_reader

MAGIC = 0xCEBF
HEADER = struct.Struct(">HHIII")
#: idle timeout of the parallel fast path (uftpd has none; a server stop wakes the threads)
DATA_IDLE_TIMEOUT = 3600.0


class FrameError(Exception):
    """A frame failed uftpd's reader checks (the message is uftpd's)."""


class MultiStreamDataChannel(DataChannel):
    """N > 1 data connections carrying JPARSS frames, plain or coded."""

    def __init__(self, sockets: Sequence[socket.socket], options: SessionOptions):
        super().__init__(sockets)
        self.options = options
        self.n = len(self.sockets)
        self.block = options.multistream_block
        #: block counter shared by both directions, continues across kept-alive transfers
        self.seq = 0
        bugs = options.bugs
        # uftpd creates one cipher per stream here: bad keys fail the last EPSV/PASV
        spec = CipherSpec(options.key, options.algo) if options.key is not None else None
        self.coded = spec is not None or options.compress
        self.reusable = not self.coded
        self.reads_until_eof = spec is not None
        self._finish_gzip = "multistream_gzip_download" not in bugs
        self._finish_crypt = "multistream_crypt_download" not in bugs
        faithful_reader = "multistream_crypt_upload" in bugs
        self._outputs = [WriterStack(s, spec, options.compress) for s in self.sockets]
        # a corrected reader must still accept uftpcore's and uftpd's unpadded streams; a
        # padding block is recognised where a header would start (or, below gzip, at the end)
        padding = "auto" if options.compress else "unpadded"
        self._inputs = [build_reader(s, spec, options.compress, faithful_reader, padding)
                        for s in self.sockets]
        self._padding_ends_stream = spec is not None and not faithful_reader and not options.compress
        self._bs = spec.block_size if spec is not None else 1

    # -- downloads ------------------------------------------------------------------------
    def send_file(self, fd: int, offset: int, count: int, limiter: RateLimiter | None = None) -> int:
        if count <= 0:
            return 0
        if not self.coded and limiter is None and self.seq == 0:
            st = os.fstat(fd)
            if _stat.S_ISREG(st.st_mode):
                return self._send_parallel(fd, offset, max(0, min(count, st.st_size - offset)))
        source = FileReader(fd, offset)
        if limiter is not None:
            limiter.begin()
        total = 0
        while total < count:
            data = source.read(min(self.block, count - total))
            if not data:
                break
            self._write_block(data)
            total += len(data)
            if limiter is not None:
                limiter.after_chunk(total)
        return total

    def _write_block(self, data: bytes) -> None:
        """One frame per stream (uftpd's ``PConnector.write``), each followed by a flush."""
        size = len(data)
        base = size // self.n
        last = self.n - 1
        for i, out in enumerate(self._outputs):
            start = i * base
            length = size - start if i == last else base
            out.write(HEADER.pack(MAGIC, i, self.seq, size, length) + data[start:start + length])
            out.flush()
        self.seq += 1

    def _send_parallel(self, fd: int, offset: int, length: int) -> int:
        from uftpcore._impl import fastpath

        if length <= 0:
            return 0
        block, n = self.block, self.n

        def work(i: int) -> int:
            sock = self.sockets[i]
            try:
                return fastpath.send_frames(sock, i, n, None, fd, offset, length, block, DATA_IDLE_TIMEOUT)
            finally:
                sock.settimeout(None)

        _run_streams(n, work, self.sockets)
        self.seq += -(-length // block)
        return length

    def finish(self) -> None:
        """uftpd closes the connector of a coded set before the 226 without finishing the
        per-stream layers (defects §6.5/§7.2); corrected, each stream ends its gzip member
        and its cipher padding first."""
        if not self.coded:
            return
        for out in self._outputs:
            out.finish(gzip=self._finish_gzip, crypt=self._finish_crypt)
        for sock in self.sockets:
            close_socket(sock)

    # -- uploads --------------------------------------------------------------------------
    def recv_to_file(self, fd: int, offset: int, limit: int, limiter: RateLimiter | None = None) -> int:
        sink = FileWriter(fd, offset)
        if limiter is not None:
            limiter.begin()
        total = 0
        while total < limit:
            data = self._read_block(min(self.block, limit - total))
            if not data:
                break
            sink.write(data)
            total += len(data)
            if limiter is not None:
                limiter.after_chunk(total)
        return total

    def read(self, size: int) -> bytes:
        return bytes(self._read_block(size))

    def _read_block(self, length: int) -> bytearray:
        """One block from all streams, in stream order (uftpd's ``PConnector.read``)."""
        buffer = bytearray(length)
        n = self.n
        plain = not self.coded
        for i, src in enumerate(self._inputs):
            header = self._read_header(src)
            if not header:
                return bytearray()  # EOF on any stream ends the transfer
            magic, index, seq, size, chunk_len = HEADER.unpack(header)  # struct.error if short
            if index != i:
                # uftpd's message has one %s for two arguments: the formatting error wins
                raise TypeError("not all arguments converted during string formatting")
            if magic != MAGIC:
                raise FrameError(f"I/O error reader {i} (magic number)")
            if seq != self.seq:
                raise FrameError(f"I/O error reader {i} (sequence number)")
            start = index * (size // n)
            if plain and start + chunk_len <= len(buffer):
                # fast path: straight into place (same result as the slice assignment below)
                got = src.read_into(memoryview(buffer)[start:start + chunk_len])
                if got < chunk_len:
                    del buffer[start + got:start + chunk_len]
            else:
                # one read, no retry; a short result shrinks the buffer (bytearray slice semantics)
                buffer[start:start + chunk_len] = src.read(chunk_len)
        self.seq += 1
        if len(buffer) > size:
            del buffer[size:]
        return buffer

    def _read_header(self, src: Any) -> bytes:
        header = b""
        while len(header) < HEADER.size:
            piece = src.read(HEADER.size - len(header))
            if not piece:
                break
            header += piece
        if self._padding_ends_stream and header and self._is_final_padding(header, src):
            return b""
        return header

    def _is_final_padding(self, header: bytes, src: Any) -> bool:
        """Corrected reader: a PKCS#5 padding block at the end of a stream is not a header."""
        p = header[-1]
        if p != len(header) or p > self._bs or header != bytes([p]) * p:
            return False
        return len(header) < HEADER.size or not src.read(1)

    def send_bytes(self, data: bytes) -> None:
        """Listings send nothing: uftpd's multi-stream connector lacks ``write_message`` and
        the per-entry errors are swallowed (150, no data, 226)."""


def _run_streams(n: int, work: Callable[[int], Any], socks: Sequence[socket.socket]) -> list[Any]:
    """``work(i)`` per stream in its own thread; on the first failure every socket is shut
    down (no other thread waits for a dead transfer) and the failure is re-raised."""
    results: list[Any] = [None] * n
    first: list[BaseException] = []  # the root cause; later errors are mostly the shutdown's
    lock = threading.Lock()

    def run(i: int) -> None:
        try:
            results[i] = work(i)
        except BaseException as exc:  # re-raised below
            with lock:
                if not first:
                    first.append(exc)
            for s in socks:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    threads = [threading.Thread(target=run, args=(i,), name=f"uftpd-stream-{i}", daemon=True)
               for i in range(1, n)]
    for t in threads:
        t.start()
    run(0)
    for t in threads:
        t.join()
    if first:
        raise first[0]
    return results
