"""UFTP authentication and sessions with PyUNICORE's ``pyunicore.uftp.uftp`` API, on uftpcore.

PyUNICORE drives UFTPD with :mod:`ftplib`; here every call goes through a
``uftpcore.Session`` (one control connection, TCP_NODELAY, typed errors), while the results
keep PyUNICORE's shapes: ``stat`` returns an ``os.stat``-like dict, ``listdir`` a list of
names, ``get_read_socket``/``get_write_socket`` a connected data socket.

Both construction styles work::

    host, port, secret = UFTP(transport, auth_url, base_dir).authenticate()   # README form
    host, port, secret = UFTP().authenticate(credential, auth_url, base_dir)  # 2.0.2 form
"""

from __future__ import annotations

import logging
import os
import socket
from typing import Any

from pyunicore_fast.client import Resource, Transport, _issue_token, _to_transport
from pyunicore_fast.credentials import Credential

log = logging.getLogger(__name__)

_AUTH_MARK = "/rest/auth/"


def _server_path(base_dir: str | None) -> str:
    """PyUNICORE sends the base directory with a trailing ``/`` (empty = user's home)."""
    if not base_dir:
        return ""
    return base_dir if base_dir.endswith("/") else base_dir + "/"


def _auth_request(transport: Transport, url: str, base_dir: str | None, persistent: bool) -> dict[str, Any]:
    req: dict[str, Any] = {"serverPath": _server_path(base_dir)}
    if persistent:
        req["persistent"] = "true"
    with transport.post(url=url, json=req) as res:
        reply = res.json()
    if str(reply.get("success", True)).lower() == "false":
        raise PermissionError(f"UFTP authentication at {url} refused: {reply.get('reason') or 'no reason given'}")
    return reply


def _ticket_from_reply(reply: dict[str, Any], base_dir: str | None, persistent: bool) -> Any:
    import uftpcore

    hosts = tuple(h for h in str(reply["serverHost"]).replace(",", " ").split() if h)
    return uftpcore.Ticket(host=hosts[0], port=int(reply["serverPort"]), secret=str(reply["secret"]), hosts=hosts,
                           persistent=persistent, base_dir=base_dir or "")


class UFTP:
    """Authenticate UFTP sessions at an Auth server and work with the remote file system.

    Attributes as in PyUNICORE: ``ftp`` (here the ``uftpcore.Session``, None until
    connected), ``uid``/``gid`` (local ids reported by :meth:`stat`).
    """

    def __init__(self, security: Credential | Transport | None = None, auth_url: str | None = None,
                 base_dir: str = "", timeout: float = 30.0):
        self._security = security
        self._auth_url = auth_url
        self._base_dir = base_dir
        self.timeout = timeout
        self.ftp: Any = None
        self.ticket: Any = None
        self.uid = os.getuid() if hasattr(os, "getuid") else 0
        self.gid = os.getgid() if hasattr(os, "getgid") else 0
        self._pending: socket.socket | None = None

    @property
    def session(self) -> Any:
        """The ``uftpcore.Session`` (same object as ``ftp``)."""
        return self.ftp

    # -- authentication and connection -------------------------------------------------------
    def authenticate(self, security: Credential | Transport | None = None, base_url: str | None = None,
                     base_dir: str | None = None, preferences: str | None = None,
                     persistent: bool = True) -> tuple[str, int, str]:
        """POST to the Auth server; returns ``(host, port, one-time password)``.

        Arguments default to those given to the constructor (README form).
        """
        security = security if security is not None else self._security
        base_url = base_url if base_url is not None else self._auth_url
        base_dir = base_dir if base_dir is not None else self._base_dir
        if security is None or base_url is None:
            raise TypeError("authenticate() needs credentials and the Auth server URL")
        transport = _to_transport(security)
        if preferences is not None:
            transport.preferences = preferences
        reply = _auth_request(transport, base_url, base_dir, persistent)
        self.ticket = _ticket_from_reply(reply, base_dir, persistent)
        return self.ticket.host, self.ticket.port, self.ticket.secret

    def open_uftp_session(self, host: str, port: int, password: str) -> Any:
        """Log in to UFTPD; returns (and keeps as ``ftp``) the ``uftpcore.Session``."""
        import uftpcore

        self.close()
        if self.ticket is not None and self.ticket.port == int(port) and self.ticket.secret == password \
                and host in self.ticket.addresses:
            self.ftp = uftpcore.connect(self.ticket, timeout=self.timeout)
        else:
            self.ftp = uftpcore.connect(host, int(port), password, timeout=self.timeout)
        return self.ftp

    def connect(self, security: Credential | Transport | None = None, base_url: str | None = None,
                base_dir: str | None = None) -> Any:
        """Authenticate and open the session; returns the ``uftpcore.Session``."""
        host, port, password = self.authenticate(security, base_url, base_dir)
        return self.open_uftp_session(host, port, password)

    def close(self) -> None:
        self._finish_pending()
        if self.ftp is not None:
            try:
                self.ftp.close()
            finally:
                self.ftp = None

    def __enter__(self) -> UFTP:  # noqa: PYI034 - typing.Self needs Python 3.11
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "connected" if self.ftp is not None else "not connected"
        return f"UFTP({self._auth_url or ''!r}, base_dir={self._base_dir!r}, {state})"

    # -- file system --------------------------------------------------------------------------
    def normalize(self, path: str | None) -> str | None:
        """Paths are relative to the session's base directory: strip one leading ``/``."""
        if path is not None and path.startswith("/"):
            path = path[1:]
        return path

    def _session(self) -> Any:
        if self.ftp is None:
            raise OSError("UFTP session not open: call connect() or open_uftp_session() first")
        self._finish_pending()
        return self.ftp

    def _p(self, path: str | None) -> str:
        return self.normalize(path) or "."

    def stat(self, path: str) -> dict[str, int]:
        """``os.stat``-like dict: ``st_size, st_uid, st_gid, st_mode, st_mtime, st_atime``."""
        info = self._session().stat(self._p(path))
        return info.as_stat_dict(self.uid, self.gid)

    def listdir(self, directory: str) -> list[str]:
        """Names in a directory (MLSD: names with spaces survive, unlike PyUNICORE's LIST)."""
        return [info.name for info in self._session().listdir(self._p(directory))]

    def mkdir(self, directory: str, mode: int | None = None) -> None:
        self._session().mkdir(self._p(directory))

    def rmdir(self, directory: str) -> None:
        self._session().rmdir(self._p(directory))

    def rm(self, path: str) -> None:
        self._session().remove(self._p(path))

    def rename(self, source: str, target: str) -> None:
        self._session().rename(self._p(source), self._p(target))

    def set_time(self, path: str, mtime: float) -> None:
        self._session().set_mtime(self._p(path), mtime)

    def chmod(self, path: str, mode: int) -> None:
        self._session().chmod(self._p(path), mode)

    # -- raw data sockets (FUSE drivers and streaming callers) ----------------------------------
    def _send_range(self, offset: int, length: int, rfc: bool = False) -> None:
        end = offset + length - 1 if rfc else offset + length
        self._session().command(f"RANG {offset} {end}", (350,))

    def get_write_socket(self, path: str, offset: int) -> socket.socket:
        """A data socket that writes ``path`` from ``offset``; close it to complete the upload.

        ``offset > 0`` writes into the existing file (RANG, no truncation); ``offset == 0``
        replaces the file (uftpd reads until EOF).
        """
        return self._raw_transfer("STOR", path, offset)

    def get_read_socket(self, path: str, offset: int) -> socket.socket:
        """A data socket delivering ``path`` from ``offset`` to its end."""
        return self._raw_transfer("RETR", path, offset)

    def _raw_transfer(self, verb: str, path: str, offset: int) -> socket.socket:
        # the final reply is read (finish_transfer) before the next command on this session
        self._finish_pending()
        sock = self._session().start_transfer(verb, self._p(path), offset)
        self._pending = sock
        return sock

    def _finish_pending(self) -> None:
        """Read the final reply of a transfer handed out as a raw socket."""
        sock, self._pending = self._pending, None
        if sock is None or self.ftp is None:
            return
        try:
            self.ftp.finish_transfer()
        except Exception as exc:  # noqa: BLE001 - the transfer is over either way
            log.info("UFTP raw transfer ended with an error: %s", exc)


class AuthServer:
    """A UFTP Auth server (``https://host/.../rest/auth/<NAME>``): info, sessions, tokens."""

    def __init__(self, security: Credential | Transport, url: str):
        self.transport = _to_transport(security)
        self.auth_url = url
        parts = url.split(_AUTH_MARK)
        if len(parts) == 1:
            raise ValueError(f"Not an AuthServer URL: {url}")
        self.base_url = parts[0] + "/rest/auth"
        self.server_name = parts[1].split(":")[0].strip("/")
        self.info = self.transport.get(url=self.base_url)

    def authenticate(self, base_dir: str = "", persistent: bool = True) -> tuple[str, int, str]:
        """``(host, port, one-time password)`` for a session rooted at ``base_dir``."""
        reply = _auth_request(self.transport, f"{self.base_url}/{self.server_name}", base_dir, persistent)
        ticket = _ticket_from_reply(reply, base_dir, persistent)
        return ticket.host, ticket.port, ticket.secret

    def is_sharing_supported(self) -> bool:
        try:
            return bool(self.info[self.server_name]["dataSharing"]["enabled"])
        except (KeyError, TypeError):
            return False

    def get_sharing_endpoint(self) -> Resource:
        return Resource(self.transport, self.info[self.server_name]["dataSharing"]["href"])

    def issue_auth_token(self, lifetime: int = -1, renewable: bool = False, limited: bool = False) -> str:
        """A JWT issued by the Auth server."""
        return _issue_token(self.transport, self.base_url + "/token", lifetime, renewable, limited)

    def __repr__(self) -> str:
        return f"AuthServer({self.auth_url!r})"


__all__ = ["UFTP", "AuthServer"]
