"""The sessions of one bulk operation, opened from an ``Endpoint`` within the server's limits.

uftpd caps the sessions per user (``MAX_CONNECTIONS``, spec §2.4) and refuses one more login
with ``500 Too many active transfer requests / sessions``.  A bulk transfer asked for *t*
sessions does not fail then: it continues with as many as the server granted and says so.
Replacing a session that died has to wait for the server to notice the death (uftpd reaps its
session processes every few seconds), so refusals are waited out for a while there.

The pool also keeps the operation's sessions alive together: a persistent uftpd job is
forgotten once its last session closed, so a bulk operation must never drop to zero sessions
half-way.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from .endpoint import Endpoint
from .retry import RetryPolicy, is_retryable, is_session_limit
from .session import Session

log = logging.getLogger(__name__)

#: how long a replacement login waits for the server to release a dead session's slot.
LIMIT_PATIENCE = 30.0


class Cancelled(Exception):
    """Internal: another worker failed or the caller interrupted; stop quietly."""


class SessionPool:
    """Opens, tracks and closes the sessions of one bulk operation."""

    def __init__(self, endpoint: Endpoint, *, streams: int | None, policy: RetryPolicy, cancel: threading.Event,
                 on_retry: Callable[[], None] | None = None, limit_patience: float = LIMIT_PATIENCE):
        self.endpoint = endpoint
        self.streams = streams
        self.policy = policy
        self.cancel = cancel
        self.on_retry = on_retry or (lambda: None)
        self.limit_patience = limit_patience
        #: the number of sessions the server allowed, once it refused one; None = no refusal seen.
        self.limit: int | None = None
        self.refused = 0
        self._open: list[Session] = []
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ opening
    def connect(self) -> Session:
        """One new session; connection failures are retried with backoff, refusals are not."""
        attempt = 0
        while True:
            if self.cancel.is_set():
                raise Cancelled()
            try:
                session = self.endpoint.session(streams=self.streams)
            except Exception as exc:
                if not is_retryable(exc) or attempt >= self.policy.retries:
                    raise
                attempt += 1
                self.on_retry()
                delay = self.policy.delay(attempt)
                log.warning("opening a UFTP session failed (%s); retry %d/%d in %.1f s",
                            exc, attempt, self.policy.retries, delay)
                if self.cancel.wait(delay):
                    raise Cancelled() from exc
                continue
            with self._lock:
                self._open.append(session)
            return session

    def grow(self, have: int, want: int) -> list[Session]:
        """Open up to ``want - have`` more sessions concurrently; returns those that opened.

        Refusals for the per-user limit lower the count (and set ``limit``); any other failure
        is raised.
        """
        need = want - have
        if need <= 0 or (self.limit is not None and have >= self.limit):
            return []
        results: list[Session | BaseException | None] = [None] * need

        def open_one(i: int) -> None:
            try:
                results[i] = self.connect()
            except BaseException as exc:  # noqa: BLE001 - collected and judged below
                results[i] = exc

        threads = [threading.Thread(target=open_one, args=(i,), name=f"uftp-open-{i}", daemon=True)
                   for i in range(need)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        new = [r for r in results if isinstance(r, Session)]
        errors = [r for r in results if isinstance(r, BaseException)]
        fatal = [e for e in errors if not is_session_limit(e)]
        if fatal:
            raise fatal[0]
        if errors:
            self.refused += len(errors)
            self.limit = have + len(new)
            log.warning("server refused %d of %d sessions (per-user session limit: %s); continuing with %d",
                        len(errors), want, errors[0], self.limit)
        return new

    def replace(self, dead: Session | None) -> Session:
        """A fresh session for a worker whose session failed."""
        if dead is not None:
            self.discard(dead)
        deadline = time.monotonic() + self.limit_patience
        while True:
            try:
                return self.connect()
            except Exception as exc:
                if not is_session_limit(exc) or time.monotonic() > deadline:
                    raise
                log.info("session limit reached; waiting for the server to release the failed session")
                if self.cancel.wait(1.0):
                    raise Cancelled() from exc

    # ------------------------------------------------------------------ closing
    def discard(self, session: Session) -> None:
        with self._lock:
            if session in self._open:
                self._open.remove(session)
        _close_quietly(session)

    def close_all(self) -> None:
        with self._lock:
            sessions, self._open = self._open, []
        for session in sessions:
            _close_quietly(session)


def _close_quietly(session: Session) -> None:
    """A dead session may fail to close; that must not hide the error that killed it."""
    try:
        session.close()
    except Exception as exc:  # noqa: BLE001
        log.debug("closing a session failed: %s", exc)
