"""A plain streaming ``RETR``/``STOR`` whose data socket may be used from any thread.

``Session.start_transfer`` keeps the session lock (an ``RLock``) until ``finish_transfer``, and
an ``RLock`` can only be released by the thread that acquired it.  File objects do not live on
one thread: PyFilesystem's copy workers get files opened by the main thread and close them in a
worker, dask hands files between threads, garbage collection finalises them anywhere.  So the
start and the end of each transfer run on one small private thread of the transfer, while the
data socket itself (which needs no lock) is read or written by whichever thread holds the file.

The session comes from the drivers' pool and goes back to it when the transfer ends (or is
closed when it failed).  Encrypted or compressed sessions have no raw data socket:
``NoRawTransfer`` tells the caller to use exact range reads/writes instead.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from uftpcore import Session
from uftpcore.errors import ReplyError, UFTPError

from .sessionpool import SessionPool

log = logging.getLogger(__name__)


class NoRawTransfer(Exception):
    """The pooled session encrypts or compresses: its data cannot be streamed raw."""


class RawTransfer:
    """One open ``RETR`` or ``STOR`` (see ``Session.start_transfer`` for offset/length rules)."""

    def __init__(self, pool: SessionPool, verb: str, path: str, offset: int = 0, length: int | None = None):
        self._pool = pool
        self.path = path
        session, _ = pool.acquire()
        if session.encrypted or session.compress:
            pool.release(session)
            raise NoRawTransfer(path)
        self.session: Session | None = session
        self._owner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="uftp-transfer")
        try:
            self.sock = self._owner.submit(session.start_transfer, verb, path, offset, length).result()
        except BaseException:
            self._owner.shutdown(wait=False)
            self.session = None
            pool.release(session)
            raise
        #: the hot loops of the session's implementation (Cython or pure Python)
        self.fp: Any = session._fp
        self.timeout = session.timeout

    @property
    def active(self) -> bool:
        return self.session is not None

    def finish(self, *, cut_short: bool = False) -> None:
        """End the transfer: close the data socket and read the final reply.

        ``cut_short``: a ``RETR`` abandoned before its end; uftpd then reports the broken data
        connection (an error reply), which is expected and leaves the session usable.
        """
        session, self.session = self.session, None
        if session is None:
            return
        try:
            self._owner.submit(session.finish_transfer).result()
        except ReplyError:
            if not cut_short:
                raise
        except UFTPError:
            if not cut_short:
                raise
            log.debug("session closed after an abandoned RETR of %s", self.path, exc_info=True)
            session.close()
        finally:
            self._owner.shutdown(wait=False)
            self._pool.release(session)

    def abort(self) -> None:
        """Give up after a failed send/receive: the session's state is unknown, so it closes."""
        session, self.session = self.session, None
        if session is None:
            return
        try:
            self._owner.submit(session.abort_transfer).result()
        finally:
            self._owner.shutdown(wait=False)
            self._pool.release(session)  # closed sessions are dropped by the pool

    def send_all(self, view: memoryview) -> None:
        try:
            self.fp.send_all(self.sock, view, self.timeout)
        except BaseException:
            self.abort()
            raise

    def recv_into(self, view: memoryview) -> int:
        return self.fp.recv_into(self.sock, view, self.timeout)

    def recv_bytes(self, n: int) -> bytes:
        return self.fp.new_bytes_from_socket(self.sock, n, self.timeout)
