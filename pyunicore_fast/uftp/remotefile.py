"""A random-access raw file on UFTP: range reads, streaming writes, seek, truncate.

What uftpd offers and how a POSIX-like file is built from it:

* reads: ``RANG start end`` + ``RETR`` gives exact byte ranges; on a session with a kept-alive
  data connection a seek costs nothing and a read is two control round trips (no EPSV, no
  connect, no ABOR -- unlike FTP drivers that reopen the data connection on every seek);
* writes: one ``STOR`` stays open while writes are sequential, so a file written front to back
  is a single streaming upload.  A truncating ``STOR`` (no range) replaces the file; ``RANG off
  huge`` + ``STOR`` writes at ``off`` without truncating, which gives ``r+``/``a`` modes and
  writes after a seek (the open stream is finished first);
* truncate: uftpd has no truncate command.  Growing writes zeros at the end; shrinking copies
  the kept prefix through a local temporary file and re-uploads it (rare, but PyFilesystem's
  conformance tests and ``io`` semantics require it).

Encrypted or compressed sessions cannot hand out raw data sockets; there every write becomes a
ranged ``Session.write`` (callers wrap this raw file in ``io.Buffered*``, so these are whole
buffers, not tiny writes).

A stream holds one pool session from its first write until it ends (:mod:`.rawtransfer` makes
that safe when the file is written and closed from different threads); exact reads borrow a
pool session per call, which keeps the number of sessions bounded by concurrency, not by the
number of open files.
"""

from __future__ import annotations

import io
import logging
import tempfile
from typing import Any

from uftpcore import Session
from uftpcore.errors import UFTPError

from .oserrors import oserrors, to_oserror
from .rawtransfer import NoRawTransfer, RawTransfer
from .reader import StreamingReader
from .sessionpool import SessionPool

log = logging.getLogger(__name__)

#: range end of an open-ended, non-truncating ``STOR`` (``RANG off huge``).
_OPEN_END = 1 << 62
_ZERO_CHUNK = 1 << 20


class RemoteRawFile(io.RawIOBase):
    """Raw binary file on a UFTP server.

    ``mode`` is one of ``r``, ``r+``, ``w``, ``w+``, ``a``, ``a+``, ``x``, ``x+`` (with or without
    ``b``), with ``open()``'s meaning.  ``size`` (for ``r``/``r+``/``a``) spares the ``MLST``
    round trip when the caller already knows it; so does ``exists`` for ``x`` and ``a``.
    """

    def __init__(self, pool: SessionPool, path: str, mode: str = "r", *, size: int | None = None,
                 exists: bool | None = None, name: str | None = None):
        super().__init__()
        self._pool = pool
        self.path = path
        self.name = name if name is not None else path
        base = mode.replace("b", "").replace("t", "")
        self.mode = mode if "b" in mode else mode + "b"
        self._plus = "+" in base
        kind = base.replace("+", "")
        if kind not in ("r", "w", "a", "x") or len(kind) != 1:
            raise ValueError(f"invalid mode {mode!r}")
        self._kind = kind
        self._readable = kind == "r" or self._plus
        self._writable = kind != "r" or self._plus
        self._append = kind == "a"
        self._pos = 0
        self._stream: _Stream | None = None
        self._reader: StreamingReader | None = None
        if kind == "r":
            self._size = self._stat_size() if size is None else size
        elif kind in ("w", "x"):
            if kind == "x" and (exists if exists is not None else self._exists()):
                raise FileExistsError(17, "File exists", path)
            self._size = 0
            self._start_stream(0, truncate=True)  # create/truncate now, errors surface at open
        else:  # append
            if size is None and exists is not False:
                try:
                    size = self._stat_size()
                except FileNotFoundError:
                    size = None
            if size is None:
                self._size = 0
                self._start_stream(0, truncate=True)
            else:
                self._size = size
            self._pos = self._size

    # -- helpers ---------------------------------------------------------------------------------
    def _exists(self) -> bool:
        try:
            with oserrors(self.path):
                self._pool.run(lambda s: s.stat(self.path))
            return True
        except FileNotFoundError:
            return False

    def _stat_size(self) -> int:
        def stat(session: Session) -> int:
            info = session.stat(self.path)
            if info.is_dir:
                raise IsADirectoryError(21, "Is a directory", self.path)
            return info.size

        with oserrors(self.path):
            return self._pool.run(stat)

    def _start_stream(self, offset: int, truncate: bool) -> None:
        try:
            if truncate:
                transfer = RawTransfer(self._pool, "STOR", self.path)
            else:
                transfer = RawTransfer(self._pool, "STOR", self.path, offset, _OPEN_END - offset)
        except NoRawTransfer:
            # no raw data socket on a codec session: one ranged STOR per buffer (see module docs)
            if truncate:
                with oserrors(self.path):
                    self._pool.run(lambda s: s.write(self.path, b"", 0, truncate=True), idempotent=False)
            self._stream = _Stream(None, offset)
            return
        except (UFTPError, ValueError) as exc:
            raise to_oserror(exc, self.path) from exc
        self._stream = _Stream(transfer, offset)

    def _finish_stream(self) -> None:
        stream, self._stream = self._stream, None
        if stream is None or stream.transfer is None:
            return
        with oserrors(self.path):
            stream.transfer.finish()

    def _reading(self) -> StreamingReader:
        if self._reader is None:
            self._reader = StreamingReader(self._pool, self.path, self._size)
        self._reader.size = self._size
        return self._reader

    def _write_at(self, pos: int, view: memoryview) -> None:
        if self._reader is not None:
            self._reader.invalidate()  # a read stream may carry the old bytes
        stream = self._stream
        if stream is not None and stream.position != pos:
            self._finish_stream()
            stream = None
        if stream is None:
            self._start_stream(pos, truncate=False)
            stream = self._stream
            assert stream is not None
        if stream.transfer is None:  # codec session: one ranged STOR per buffer
            data = view
            with oserrors(self.path):
                self._pool.run(lambda s: s.write(self.path, data, pos, truncate=False), idempotent=False)
        else:
            try:
                stream.transfer.send_all(view)  # aborts the transfer (session closed) on failure
            except BaseException:
                self._stream = None
                raise
        stream.written += len(view)

    # -- io.RawIOBase ----------------------------------------------------------------------------
    def readable(self) -> bool:
        self._checkClosed()
        return self._readable

    def writable(self) -> bool:
        self._checkClosed()
        return self._writable

    def seekable(self) -> bool:
        self._checkClosed()
        return True

    def tell(self) -> int:
        self._checkClosed()
        return self._pos

    @property
    def size(self) -> int:
        return self._size

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self._checkClosed()
        if whence == io.SEEK_SET:
            pos = offset
        elif whence == io.SEEK_CUR:
            pos = self._pos + offset
        elif whence == io.SEEK_END:
            pos = self._size + offset
        else:
            raise ValueError(f"invalid whence ({whence}, should be 0, 1 or 2)")
        if pos < 0:
            raise OSError(22, "negative seek position")
        self._pos = pos
        return pos

    def readinto(self, buffer: Any) -> int:
        self._checkClosed()
        if not self._readable:
            raise io.UnsupportedOperation("read")
        self._finish_stream()  # written data must be on the server before it is read back
        view = memoryview(buffer).cast("B")
        try:
            want = min(len(view), max(0, self._size - self._pos))
            if want == 0:
                return 0
            got = self._reading().read_into(view[:want], self._pos)
            self._pos += got
            return got
        finally:
            view.release()

    def readall(self) -> bytes:
        self._checkClosed()
        if not self._readable:
            raise io.UnsupportedOperation("read")
        self._finish_stream()
        want = max(0, self._size - self._pos)
        if want == 0:
            return b""
        data = self._reading().read_bytes(self._pos, want)
        self._pos += len(data)
        return data

    def write(self, data: Any) -> int:
        self._checkClosed()
        if not self._writable:
            raise io.UnsupportedOperation("write")
        view = memoryview(data).cast("B")
        try:
            n = len(view)
            if n == 0:
                return 0
            pos = self._size if self._append else self._pos
            self._write_at(pos, view)
            self._pos = pos + n
            self._size = max(self._size, self._pos)
            return n
        finally:
            view.release()

    def truncate(self, size: int | None = None) -> int:
        self._checkClosed()
        if not self._writable:
            raise io.UnsupportedOperation("truncate")
        size = self._pos if size is None else int(size)
        if size < 0:
            raise OSError(22, "negative size")
        self._finish_stream()
        if self._reader is not None:
            self._reader.invalidate()
        if size > self._size:
            self._grow(size)
        elif size < self._size:
            self._shrink(size)
        self._size = size
        return size

    def _grow(self, size: int) -> None:
        zeros = memoryview(bytes(min(_ZERO_CHUNK, size - self._size)))
        pos = self._size
        while pos < size:
            n = min(len(zeros), size - pos)
            self._write_at(pos, zeros[:n])
            pos += n
        self._finish_stream()

    def _shrink(self, size: int) -> None:
        def rewrite(session: Session) -> None:
            if size == 0:
                session.write(self.path, b"", 0, truncate=True)
                return
            with tempfile.TemporaryFile(prefix=".uftp-truncate-") as tmp:
                session.download_to_fd(self.path, tmp.fileno(), 0, size)
                session.upload_from_fd(tmp.fileno(), self.path, 0, size, remote_offset=0, truncate=True)

        with oserrors(self.path):
            self._pool.run(rewrite, idempotent=False)

    def close(self) -> None:
        if self.closed:
            return
        try:
            if self._reader is not None:
                self._reader.close()
            self._finish_stream()
        finally:
            super().close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            log.warning("error closing UFTP file %s during garbage collection", getattr(self, "path", "?"),
                        exc_info=True)

    def __repr__(self) -> str:
        return f"<RemoteRawFile {self.path!r} mode={self.mode!r} pos={self._pos} size={self._size}>"


class _Stream:
    """An open ``STOR`` (``transfer`` None on codec sessions) and where it began."""

    __slots__ = ("start", "transfer", "written")

    def __init__(self, transfer: RawTransfer | None, start: int):
        self.transfer = transfer
        self.start = start
        self.written = 0

    @property
    def position(self) -> int:
        return self.start + self.written


def open_buffered(raw: RemoteRawFile, buffering: int = -1, default_buffer: int = 256 * 1024) -> Any:
    """Wrap ``raw`` like ``open()`` does: BufferedReader / BufferedWriter / BufferedRandom.

    ``buffering=0`` returns the raw file.  The default buffer (256 KiB) is large enough that
    line-by-line reading does few range reads, and small enough that random small reads do not
    drag megabytes each; reads larger than the buffer go straight into the caller's memory.
    """
    if buffering == 0:
        return raw
    size = default_buffer if buffering in (-1, 1, None) else max(buffering, io.DEFAULT_BUFFER_SIZE)
    if raw._readable and raw._writable:
        return io.BufferedRandom(raw, buffer_size=size)
    if raw._readable:
        return io.BufferedReader(raw, buffer_size=size)
    return io.BufferedWriter(raw, buffer_size=size)


__all__ = ["RemoteRawFile", "open_buffered"]
