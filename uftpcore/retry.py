"""Which failures a bulk transfer retries, and how long it waits before the next attempt.

Only *connection* failures are retried: a lost or stalled control or data connection, a reset,
a garbled stream.  Those leave the session in an unknown state, so the failed unit of work (one
chunk, one HASH) is redone on a fresh session.  Everything the server *answered* (550 not found,
534 denied, 500 errors) and every local problem (disk full, integrity mismatch) is final:
repeating it would only delay the error.

A refused login because of the per-user session limit (``500 Too many ...``, spec §3.2) is a
third kind: it is neither retried blindly nor fatal when other sessions are already working.
"""

from __future__ import annotations

import errno
import random
import socket
from dataclasses import dataclass

from .errors import (
    AuthenticationError,
    ConnectionClosedError,
    ProtocolError,
    ReplyError,
    TransferIncompleteError,
    UFTPTimeoutError,
)

NETWORK_ERRNOS = frozenset(
    getattr(errno, name)
    for name in ("ECONNRESET", "ECONNREFUSED", "ECONNABORTED", "EPIPE", "ETIMEDOUT", "EHOSTUNREACH",
                 "ENETUNREACH", "ENETDOWN", "ENETRESET", "EHOSTDOWN", "ENOTCONN", "ESHUTDOWN")
    if hasattr(errno, name)
)


def is_session_limit(exc: BaseException) -> bool:
    """The server (or the Auth server in front of it) refused another session for this user."""
    return isinstance(exc, (ReplyError, AuthenticationError)) and "too many" in str(exc).lower()


def is_retryable(exc: BaseException) -> bool:
    """A connection-level failure that a new session may overcome."""
    if isinstance(exc, (ReplyError, TransferIncompleteError)):
        return False
    if isinstance(exc, AuthenticationError):
        # the Auth server was unreachable or overloaded, not refusing us
        return exc.status is None or exc.status in (502, 503, 504)
    if isinstance(exc, (ConnectionClosedError, UFTPTimeoutError, ProtocolError)):
        return True
    if isinstance(exc, (ConnectionError, socket.timeout, TimeoutError)):
        return True
    return isinstance(exc, OSError) and exc.errno in NETWORK_ERRNOS


@dataclass(frozen=True)
class RetryPolicy:
    """``retries`` further attempts per unit of work, waits growing from ``backoff[0]`` to ``backoff[1]``."""

    retries: int = 3
    backoff: tuple[float, float] = (0.5, 8.0)

    def __post_init__(self) -> None:
        if self.retries < 0:
            raise ValueError("retries must be >= 0")
        if self.backoff[0] < 0 or self.backoff[1] < self.backoff[0]:
            raise ValueError("backoff must be (base, cap) with 0 <= base <= cap")

    def delay(self, attempt: int) -> float:
        """Capped exponential backoff with jitter, so sessions that failed together do not
        reconnect in lock-step."""
        base, cap = self.backoff
        return min(cap, base * (2 ** max(0, attempt - 1))) * random.uniform(0.5, 1.0)
