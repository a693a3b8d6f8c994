"""Where sessions come from: an Auth server plus credentials, or a fixed persistent secret.

Every higher layer (REST storages, CLI, FUSE, fsspec, PyFilesystem) holds an ``Endpoint`` and
asks it for sessions; the bulk engine asks it for several at once.  An endpoint authenticates
lazily and re-authenticates when a secret has expired, so long-lived users (mounts) survive
uftpd's 300 s job expiry.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any

from .auth import authenticate
from .errors import LoginError
from .session import Session, connect
from .ticket import Ticket

log = logging.getLogger(__name__)


@dataclass
class Endpoint:
    """A source of UFTP sessions.

    Either ``auth_url`` (``https://host:port/rest/auth/NAME``) with ``username``/``password``,
    ``token`` or ready-made HTTP ``headers``; or a fixed ``ticket`` (e.g. from
    ``Endpoint.from_secret(host, port, secret)``), which must be persistent to serve more than
    one session.
    """

    auth_url: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)
    headers: dict[str, str] | None = field(default=None, repr=False)
    base_dir: str = "/"
    streams: int = 1
    encryption: str | None = None
    compress: bool = False
    timeout: float = 30.0
    verify: bool | str | None = None
    implementation: str | None = None
    ticket: Ticket | None = None

    def __post_init__(self) -> None:
        if self.auth_url is None and self.ticket is None:
            raise ValueError("an Endpoint needs an auth_url or a ticket")
        self._lock = threading.Lock()

    @classmethod
    def from_secret(cls, host: str, port: int, secret: str, **kw: Any) -> Endpoint:
        """An endpoint for a secret obtained elsewhere (FUSE drivers, ``uftp authenticate``)."""
        return cls(ticket=Ticket(host=host, port=int(port), secret=secret, persistent=True), **kw)

    def new_ticket(self, *, streams: int | None = None, persistent: bool = True) -> Ticket:
        """Authenticate once more (a fresh secret).  Fixed-ticket endpoints return their ticket."""
        if self.auth_url is None:
            assert self.ticket is not None
            return self.ticket
        return authenticate(self.auth_url, self.username, self.password, token=self.token, headers=self.headers,
                            base_dir=self.base_dir, persistent=persistent, streams=streams or self.streams,
                            encryption=self.encryption, compress=self.compress, timeout=self.timeout,
                            verify=self.verify)

    def _shared_ticket(self, refresh: bool = False) -> Ticket:
        with self._lock:
            if self.ticket is None or (refresh and self.auth_url is not None):
                self.ticket = self.new_ticket()
            return self.ticket

    def session(self, *, streams: int | None = None, keep_alive: bool = True) -> Session:
        """A logged-in session, sharing one persistent ticket between calls.

        uftpd forgets a persistent job once its last session closed (or after 300 s unused):
        a refused login triggers one re-authentication when an Auth server is known.
        """
        ticket = self._shared_ticket()
        try:
            return connect(ticket, timeout=self.timeout, implementation=self.implementation,
                           streams=streams or self.streams, keep_alive=keep_alive)
        except LoginError:
            if self.auth_url is None:
                raise
            log.info("UFTP secret no longer valid; authenticating again")
            ticket = self._shared_ticket(refresh=True)
            return connect(ticket, timeout=self.timeout, implementation=self.implementation,
                           streams=streams or self.streams, keep_alive=keep_alive)
