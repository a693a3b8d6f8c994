"""The data path of the server: a *stream stack* over the data connections of a transfer.

uftpd builds, once the expected number of passive connections is open (spec §4.1 step 3),
one object that every transfer writes to / reads from: the plain socket, or gzip / cipher
wrappers, or the JPARSS multi-stream connector (§8).  This module is that seam.  Session
code only talks to :class:`DataChannel`; :func:`build_data_channel` decides which stack to
build:

* one plain connection — :class:`PlainDataChannel` (here);
* one encrypted and/or compressed connection — :class:`~.codedchannel.CodedDataChannel`;
* several connections — :class:`~.multistream.MultiStreamDataChannel` (plain or coded).

uftpd's data-path defects (§6.4, §6.5, §7.2) are reproduced unless switched off, see
:data:`BUGS` and ``UFTPD(bug_compat=...)``.

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
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .options import SessionOptions

log = logging.getLogger(__name__)

#: uftpd 3.5.3 defects of the data path that the server reproduces (``bug_compat``):
#:
#: ``upload_padding``
#:     encrypted single-stream upload: the padding is removed only if the last network
#:     read (``OPTS BUFFER_SIZE``, 1 MiB) came back short — otherwise it lands in the file
#:     (§6.4);
#: ``multistream_crypt_download``
#:     multi-stream encrypted download: the per-stream ciphers are never finalised, the
#:     unaligned tail of every stream and the padding are never sent (§6.5);
#: ``multistream_crypt_upload``
#:     multi-stream encrypted upload: the per-stream decryptor returns short reads for
#:     unaligned chunks and the frame reader does not retry (misaligned frames), a padding
#:     block where a header should start is read as a header (§6.5);
#: ``multistream_gzip_download``
#:     multi-stream compressed download: sync flush after every frame, the gzip streams are
#:     never finished — no trailer (§7.2).
BUGS = frozenset({
    "upload_padding",
    "multistream_crypt_download",
    "multistream_crypt_upload",
    "multistream_gzip_download",
})


def bug_set(bug_compat: bool | Iterable[str]) -> frozenset[str]:
    """``True`` = every defect of :data:`BUGS`, ``False`` = none, or an explicit selection."""
    if bug_compat is True:
        return BUGS
    if bug_compat is False or bug_compat is None:
        return frozenset()
    chosen = frozenset([bug_compat] if isinstance(bug_compat, str) else bug_compat)
    unknown = chosen - BUGS
    if unknown:
        raise ValueError(f"unknown bug_compat names {sorted(unknown)}; choose from {sorted(BUGS)}")
    return chosen

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


class FileReader:
    """Sequential reads from ``fd`` starting at ``offset``, like a buffered file's ``read``:
    up to ``n`` bytes, short only at end of file (``pread``; ``read`` for pipes)."""

    def __init__(self, fd: int, offset: int):
        self.fd = fd
        self.pos = offset
        self._positional = True

    def read(self, n: int) -> bytes:
        pieces = []
        got = 0
        while got < n:
            try:
                if self._positional:
                    piece = os.pread(self.fd, n - got, self.pos)
                else:
                    piece = os.read(self.fd, n - got)
            except OSError as exc:
                if self._positional and exc.errno == errno.ESPIPE:
                    self._positional = False
                    continue
                raise
            if not piece:
                break
            pieces.append(piece)
            got += len(piece)
            self.pos += len(piece)
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)


class FileWriter:
    """Sequential writes to ``fd`` from ``offset`` (``pwrite``; ``write`` for pipes)."""

    def __init__(self, fd: int, offset: int):
        self.fd = fd
        self.pos = offset
        self._positional = True

    def write(self, data) -> None:
        view = memoryview(data)
        done = 0
        try:
            while done < len(view):
                if self._positional:
                    try:
                        done += os.pwrite(self.fd, view[done:], self.pos + done)
                        continue
                    except OSError as exc:
                        if exc.errno != errno.ESPIPE:
                            raise
                        self._positional = False
                done += os.write(self.fd, view[done:])
        finally:
            view.release()
        self.pos += done


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
        """End a download: coded stacks write their gzip trailer / cipher padding (where
        uftpd does) and close the connections *before* the 226, as uftpd; plain: no-op."""

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
    """Placeholder stack for layers a server does not offer (no longer built by the factory).

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

    ``sockets`` are the accepted connections in EPSV/PASV order (= JPARSS stream index);
    ``options`` carries ``key``/``algo``/``compress``/``buffer_size``, the multi-stream
    block size and the reproduced defects (``bugs``).  Bad key material raises here —
    uftpd builds its ciphers at this point too, so the error answers the last EPSV/PASV.
    """
    if len(sockets) > 1:
        from .multistream import MultiStreamDataChannel

        return MultiStreamDataChannel(sockets, options)
    if options.is_encrypt() or options.compress:
        from .codedchannel import CodedDataChannel

        return CodedDataChannel(sockets[0], options)
    return PlainDataChannel(sockets[0], scratch)
