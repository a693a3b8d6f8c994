"""Logged-in UFTP sessions kept warm for the file-system drivers.

Why a pool: every UFTP session costs a TCP connect plus a login round trip, and every data
transfer on a fresh session another EPSV + connect.  A session kept between calls keeps its
kept-alive data connection too, so a seek + small read is two control round trips and no
reconnect.  The pool hands out the most recently used session first (LIFO) so single-threaded
readers always get the warm one, and it creates more sessions on demand when threads (cat_ranges,
get/put, PyFilesystem copy workers) run in parallel.

Sessions come from a :class:`uftpcore.Endpoint` sharing one persistent ticket; the endpoint
re-authenticates when uftpd has forgotten the ticket.  Credentials that must be renewed (JWTs
signed with an SSH key, OIDC tokens) are asked for a fresh ``Authorization`` header on every
new ticket, never per session.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import uftpcore
from uftpcore import Endpoint, Session
from uftpcore.errors import ConnectionClosedError, UFTPTimeoutError

log = logging.getLogger(__name__)

T = TypeVar("T")

#: errors after which a session is unusable but an idempotent call may be retried on a new one.
_STALE_ERRORS = (ConnectionClosedError, BrokenPipeError, ConnectionResetError, ConnectionAbortedError)


@dataclass
class CredentialEndpoint(Endpoint):
    """An :class:`uftpcore.Endpoint` whose Auth request carries a credential's current header.

    ``credential`` is anything with ``get_auth_header()`` (pyunicore_fast or PyUNICORE
    credentials); it is asked again for every new ticket, so a JWT that expired after 300 s
    is re-signed before uftpd's job expiry forces a re-authentication.
    """

    credential: Any = field(default=None, repr=False)

    def new_ticket(self, *, streams: int | None = None, persistent: bool = True) -> uftpcore.Ticket:
        if self.credential is not None and self.auth_url is not None:
            header = self.credential.get_auth_header()
            self.headers = {"Authorization": header} if header else {}
        return super().new_ticket(streams=streams, persistent=persistent)


def credential_from(username: str | None = None, password: str | None = None, token: str | None = None,
                    identity: str | None = None) -> Any:
    """A credential object for key-based authentication (``identity``), else None.

    Username/password and tokens need no object: the endpoint sends them directly.  For a key
    we use ``pyunicore_fast.credentials.create_credential`` (a cached, re-signed JWT).
    """
    if identity is None:
        return None
    from pyunicore_fast.credentials import create_credential

    return create_credential(username=username, password=password, token=None, identity=identity)


def make_endpoint(auth_url: str, *, username: str | None = None, password: str | None = None,
                  token: str | None = None, identity: str | None = None, credential: Any = None,
                  headers: dict[str, str] | None = None, base_dir: str = "", verify: bool | str | None = None,
                  streams: int = 1, encryption: str | None = None, compress: bool = False,
                  timeout: float = 30.0, implementation: str | None = None) -> CredentialEndpoint:
    """Build the endpoint of a driver from the three PyUNICORE auth types (or a ready credential)."""
    if credential is None:
        credential = credential_from(username, password, token, identity)
    if credential is not None:
        username = password = token = None
    return CredentialEndpoint(auth_url=auth_url, username=username, password=password, token=token,
                              headers=headers, base_dir=base_dir, verify=verify, streams=streams,
                              encryption=encryption, compress=compress, timeout=timeout,
                              implementation=implementation, credential=credential)


class SessionPool:
    """A thread-safe, fork-aware pool of sessions of one endpoint.

    ``max_idle`` bounds how many idle sessions are kept (extra ones are closed on release);
    sessions idle longer than ``idle_timeout`` seconds are closed instead of reused (uftpd may
    have dropped them).  The number of sessions in use is not capped: callers that fan out
    (``parallel``) bound themselves by ``max_sessions``.
    """

    def __init__(self, endpoint: Endpoint, *, max_sessions: int = 4, max_idle: int | None = None,
                 idle_timeout: float = 240.0):
        self.endpoint = endpoint
        self.max_sessions = max(1, int(max_sessions))
        self.max_idle = self.max_sessions if max_idle is None else max(0, int(max_idle))
        self.idle_timeout = idle_timeout
        self._lock = threading.Lock()
        self._idle: list[tuple[Session, float]] = []
        self._pid = os.getpid()
        self._closed = False
        self.created = 0

    # -- raw acquire / release ----------------------------------------------------------------
    def _check_fork(self) -> None:
        # After fork the idle sockets belong to the parent too: forget them without QUIT.
        if self._pid != os.getpid():
            self._idle = []
            self._pid = os.getpid()
            self._lock = threading.Lock()

    def acquire(self) -> tuple[Session, bool]:
        """An idle session (most recently used first) or a new one; returns (session, was_idle)."""
        if self._closed:
            raise ValueError("the UFTP session pool is closed")
        self._check_fork()
        now = time.monotonic()
        stale: list[Session] = []
        found: Session | None = None
        with self._lock:
            while self._idle:
                session, since = self._idle.pop()
                if session.closed:
                    continue
                if now - since > self.idle_timeout:
                    stale.append(session)
                    continue
                found = session
                break
        for session in stale:
            _quiet_close(session)
        if found is not None:
            return found, True
        session = self.endpoint.session()
        with self._lock:
            self.created += 1
        log.debug("new UFTP session (%d created so far)", self.created)
        return session, False

    def release(self, session: Session) -> None:
        """Return a session; closed ones are dropped, surplus ones closed."""
        if session.closed:
            return
        if self._closed or self._pid != os.getpid():
            _quiet_close(session)
            return
        with self._lock:
            if len(self._idle) < self.max_idle:
                self._idle.append((session, time.monotonic()))
                return
        _quiet_close(session)

    @contextlib.contextmanager
    def session(self) -> Iterator[Session]:
        """``with pool.session() as s:`` -- a session for the duration of the block."""
        session, _ = self.acquire()
        try:
            yield session
        finally:
            self.release(session)

    # -- calls ----------------------------------------------------------------------------------
    def run(self, fn: Callable[[Session], T], *, idempotent: bool = True) -> T:
        """Call ``fn(session)``; an idempotent call that finds its reused session dead is retried
        once on a fresh one (idle control connections may have been closed by the server)."""
        session, was_idle = self.acquire()
        try:
            return fn(session)
        except _STALE_ERRORS + (UFTPTimeoutError,) as exc:
            _quiet_close(session)
            if not (idempotent and was_idle and isinstance(exc, _STALE_ERRORS)):
                raise
            log.info("reused UFTP session was closed (%s); retrying on a new one", type(exc).__name__)
        finally:
            self.release(session)
        session, _ = self.acquire()
        try:
            return fn(session)
        finally:
            self.release(session)

    def close(self) -> None:
        """Close every idle session; sessions still in use are closed when released."""
        self._check_fork()
        with self._lock:
            idle, self._idle = self._idle, []
            self._closed = True
        for session, _ in idle:
            _quiet_close(session)

    @property
    def closed(self) -> bool:
        return self._closed

    def __repr__(self) -> str:
        return f"<SessionPool idle={len(self._idle)} max_sessions={self.max_sessions} created={self.created}>"


def _quiet_close(session: Session) -> None:
    try:
        session.close()
    except Exception:
        log.debug("error closing a UFTP session", exc_info=True)
