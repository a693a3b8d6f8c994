"""A bounded pool of logged-in UFTP sessions shared by every operation of a mount.

Why a pool: one UFTP session runs one command at a time, so a multithreaded mount needs
several; PyUNICORE 1.3.7 opens a new login per open file and never closes it, which runs into
uftpd's per-user ``MAX_CONNECTIONS`` within minutes.  Here sessions are created on demand up to
``max_sessions``, reused (their kept-alive data connections with them) and closed only on
unmount.  Two UFTPD rules shape the details:

* a *persistent* secret stays valid only while at least one of its sessions is alive, so the
  pool never closes its last session before the mount ends;
* a login refused with ``500 Too many ... sessions`` means the server limit is below ours: the
  pool shrinks to what it has and waits for a free session instead of failing.

When the server stops answering (an operation timed out, or it refuses connections), the pool
fails every operation at once for ``cooldown`` seconds, then lets one through to probe again.
Without that, a single ``read(2)`` on a frozen server costs several timeouts, because the kernel
retries a failed readahead page synchronously, and every queued FUSE request waits its own.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

from uftpcore.errors import (
    ConnectionClosedError,
    LoginError,
    ProtocolError,
    ReplyError,
    UFTPTimeoutError,
)
from uftpcore.session import Session

log = logging.getLogger(__name__)

T = TypeVar("T")


class PoolClosedError(ConnectionClosedError):
    """The mount is going away; no more sessions are handed out."""


class ServerUnresponsiveError(ConnectionClosedError):
    """The server did not answer within the timeout a moment ago: fail fast for a while."""


def is_connection_failure(exc: BaseException, session: Session | None = None) -> bool:
    """True when ``exc`` means the session is unusable (as opposed to a server error reply)."""
    if session is not None and session.closed:
        return True
    if isinstance(exc, ReplyError):
        return False
    return isinstance(exc, (ConnectionClosedError, UFTPTimeoutError, ProtocolError, OSError))


@dataclass
class PoolStats:
    created: int = 0
    reused: int = 0
    discarded: int = 0
    retried: int = 0
    waited: int = 0


class SessionPool:
    """Hands out sessions from ``connect()``; at most ``max_sessions`` exist at a time."""

    def __init__(self, connect: Callable[[], Session], max_sessions: int = 8, timeout: float = 30.0,
                 cooldown: float | None = None):
        self._connect = connect
        self.max_sessions = max_sessions
        #: how long an operation waits for a free session before it fails (EIO).
        self.timeout = timeout
        #: how long to fail fast after the server stopped answering.
        self.cooldown = min(timeout, 5.0) if cooldown is None else cooldown
        self._down_since: float | None = None
        self._down_reason = ""
        self._idle: list[Session] = []
        self._busy: set[Session] = set()
        self._count = 0  # idle + busy + logins in progress
        self._cond = threading.Condition()
        self._closed = False
        self.stats = PoolStats()

    # ------------------------------------------------------------------ acquire / release
    def acquire(self, timeout: float | None = None) -> Session:
        """A session for exclusive use; give it back with :meth:`release`."""
        return self._acquire(timeout)[0]

    def try_acquire(self, reserve: int = 0) -> Session | None:
        """A session only if one is free right now and ``reserve`` others stay available.

        Long-lived users (streamed uploads) take sessions this way so that they can never
        starve the short operations (lookups, reads) of the rest of the mount.
        """
        with self._cond:
            if self._closed:
                return None
            spare = len(self._idle) + (self.max_sessions - self._count)
            if spare - 1 < reserve:
                return None
        try:
            return self._acquire(0.0)[0]
        except (UFTPTimeoutError, PoolClosedError):
            return None

    def _acquire(self, timeout: float | None = None, fresh: bool = False) -> tuple[Session, bool]:
        """Returns (session, reused).  ``fresh`` prefers a new login over an idle session."""
        wait = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + wait
        self._check_down()
        with self._cond:
            while True:
                if self._closed:
                    raise PoolClosedError("the UFTP mount is shutting down")
                if fresh and self._count >= self.max_sessions and self._idle:
                    # make room for a new login by dropping one idle session
                    old = self._idle.pop(0)
                    self._count -= 1
                    self._close_quietly(old)
                if self._idle and not fresh:
                    session = self._idle.pop()
                    if session.closed:
                        self._count -= 1
                        self.stats.discarded += 1
                        continue
                    self._busy.add(session)
                    self.stats.reused += 1
                    return session, True
                if self._count < self.max_sessions:
                    self._count += 1
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise UFTPTimeoutError(
                        f"no UFTP session became free within {wait:.0f} s ({self._count} in use)")
                self.stats.waited += 1
                self._cond.wait(remaining)
        try:
            session = self._connect()
        except LoginError as exc:
            with self._cond:
                self._count -= 1
                others = self._count
                if others > 0 and _too_many_sessions(exc):
                    log.warning("UFTPD refuses more than %d concurrent sessions for this secret; "
                                "the mount continues with %d", others, others)
                    self.max_sessions = others
                    self._cond.notify_all()
                    retry = True
                else:
                    retry = False
            if retry:
                return self._acquire(max(0.0, deadline - time.monotonic()))
            raise
        except BaseException as exc:
            with self._cond:
                self._count -= 1
                self._cond.notify()
            if isinstance(exc, (OSError, UFTPTimeoutError)) and not isinstance(exc, ReplyError):
                self._mark_down(exc)
            raise
        with self._cond:
            self.stats.created += 1
            if self._closed:
                self._count -= 1
                self._close_quietly(session)
                raise PoolClosedError("the UFTP mount is shutting down")
            self._busy.add(session)
        log.debug("opened UFTP session %d of at most %d", self._count, self.max_sessions)
        return session, False

    def release(self, session: Session, broken: bool = False) -> None:
        """Return a session; ``broken`` (or a closed session) is discarded, not reused."""
        with self._cond:
            self._busy.discard(session)
            if broken or session.closed or self._closed:
                self._count -= 1
                self.stats.discarded += 1 if (broken or session.closed) else 0
                drop = True
            else:
                self._idle.append(session)
                drop = False
            self._cond.notify()
        if drop:
            self._close_quietly(session)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """``with pool.session() as s:`` — discards the session if the block broke it."""
        s = self.acquire()
        try:
            yield s
        except BaseException as exc:
            self.release(s, broken=is_connection_failure(exc, s))
            raise
        else:
            self.release(s)

    def call(self, fn: Callable[[Session], T], *, idempotent: bool = True) -> T:
        """Run ``fn(session)``; an idempotent call that fails because a *reused* session was
        dead (server restarted it, network hiccup) is retried once on a new login.  Timeouts
        are not retried: a frozen server must yield EIO within one timeout, not two."""
        session, reused = self._acquire()
        try:
            result = fn(session)
        except BaseException as exc:
            broken = is_connection_failure(exc, session)
            self.release(session, broken=broken)
            if isinstance(exc, UFTPTimeoutError):
                self._mark_down(exc)
            if not (broken and reused and idempotent) or isinstance(exc, UFTPTimeoutError) \
                    or not isinstance(exc, Exception):
                raise
            log.info("UFTP session failed (%s); retrying once on a new session", exc)
            self.stats.retried += 1
        else:
            self.release(session)
            return result
        session, _ = self._acquire(fresh=True)
        try:
            result = fn(session)
        except BaseException as exc:
            self.release(session, broken=is_connection_failure(exc, session))
            if isinstance(exc, UFTPTimeoutError):
                self._mark_down(exc)
            raise
        self.release(session)
        return result

    # ------------------------------------------------------------------ fail fast
    def _mark_down(self, exc: BaseException) -> None:
        with self._cond:
            if self._down_since is None:
                log.error("UFTP server unresponsive (%s); failing operations for %.0f s before retrying",
                          exc, self.cooldown)
            self._down_since = time.monotonic()
            self._down_reason = str(exc)

    def _check_down(self) -> None:
        """Raise while the server is considered down; after the cooldown let one call probe."""
        with self._cond:
            since = self._down_since
            if since is None:
                return
            if time.monotonic() - since < self.cooldown:
                raise ServerUnresponsiveError(f"UFTP server unresponsive: {self._down_reason}")
            self._down_since = None  # probe; a new failure marks it down again

    def mark_up(self) -> None:
        """Forget an earlier failure (tests, or a caller that knows better)."""
        with self._cond:
            self._down_since = None

    # ------------------------------------------------------------------ lifecycle
    def prime(self) -> None:
        """Log in once now, so that a bad secret or an unreachable server fails the mount
        command immediately instead of the first file operation."""
        session, _ = self._acquire()
        self.release(session)

    @property
    def size(self) -> int:
        with self._cond:
            return self._count

    @property
    def idle(self) -> int:
        with self._cond:
            return len(self._idle)

    def close(self) -> None:
        """Close every idle session; busy ones close when they come back."""
        with self._cond:
            self._closed = True
            idle, self._idle = self._idle, []
            self._count -= len(idle)
            busy = list(self._busy)
            self._cond.notify_all()
        for s in idle:
            self._close_quietly(s)
        if busy:
            log.debug("%d UFTP sessions still busy at close; they close on release", len(busy))

    @staticmethod
    def _close_quietly(session: Session) -> None:
        try:
            session.close()
        except Exception as exc:  # noqa: BLE001 - closing a dead session may fail any way
            log.debug("closing a UFTP session failed: %s", exc)


def _too_many_sessions(exc: LoginError) -> bool:
    text = (exc.text or "").lower()
    return "too many" in text or "limit" in text
