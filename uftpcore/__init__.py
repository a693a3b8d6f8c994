"""uftpcore: a fast UFTP data-transfer engine (control session, data channel, transfers).

The hot loops exist twice, in Cython (``_fastpath_c``, GIL released) and in pure Python
(``_fastpath_py``); ``IMPLEMENTATION`` says which one this process uses
(``UFTPCORE_NO_EXTENSIONS=1`` forces ``"python"``).
"""

from __future__ import annotations

from . import transfer
from ._impl import IMPLEMENTATION
from .auth import authenticate, split_auth_url
from .endpoint import Endpoint
from .errors import (
    AuthenticationError,
    ConnectionClosedError,
    IntegrityError,
    LoginError,
    NotFoundError,
    PermissionDeniedError,
    ProtocolError,
    ReplyError,
    TransferIncompleteError,
    UFTPError,
    UFTPTimeoutError,
)
from .listing import FileInfo
from .session import Session, connect
from .ticket import Ticket

__version__ = "0.1.0"

__all__ = [
    "IMPLEMENTATION",
    "authenticate",
    "split_auth_url",
    "connect",
    "Endpoint",
    "Session",
    "Ticket",
    "FileInfo",
    "UFTPError",
    "AuthenticationError",
    "ConnectionClosedError",
    "IntegrityError",
    "LoginError",
    "NotFoundError",
    "PermissionDeniedError",
    "ProtocolError",
    "ReplyError",
    "TransferIncompleteError",
    "UFTPTimeoutError",
    "transfer",
]
