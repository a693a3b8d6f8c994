"""The result of a UFTP authentication: where to connect and with which one-time secret.

The secret (and the encryption key) are excluded from ``repr`` and never logged: a ticket
is printed in logs and tracebacks far more often than anyone expects.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Ticket:
    """Connection data for one UFTPD session (or several, when ``persistent``)."""

    host: str
    port: int
    secret: str = field(repr=False)
    #: every address the Auth server offered (it may send a list); ``host`` is the first.
    hosts: tuple[str, ...] = ()
    #: raw key material (Blowfish key, or 16-byte IV + AES key), None = plaintext.
    key: bytes | None = field(default=None, repr=False)
    #: "BLOWFISH" or "AES" when ``key`` is set.
    algo: str | None = None
    streams: int = 1
    compress: bool = False
    persistent: bool = True
    base_dir: str = "/"

    @property
    def addresses(self) -> tuple[str, ...]:
        """The addresses to try, in order."""
        return self.hosts or (self.host,)

    @property
    def key_b64(self) -> str | None:
        """The key as the Auth request and command port carry it (standard base64)."""
        return base64.b64encode(self.key).decode("ascii") if self.key is not None else None
