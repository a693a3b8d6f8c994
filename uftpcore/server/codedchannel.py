"""One encrypted and/or compressed data connection (spec §6.2–§6.4, §7.1, §7.3).

Stack per transfer: ``file → gzip → cipher → socket`` when sending, the reverse when
receiving, built once per connection set (a coded set is always closed after its transfer,
so every transfer starts fresh ciphers and a fresh gzip member).

Both directions move ``OPTS BUFFER_SIZE`` bytes (default 1 MiB) per step, as uftpd's
``copy_data``: that is the file read size of downloads and — observable — the size of the
network reads of uploads, which decides whether uftpd's padding defect strikes (§6.4):

* downloads: ciphertext with PKCS#5 padding, gzip member with trailer, then the data
  connection is closed, then ``226``;
* uploads: encrypted sessions read until EOF (``ALLO``/``RANG`` lengths are ignored, the
  offset still applies); compressed-only sessions inflate until the ``ALLO``/``RANG``
  count or EOF; a missing gzip trailer is tolerated.
"""

from __future__ import annotations

import socket

from .datapath import DataChannel, FileReader, FileWriter, RateLimiter, close_socket
from .options import SessionOptions
from .streamlayers import CipherSpec, WriterStack, build_reader


class CodedDataChannel(DataChannel):
    """gzip and/or cipher layers over a single data connection."""

    reusable = False

    def __init__(self, sock: socket.socket, options: SessionOptions):
        super().__init__([sock])
        self.options = options
        # uftpd creates the ciphers here: bad key material fails the EPSV/PASV that
        # completed the connection set (500 after the 229/227)
        spec = CipherSpec(options.key, options.algo) if options.key is not None else None
        self.reads_until_eof = spec is not None
        self._writer = WriterStack(sock, spec, options.compress)
        self._reader = build_reader(sock, spec, options.compress,
                                    faithful_crypt="upload_padding" in options.bugs, padding="padded")
        #: uftpd's connector stays in "write mode" until something reads from it; closing
        #: it in write mode finishes the writer (see ``close``)
        self._write_mode = True
        self._finished = False

    def send_file(self, fd: int, offset: int, count: int, limiter: RateLimiter | None = None) -> int:
        source = FileReader(fd, offset)
        if limiter is not None:
            limiter.begin()
        total = 0
        while total < count:
            data = source.read(min(self.options.buffer_size, count - total))
            if not data:
                break
            self._writer.write(data)
            total += len(data)
            if limiter is not None:
                limiter.after_chunk(total)
        return total

    def finish(self) -> None:
        if not self._finished:
            self._finished = True
            self._writer.finish()
        # uftpd closes the encrypted/compressed connector before it writes the 226
        for sock in self.sockets:
            close_socket(sock)

    def close(self) -> None:
        """Closing a connector that was never read from finishes its writer first, as
        uftpd's does: after a listing (which sends no entries on a coded connection) the
        client receives an empty gzip member and/or one encrypted padding block."""
        if self._write_mode and not self._finished and self.sockets:
            self._finished = True
            try:
                self._writer.finish()
            except OSError:
                pass
        super().close()

    def recv_to_file(self, fd: int, offset: int, limit: int, limiter: RateLimiter | None = None) -> int:
        self._write_mode = False
        sink = FileWriter(fd, offset)
        if limiter is not None:
            limiter.begin()
        total = 0
        while total < limit:
            data = self._reader.read(min(self.options.buffer_size, limit - total))
            if not data:
                break
            sink.write(data)
            total += len(data)
            if limiter is not None:
                limiter.after_chunk(total)
        return total

    def read(self, size: int) -> bytes:
        self._write_mode = False
        return self._reader.read(size)

    def send_bytes(self, data: bytes) -> None:
        """Listings send nothing: uftpd's coded connectors lack ``write_message`` and the
        per-entry errors are swallowed (150, no data, 226)."""
