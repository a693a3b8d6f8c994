"""Typed exceptions of uftpcore.

Every failure a caller can see is one of these, so that scripts can react to the *kind*
of failure (not found, denied, timed out, corrupted) without parsing text.  Reply-based
errors carry the server's reply code and text verbatim.  No exception ever contains a
secret: commands are identified by their verb only.
"""

from __future__ import annotations

import builtins


class UFTPError(Exception):
    """Base class of every uftpcore error."""


class AuthenticationError(UFTPError):
    """The Auth server refused or failed the authentication request."""

    def __init__(self, message: str, status: int | None = None, url: str | None = None):
        super().__init__(message)
        self.status = status
        self.url = url


class ReplyError(UFTPError):
    """The UFTPD server answered a command with an error reply (4xx/5xx)."""

    def __init__(self, code: int, text: str, verb: str | None = None):
        where = f" to {verb}" if verb else ""
        super().__init__(f"server replied {code}{where}: {text}")
        self.code = code
        self.text = text
        self.verb = verb


class NotFoundError(ReplyError, FileNotFoundError):
    """550: the path does not exist or cannot be accessed."""


class PermissionDeniedError(ReplyError, PermissionError):
    """534 (outside base directory, access level, include/exclude) or 530 (login)."""


class LoginError(ReplyError):
    """The secret was not accepted (530/500 during login)."""


class ProtocolError(UFTPError):
    """The peer sent something the protocol does not allow (garbled or truncated reply,
    bad frame header, unexpected reply code)."""


class ConnectionClosedError(ProtocolError, ConnectionError):
    """The peer closed a connection where more data was required."""


class UFTPTimeoutError(UFTPError, builtins.TimeoutError):
    """A network operation did not complete within its timeout."""


class TransferIncompleteError(UFTPError):
    """Fewer bytes arrived than the server announced or the caller asked for."""

    def __init__(self, message: str, expected: int | None = None, received: int | None = None):
        super().__init__(message)
        self.expected = expected
        self.received = received


class IntegrityError(UFTPError):
    """A checksum computed after a transfer does not match the source."""


__all__ = [
    "UFTPError",
    "AuthenticationError",
    "ReplyError",
    "NotFoundError",
    "PermissionDeniedError",
    "LoginError",
    "ProtocolError",
    "ConnectionClosedError",
    "UFTPTimeoutError",
    "TransferIncompleteError",
    "IntegrityError",
]
