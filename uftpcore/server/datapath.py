"""The data path of the server: a *stream stack* over the data connections of a transfer.

uftpd builds, once the expected number of passive connections is open (spec §4.1 step 3),
one object that every transfer writes to / reads from: the plain socket, or gzip / cipher
wrappers, or the JPARSS multi-stream connector (§8).  This module is that seam.  Session
code only talks to :class:`DataChannel`; :func:`build_data_channel` decides which stack to
build.  Today only the plain single-stream stack exists — multi-stream (§5), encryption
(§6) and gzip (§7) slot in later as further ``DataChannel`` subclasses (or wrappers) built
by the same factory, without touching the session.

Performance: plain downloads go kernel-to-socket with ``os.sendfile`` (large counts,
looped); uploads ``recv_into`` one reusable 1 MiB buffer with ``MSG_WAITALL`` and
``os.pwrite`` it, so a transfer costs a handful of syscalls per MiB and no allocations.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .options import SessionOptions

log = logging.getLogger(__name__)

#: size of the reusable upload buffer (uftpd 3.5.3's network chunk is 1 MiB, too)
SCRATCH_SIZE = 1024 * 1024
#: largest count handed to one sendfile call
_SENDFILE_MAX = 1 << 30
_WAITALL = getattr(socket, "MSG_WAITALL", 0)


class RateLimiter:
    """uftpd's coarse rate control (spec §11.1).

    After every chunk: if ``total / (int(elapsed) + 1)`` is below the limit the sleep is
    halved, otherwise it grows by 5 ms and the transfer sleeps.  The sleep carries over
    from one transfer to the next, as in uftpd (it lives in the session).
    """

    #: bytes per chunk between two rate checks
    chunk_size = SCRATCH_SIZE

    def __init__(self, limit: int):
        self.limit = limit
        self.sleep_ms = 0
        self._start = 0

    def begin(self) -> None:
        self._start = int(time.time())

    def after_chunk(self, total: int) -> None:
        interval = int(time.time() - self._start) + 1
        if total / interval < self.limit:
            self.sleep_ms = int(0.5 * self.sleep_ms)
        else:
            self.sleep_ms += 5
            time.sleep(0.001 * self.sleep_ms)


def close_socket(sock: socket.socket) -> None:
    """``shutdown(SHUT_RDWR)`` + close, ignoring errors (uftpd's ``Connector.close``)."""
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


class DataChannel:
    """A stream stack over one set of data connections.

    Subclasses implement the transfer primitives.  Class attributes describe how the
    session must treat the stack:

    * ``unsupported_reason`` — set by placeholder stacks: transfers are refused with a 500
      *before* the ``150`` (so the data connections stay usable);
    * ``reads_until_eof`` — uploads ignore the ALLO/RANG length (encrypted sessions, §6.4);
    * ``reusable`` — the stack may stay open after a transfer when keep-alive is on
      (false for compressed/encrypted stacks, which must be finished and closed, §4.3).
    """

    unsupported_reason: str | None = None
    reads_until_eof = False
    reusable = True

    def __init__(self, sockets: Sequence[socket.socket]):
        self.sockets = list(sockets)

    def send_file(self, fd: int, offset: int, count: int, limiter: RateLimiter | None = None) -> int:
        """Send up to ``count`` bytes of ``fd`` from ``offset``; short only at end of file."""
        raise NotImplementedError

    def recv_to_file(self, fd: int, offset: int, limit: int, limiter: RateLimiter | None = None) -> int:
        """Receive up to ``limit`` bytes (or until EOF) and write them to ``fd`` at ``offset``."""
        raise NotImplementedError

    def send_bytes(self, data: bytes) -> None:
        """Send a small in-memory payload (directory listings)."""
        raise NotImplementedError

    def read(self, size: int) -> bytes:
        """File-like read for streaming consumers (tar extraction); ``b""`` at EOF."""
        raise NotImplementedError

    def finish(self) -> None:
        """Finish the stack after a download (gzip trailer, cipher padding); plain: no-op."""

    def close(self) -> None:
        """Close every data connection of the set."""
        for sock in self.sockets:
            close_socket(sock)
        self.sockets = []


class PlainDataChannel(DataChannel):
    """One unencrypted, uncompressed data connection: the raw byte stream (§5: N = 1)."""

    def __init__(self, sock: socket.socket, scratch: bytearray):
        super().__init__([sock])
        self.sock = sock
        self._scratch = scratch

    def send_file(self, fd: int, offset: int, count: int, limiter: RateLimiter | None = None) -> int:
        if count <= 0:
            return 0
        out = self.sock.fileno()
        step = limiter.chunk_size if limiter is not None else _SENDFILE_MAX
        if limiter is not None:
            limiter.begin()
        sent = 0
        while sent < count:
            try:
                n = os.sendfile(out, fd, offset + sent, min(count - sent, step))
            except OSError as exc:
                if sent == 0 and exc.errno in (errno.EINVAL, errno.ENOSYS, errno.ESPIPE, errno.EOPNOTSUPP):
                    return self._send_by_copy(fd, offset, count, limiter)
                raise
            if n == 0:
                break
            sent += n
            if limiter is not None:
                limiter.after_chunk(sent)
        return sent

    def _send_by_copy(self, fd: int, offset: int, count: int, limiter: RateLimiter | None) -> int:
        """Fallback for inputs sendfile cannot handle (pipes, some special files)."""
        chunk_size = len(self._scratch)
        sent = 0
        positional = True
        while sent < count:
            want = min(chunk_size, count - sent)
            try:
                chunk = os.pread(fd, want, offset + sent) if positional else os.read(fd, want)
            except OSError as exc:
                if positional and exc.errno == errno.ESPIPE:
                    positional = False
                    continue
                raise
            if not chunk:
                break
            self.sock.sendall(chunk)
            sent += len(chunk)
            if limiter is not None:
                limiter.after_chunk(sent)
        return sent

    def recv_to_file(self, fd: int, offset: int, limit: int, limiter: RateLimiter | None = None) -> int:
        view = memoryview(self._scratch)
        capacity = len(view)
        recv_into = self.sock.recv_into
        if limiter is not None:
            limiter.begin()
        pwrite = os.pwrite
        positional = True
        total = 0
        try:
            while total < limit:
                want = min(limit - total, capacity)
                n = recv_into(view, want, _WAITALL)
                if n == 0:
                    break
                written = 0
                while written < n:
                    if positional:
                        try:
                            written += pwrite(fd, view[written:n], offset + total + written)
                            continue
                        except OSError as exc:
                            if exc.errno != errno.ESPIPE:
                                raise
                            positional = False
                    written += os.write(fd, view[written:n])
                total += n
                if limiter is not None:
                    limiter.after_chunk(total)
        finally:
            view.release()
        return total

    def send_bytes(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read(self, size: int) -> bytes:
        if size <= 0:
            return b""
        return self.sock.recv(size, _WAITALL)


class UnsupportedDataChannel(DataChannel):
    """Placeholder stack for layers this server does not implement yet.

    The connections are opened and kept exactly as uftpd would (so ``NOOP n`` + n×EPSV
    and the close/reset rules are exercised), but transfers are refused before ``150``.
    """

    def __init__(self, sockets: Sequence[socket.socket], reason: str):
        super().__init__(sockets)
        self.unsupported_reason = reason

    def _refuse(self, *_args, **_kwargs):
        raise OSError(self.unsupported_reason)

    send_file = _refuse  # type: ignore[assignment]
    recv_to_file = _refuse  # type: ignore[assignment]
    send_bytes = _refuse  # type: ignore[assignment]
    read = _refuse  # type: ignore[assignment]


def build_data_channel(
    sockets: Sequence[socket.socket], options: SessionOptions, scratch: bytearray
) -> DataChannel:
    """Build the stream stack for a complete connection set (spec §8).

    This is the single place where multi-stream framing, encryption and compression will
    be plugged in: ``sockets`` are the accepted connections in EPSV/PASV order (= JPARSS
    stream index), ``options`` carries ``key``/``algo``/``compress``/``buffer_size``.
    """
    if len(sockets) > 1:
        return UnsupportedDataChannel(sockets, "multi-stream not supported yet")
    if options.is_encrypt():
        return UnsupportedDataChannel(sockets, "encryption not supported yet")
    if options.compress:
        return UnsupportedDataChannel(sockets, "compression not supported yet")
    return PlainDataChannel(sockets[0], scratch)
