"""Writes through the UFTP FUSE mount: streamed uploads for sequential writes, ranged writes
for everything else, and errors that are reported, never lost.

Why streaming: ``cp``/``dd`` into the mount produce a long run of contiguous writes.  Sending
each one as its own UFTP transfer would cost a data-connection set-up per 128 KiB; instead one
``STOR`` stays open and every write goes straight onto its data connection.  A write that is
not contiguous ends that upload and starts another at the new offset (``RANG``, which never
truncates).  An upload from offset 0 into an empty file is a plain ``STOR`` (which
replaces the file); into a non-empty file it is ranged, so bytes after the written region
survive, as POSIX demands.

Why a thread per upload: a uftpcore session keeps its lock from ``start_transfer`` to
``finish_transfer``, and that lock belongs to the thread that took it, while FUSE calls
``write``/``flush`` from any of its worker threads.  The upload thread owns the transfer;
FUSE threads hand it data through a bounded queue (backpressure: a writer faster than the
network waits).  Errors surface on the next write, and always on ``flush``/``fsync``/close.

When no session is free for a long-lived upload (every session busy), writes are coalesced in
memory instead and sent as ranged uploads of up to ``buffer_limit`` bytes.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable

from uftpcore.errors import UFTPError, UFTPTimeoutError
from uftpcore.session import Session

from .fuse_pool import SessionPool, is_connection_failure

log = logging.getLogger(__name__)

#: RANG length for "until the data connection closes" (what uftpcore's start_transfer uses).
_OPEN_END = 1 << 62


class UploadFailedError(UFTPError):
    """An earlier write of this file could not be delivered."""


class UploadStream:
    """One ``STOR`` on one pooled session, fed by :meth:`send`, completed by :meth:`finish`."""

    def __init__(self, pool: SessionPool, session: Session, remote: str, offset: int, truncate: bool,
                 timeout: float, max_queued: int = 8 << 20):
        self.remote = remote
        self.offset = offset
        self.position = offset  # next offset a contiguous write must have
        self._pool = pool
        self._session = session
        self._truncate = truncate
        self._timeout = timeout
        self._max_queued = max_queued
        self._queue: deque[bytes | None] = deque()
        self._queued = 0
        self._cond = threading.Condition()
        self._error: BaseException | None = None
        self._started = threading.Event()
        self._done = False
        self._thread = threading.Thread(target=self._run, name=f"uftp-upload:{remote}", daemon=True)
        self._thread.start()
        # wait for the 150 so that a refused upload (permissions, quota) fails the first write
        if not self._started.wait(timeout + 5):
            self._error = UFTPTimeoutError(f"upload of {remote!r} did not start within {timeout} s")
        if self._error is not None:
            raise self._error

    def send(self, data: bytes) -> None:
        """Queue ``data`` (blocks while too much is queued); raises if the upload failed."""
        n = len(data)
        with self._cond:
            while self._queued > 0 and self._queued + n > self._max_queued and self._error is None:
                if not self._cond.wait(self._timeout):
                    raise UFTPTimeoutError(f"upload of {self.remote!r} stalled for {self._timeout} s")
            if self._error is not None:
                raise UploadFailedError(f"upload of {self.remote!r} failed: {self._error}") from self._error
            self._queue.append(data)
            self._queued += n
            self.position += n
            self._cond.notify_all()

    def finish(self) -> None:
        """Close the data connection, wait for the server's 226; raises if anything failed."""
        with self._cond:
            if not self._done:
                self._done = True
                self._queue.append(None)
                self._cond.notify_all()
        self._thread.join(self._timeout * 2 + 5)
        if self._thread.is_alive():
            raise UFTPTimeoutError(f"upload of {self.remote!r} did not complete within {self._timeout} s")
        if self._error is not None:
            raise UploadFailedError(f"upload of {self.remote!r} failed: {self._error}") from self._error

    # -- the upload thread -------------------------------------------------------------------
    def _run(self) -> None:
        session = self._session
        broken = False
        try:
            try:
                if self._truncate:
                    sock = session.start_transfer("STOR", self.remote, 0)
                else:
                    sock = session.start_transfer("STOR", self.remote, self.offset, _OPEN_END - self.offset)
            except BaseException as exc:  # noqa: BLE001 - reported by send()/finish()
                self._error = exc
                broken = is_connection_failure(exc, session)
                return
            finally:
                self._started.set()
            sock.settimeout(self._timeout)
            try:
                while True:
                    with self._cond:
                        while not self._queue:
                            self._cond.wait()
                        data = self._queue.popleft()
                    if data is None:
                        break
                    sock.sendall(data)
                    with self._cond:
                        self._queued -= len(data)
                        self._cond.notify_all()
                session.finish_transfer()
            except BaseException as exc:  # noqa: BLE001 - reported by send()/finish()
                self._error = exc
                broken = True
                try:
                    session.abort_transfer()
                except Exception as abort_exc:  # noqa: BLE001 - the session is being discarded anyway
                    log.debug("aborting the upload of %s: %s", self.remote, abort_exc)
        finally:
            with self._cond:
                self._queue.clear()
                self._queued = 0
                self._cond.notify_all()
            self._pool.release(session, broken=broken)


class FileWriter:
    """Write state of one open file handle (see the module docstring)."""

    def __init__(self, path: str, pool: SessionPool, size: int, to_remote: Callable[[str], str], *,
                 timeout: float = 30.0, buffer_limit: int = 8 << 20, stream_reserve: int = 2):
        self.path = path
        #: logical size: what the file's size is once every write has landed.
        self.size = size
        self._pool = pool
        self._to_remote = to_remote
        self._timeout = timeout
        self._buffer_limit = buffer_limit
        self._stream_reserve = stream_reserve
        self._stream: UploadStream | None = None
        self._pending: bytearray | None = None
        self._pending_offset = 0
        self._error: BaseException | None = None
        #: something was written since the handle opened (the attribute cache must be refreshed).
        self.modified = False
        self._lock = threading.RLock()

    @property
    def dirty(self) -> bool:
        """Data accepted but not yet confirmed by the server."""
        return self._stream is not None or self._pending is not None

    @property
    def failed(self) -> BaseException | None:
        return self._error

    def write(self, data: bytes, offset: int) -> int:
        n = len(data)
        with self._lock:
            self._raise_if_failed()
            try:
                stream = self._stream
                if stream is not None and offset == stream.position:
                    stream.send(data)
                else:
                    if stream is not None:
                        self._finish_stream()
                    if self._pending is not None:
                        if not self._merge_pending(data, offset):
                            self._flush_pending()
                            self._start(data, offset)
                    else:
                        self._start(data, offset)
                    if self._pending is not None and len(self._pending) >= self._buffer_limit:
                        self._flush_pending()
            except BaseException as exc:
                self._fail(exc)
                raise
            self.size = max(self.size, offset + n)
            self.modified = True
            return n

    def flush(self) -> None:
        """Make every accepted byte durable on the server; raises on any failure, now or earlier."""
        with self._lock:
            self._raise_if_failed()
            try:
                if self._stream is not None:
                    self._finish_stream()
                if self._pending is not None:
                    self._flush_pending()
            except BaseException as exc:
                self._fail(exc)
                raise

    def set_size(self, size: int) -> None:
        """After a truncate: the file now has this size."""
        with self._lock:
            self.size = size
            self.modified = True

    def close(self) -> None:
        """Flush; on failure the data is dropped (the error was or is reported by flush)."""
        try:
            self.flush()
        finally:
            with self._lock:
                stream, self._stream = self._stream, None
                self._pending = None
            if stream is not None:
                try:
                    stream.finish()
                except Exception as exc:  # noqa: BLE001 - already failed and reported
                    log.debug("closing the failed upload of %s: %s", self.path, exc)

    # -- internals ---------------------------------------------------------------------------
    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise UploadFailedError(f"an earlier write to {self.path!r} failed: {self._error}") from self._error

    def _fail(self, exc: BaseException) -> None:
        if self._error is None:
            self._error = exc
            log.error("uftpfuse: writing %s failed, data not saved: %s", self.path, exc)
        stream, self._stream = self._stream, None
        self._pending = None
        if stream is not None:
            try:
                stream.finish()
            except Exception as finish_exc:  # noqa: BLE001 - the first error is the one reported
                log.debug("ending the failed upload of %s: %s", self.path, finish_exc)

    def _start(self, data: bytes, offset: int) -> None:
        """Begin a streamed upload at ``offset`` if a session can be spared, else buffer."""
        session = self._pool.try_acquire(reserve=self._stream_reserve)
        if session is None:
            self._pending = bytearray(data)
            self._pending_offset = offset
            return
        truncate = offset == 0 and self.size == 0  # replacing an empty file == writing into it
        stream = UploadStream(self._pool, session, self._to_remote(self.path), offset, truncate, self._timeout,
                              max_queued=max(self._buffer_limit, 1 << 20))
        self._stream = stream
        stream.send(data)

    def _finish_stream(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            stream.finish()

    def _merge_pending(self, data: bytes, offset: int) -> bool:
        """Fold a write into the pending buffer if it touches or overlaps it."""
        pending = self._pending
        assert pending is not None
        start = self._pending_offset
        if not start <= offset <= start + len(pending):
            return False
        rel = offset - start
        pending[rel:rel + len(data)] = data
        return True

    def _flush_pending(self) -> None:
        pending, offset = self._pending, self._pending_offset
        self._pending = None
        if pending is None:
            return
        remote = self._to_remote(self.path)
        self._pool.call(lambda s: s.write(remote, pending, offset, truncate=False))
