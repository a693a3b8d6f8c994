"""Workers, one per session, pulling work items from a shared queue.

A UFTP session does one thing at a time (uftpd does not even read the control channel during
a transfer), so parallelism means several sessions, each driven by its own thread.  The queue
is shared and *dynamic*: a worker that finds a file too big for one session splits it and puts
the pieces at the front, where idle workers pick them up.  Items are taken biggest-first by the
caller's ordering, which keeps the sessions busy until the end (longest-processing-time-first).

``Worker.call`` is the retry point: it runs one operation (a chunk, a HASH, a listing) on the
worker's session and, on a connection failure, replaces the session and runs it again after a
backoff.  Only that operation is repeated, never the work done before it.

The first real failure cancels everything: the other workers stop after their current
operation, and ``Crew.run`` re-raises that first error in the caller's thread.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from .ratelimit import ChunkSizer
from .retry import RetryPolicy, is_retryable
from .session import Session
from .sessionpool import Cancelled, SessionPool

log = logging.getLogger(__name__)
T = TypeVar("T")


class WorkQueue:
    """A deque plus a count of unfinished items; ``get`` returns None once all are done."""

    def __init__(self, items: Iterable[Any] = ()):
        self._items: deque[Any] = deque(items)
        self._pending = len(self._items)
        self._cond = threading.Condition()
        self._cancelled = False

    def put_front(self, items: list[Any]) -> None:
        with self._cond:
            self._items.extendleft(reversed(items))
            self._pending += len(items)
            self._cond.notify_all()

    def get(self) -> Any | None:
        with self._cond:
            while not self._items and self._pending > 0 and not self._cancelled:
                self._cond.wait()
            if self._cancelled or not self._items:
                return None
            return self._items.popleft()

    def done(self) -> None:
        with self._cond:
            self._pending -= 1
            if self._pending <= 0:
                self._cond.notify_all()

    def cancel(self) -> None:
        with self._cond:
            self._cancelled = True
            self._cond.notify_all()


class Worker:
    """One session and the per-worker state that goes with it."""

    def __init__(self, crew: Crew, index: int, session: Session, sizer: ChunkSizer):
        self.crew = crew
        self.index = index
        self.session: Session | None = session
        self.sizer = sizer
        #: scratch space for hashing local ranges (fixed size: memory does not grow with files).
        self.buf = bytearray(1 << 20)

    def call(self, op: Callable[[Session], T], what: str) -> T:
        """Run ``op(session)``; on a connection failure retry it on a new session."""
        crew = self.crew
        attempt = 0
        while True:
            if crew.cancel.is_set():
                raise Cancelled()
            try:
                if self.session is None:
                    self.session = crew.pool.replace(None)
                result = op(self.session)
                crew.note_streams(self.session.streams_used)
                return result
            except Exception as exc:
                if isinstance(exc, Cancelled) or not is_retryable(exc) or attempt >= crew.policy.retries:
                    raise
                attempt += 1
                crew.count_retry()
                delay = crew.policy.delay(attempt)
                log.warning("%s failed (%s: %s); retry %d/%d in %.1f s on a new session",
                            what, type(exc).__name__, exc, attempt, crew.policy.retries, delay)
                if self.session is not None:
                    crew.pool.discard(self.session)
                    self.session = None
                if crew.cancel.wait(delay):
                    raise Cancelled() from exc


class Crew:
    """The workers of one bulk operation (one per session of the pool)."""

    def __init__(self, pool: SessionPool, policy: RetryPolicy, cancel: threading.Event,
                 sizer_factory: Callable[[], ChunkSizer]):
        self.pool = pool
        self.policy = policy
        self.cancel = cancel
        self._sizer_factory = sizer_factory
        self.workers: list[Worker] = []
        self.retries = 0
        self.streams_used = 0
        self._lock = threading.Lock()
        self._queue: WorkQueue | None = None

    # ------------------------------------------------------------------ sessions
    def start(self) -> Worker:
        """Open the first session (the primary one, used for metadata before the transfer)."""
        if not self.workers:
            self.workers.append(Worker(self, 0, self.pool.connect(), self._sizer_factory()))
        return self.workers[0]

    def grow(self, want: int) -> int:
        """Up to ``want`` workers in total (fewer if the server limits sessions)."""
        for session in self.pool.grow(len(self.workers), want):
            self.workers.append(Worker(self, len(self.workers), session, self._sizer_factory()))
        return len(self.workers)

    @property
    def primary(self) -> Worker:
        return self.workers[0]

    def count_retry(self) -> None:
        with self._lock:
            self.retries += 1

    def note_streams(self, n: int) -> None:
        if n > self.streams_used:
            with self._lock:
                self.streams_used = max(self.streams_used, n)

    # ------------------------------------------------------------------ running
    def push(self, items: list[Any]) -> None:
        """Add items at the front of the running queue (pieces of a file just split)."""
        assert self._queue is not None, "push() only while run() is active"
        self._queue.put_front(items)

    def run(self, items: Iterable[Any], handler: Callable[[Worker, Any], None]) -> None:
        """Process ``items`` (and whatever handlers push) with every worker; the caller's thread
        is worker 0.  Re-raises the first failure after all workers stopped."""
        queue = WorkQueue(items)
        self._queue = queue
        errors: list[BaseException] = []

        def loop(worker: Worker) -> None:
            while True:
                item = queue.get()
                if item is None:
                    return
                try:
                    handler(worker, item)
                except BaseException as exc:  # noqa: BLE001 - re-raised by run() in the caller's thread
                    with self._lock:
                        errors.append(exc)
                    self.cancel.set()
                    queue.cancel()
                    return
                finally:
                    queue.done()

        threads = [threading.Thread(target=loop, args=(w,), name=f"uftp-worker-{w.index}", daemon=True)
                   for w in self.workers[1:]]
        try:
            for t in threads:
                t.start()
            loop(self.workers[0])
        except BaseException as exc:  # KeyboardInterrupt in the caller's thread
            errors.append(exc)
            self.cancel.set()
            queue.cancel()
            raise
        finally:
            for t in threads:
                t.join()
            self._queue = None
        real = [e for e in errors if not isinstance(e, Cancelled)]
        if real or errors:
            raise (real or errors)[0]
