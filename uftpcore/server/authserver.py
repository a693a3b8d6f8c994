"""A minimal UNICORE Auth server (``/rest/auth``) in front of a :class:`UFTPD` (spec §1, §15.4).

Routes:

* ``GET  /rest/auth`` — info document (§1.5): per-server ``href``, ``description``,
  ``status``, ``uftpdServerVersion``, ``sessionLimit``, ``uid``, ``gid``, ``dataSharing``;
  plus ``client`` and ``server`` (anonymous access allowed, as UNICORE does);
* ``POST /rest/auth/<NAME>`` (also ``<NAME>-1``) — authenticate (HTTP Basic against
  ``users`` or ``Authorization: Bearer`` against ``tokens``/issued tokens), derive ``file=``
  from ``serverPath`` (§1.4), invent a 20-letter secret and register the job **through the
  real command port over TCP** (after a ping, like the Java Auth server), then reply with
  the ``AuthResponse`` JSON;
* ``GET  /rest/auth/token`` — a ``text/plain`` token usable as ``Bearer`` later.

Errors use UNICORE's JSON shape ``{"errorMessage": ..., "status": ...}``: 401 bad/missing
credentials, 400 malformed request, 404 unknown server, 503 uftpd unreachable, 500
``ERROR::`` from uftpd.  Passwords, tokens, secrets and keys are never logged.
"""

from __future__ import annotations

import base64
import binascii
import grp
import hmac
import json
import logging
import os
import re
import secrets
import socket
import string
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from . import commandport
from .tlsutil import TLSSetting, server_context

if TYPE_CHECKING:
    from typing import Self

    from .uftpd import UFTPD

log = logging.getLogger(__name__)

#: legacy multi-file session tag some clients append to ``serverPath`` (§1.4)
MULTI_FILE_TAG = "___UFTP___MULTI___FILE___SESSION___MODE___"
SECRET_LENGTH = 20
DEFAULT_TOKEN_LIFETIME = 3600
ANONYMOUS_DN = "CN=ANONYMOUS,O=UNKNOWN,OU=UNKNOWN"


def derive_file(server_path: str) -> str:
    """``serverPath`` -> the ``file=`` value uftpd gets (§1.4).

    ``"/data/foo"`` and ``"/data/foo/"`` -> ``/data/foo/``; ``"/"`` -> ``/``; ``""`` and the
    bare tag -> ``""``; ``"/data/<tag>"`` -> ``/data/``; ``"data"`` -> ``data/``.
    """
    if server_path == MULTI_FILE_TAG:
        base = ""
    else:
        head, sep, last = server_path.rpartition("/")
        if sep and last == MULTI_FILE_TAG:
            base = head if head else "/"
        else:
            base = server_path
    if base and not base.endswith("/"):
        base += "/"
    return base


def new_secret() -> str:
    """20 random lower-case letters (what the Java Auth server generates)."""
    return "".join(secrets.choice(string.ascii_lowercase) for _ in range(SECRET_LENGTH))


def _as_bool(value: Any, default: bool = False) -> bool:
    """Gson semantics: JSON booleans, or strings where only "true" (any case) is true."""
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return value.strip().lower() == "true"
    raise TypeError(f"expected a boolean, got {value!r}")


def _as_int(value: Any, default: int) -> int:
    if value is None:
        return default
    if isinstance(value, bool):
        raise TypeError(f"expected a number, got {value!r}")
    if isinstance(value, (int, float)):
        return int(value)
    if isinstance(value, str):
        return int(value.strip())
    raise TypeError(f"expected a number, got {value!r}")


class _HTTPError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, handler, family: int):
        self.address_family = family
        super().__init__(address, handler)


class AuthServer:
    """The Auth endpoint.  ``users`` maps user -> password, ``tokens`` token -> user.

    Keyword-only extras: ``description``, ``server_host`` (the ``serverHost`` to return;
    default the UFTPD's advertise host or listen host), ``job_extras`` (additional
    ``key=value`` fields for every job, e.g. ``{"rateLimit": "1048576"}``), ``group``
    (reported ``gid`` and forwarded ``group=`` default).
    """

    def __init__(
        self,
        uftpd: UFTPD,
        host: str = "127.0.0.1",
        port: int = 0,
        users: dict[str, str] | None = None,
        tokens: dict[str, str] | None = None,
        server_name: str = "TEST",
        home_dirs: dict[str, str] | None = None,
        tls: TLSSetting = False,
        *,
        description: str = "Test UFTPD server",
        server_host: str | None = None,
        job_extras: dict[str, str] | None = None,
        group: str | None = None,
    ):
        if "-" in server_name:
            raise ValueError("server names may not contain '-' (it separates the instance index)")
        self.uftpd = uftpd
        self.host = host
        self._port = port
        self.users: dict[str, str] = users if users is not None else {}
        self.tokens: dict[str, str] = tokens if tokens is not None else {}
        self.server_name = server_name
        self.tls = tls
        self.description = description
        self.server_host = server_host
        self.job_extras = dict(job_extras or {})
        self.group = group
        self.cert_file: str | None = None
        if home_dirs:
            uftpd.home_dirs.update(home_dirs)
        self._issued: dict[str, tuple[str, float]] = {}
        self._token_lock = threading.Lock()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- URLs ----------------------------------------------------------------------------
    @property
    def port(self) -> int:
        return self._port

    @property
    def base_url(self) -> str:
        """``http(s)://host:port/rest/auth``."""
        scheme = "https" if self.tls else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self._port}/rest/auth"

    @property
    def url(self) -> str:
        """The endpoint of this server: ``.../rest/auth/<NAME>``."""
        return f"{self.base_url}/{self.server_name}"

    # -- lifecycle -----------------------------------------------------------------------
    def start(self) -> AuthServer:
        if self._httpd is not None:
            return self
        family = socket.getaddrinfo(self.host, self._port, type=socket.SOCK_STREAM)[0][0]
        handler = type("AuthHandler", (_AuthHandler,), {"auth": self})
        httpd = _Server((self.host, self._port), handler, family)
        if self.tls:
            context, self.cert_file = server_context(self.tls, self.host)
            httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
        self._port = httpd.server_address[1]
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"authserver-{self._port}", daemon=True)
        self._thread.start()
        log.info("Auth server for '%s' at %s", self.server_name, self.url)
        return self

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(5.0)
        self._httpd = None
        self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    # -- credentials ---------------------------------------------------------------------
    def issue_token(self, user: str, lifetime: float = DEFAULT_TOKEN_LIFETIME) -> str:
        """A new bearer token for ``user`` valid ``lifetime`` seconds."""
        token = secrets.token_urlsafe(32)
        with self._token_lock:
            self._issued[token] = (user, time.time() + lifetime)
        return token

    def user_for_token(self, token: str) -> str | None:
        user = self.tokens.get(token)
        if user is not None:
            return user
        with self._token_lock:
            entry = self._issued.get(token)
            if entry is None:
                return None
            if entry[1] < time.time():
                del self._issued[token]
                return None
            return entry[0]

    def check_password(self, user: str, password: str) -> bool:
        expected = self.users.get(user)
        return expected is not None and hmac.compare_digest(expected.encode(), password.encode())

    # -- the two real operations ---------------------------------------------------------
    def _ping(self) -> dict[str, str] | None:
        return commandport.ping(self.uftpd.cmd_host, self.uftpd.cmd_port)

    def _gid(self) -> str:
        if self.group:
            return self.group
        try:
            return grp.getgrgid(os.getgid()).gr_name
        except KeyError:
            return str(os.getgid())

    def info_document(self, user: str | None) -> dict[str, Any]:
        """The ``GET /rest/auth`` reply for ``user`` (``None`` = anonymous)."""
        ping = self._ping()
        entry: dict[str, Any] = {
            "href": self.url,
            "description": self.description,
            "status": "OK" if ping else "DOWN",
            "uftpdServerVersion": (ping or {}).get("Version", "n/a"),
            "dataSharing": {"enabled": False},
        }
        if ping:
            try:
                limit = int(ping.get("MaxSessionsPerClient", "0"))
            except ValueError:
                limit = 0
            if limit > 0:
                entry["sessionLimit"] = limit
        if user is not None:
            entry["uid"] = user
            entry["gid"] = self._gid()
            entry["availableGroups"] = [self._gid()]
        rate = self.job_extras.get("rateLimit")
        if rate and rate.isdigit() and int(rate) > 0:
            entry["rateLimit"] = int(rate)
        if self.job_extras.get("includes"):
            entry["allowed"] = self.job_extras["includes"]
        if self.job_extras.get("excludes"):
            entry["forbidden"] = self.job_extras["excludes"]
        if user is None:
            client: dict[str, Any] = {"dn": ANONYMOUS_DN, "role": {"selected": "anonymous",
                                                                   "availableRoles": ["anonymous"]}}
        else:
            client = {
                "dn": f"CN={user},O=UNICORE,C=EU",
                "role": {"selected": "user", "availableRoles": ["user"]},
                "xlogin": {"UID": user, "availableUIDs": [user], "group": self._gid(),
                           "availableGroups": [self._gid()]},
            }
        return {
            self.server_name: entry,
            "client": client,
            "server": {"version": "uftpcore-test-authserver-1.0"},
        }

    def create_session(self, user: str, body: dict[str, Any], peer_ip: str) -> dict[str, Any]:
        """Turn an ``AuthRequest`` into a uftpd job; returns the ``AuthResponse``."""
        if "serverPath" not in body or body["serverPath"] is None:
            raise _HTTPError(500, "serverPath must be given")
        server_path = body["serverPath"]
        if not isinstance(server_path, str):
            raise _HTTPError(400, "serverPath must be a string")
        try:
            streams = _as_int(body.get("streamCount"), 1)
            compress = _as_bool(body.get("compress"))
            persistent = _as_bool(body.get("persistent"))
            append = _as_bool(body.get("append"))
        except (TypeError, ValueError) as exc:
            raise _HTTPError(400, f"Invalid request: {exc}") from None
        client = body.get("client")
        if client:
            client_ip = ",".join(part for part in re.split(r"[,\s]+", str(client)) if part)
        else:
            client_ip = peer_ip
        if self._ping() is None:
            raise _HTTPError(503, f"UFTPD server '{self.server_name}' is not available")
        secret = new_secret()
        fields: list[tuple[str, str]] = [
            ("request-type", "uftp-transfer-request"),
            ("client-ip", client_ip),
            ("user", user),
            ("secret", secret),
            ("persistent", "true" if persistent else "false"),
            ("file", derive_file(server_path)),
            ("append", "true" if append else "false"),
            ("streams", str(streams)),
            ("compress", "true" if compress else "false"),
        ]
        group = body.get("group") or self.group
        if group:
            fields.append(("group", str(group)))
        key = body.get("encryptionKey")
        if key:
            fields.append(("key", str(key)))
            fields.append(("algo", str(body.get("encryptionAlgorithm") or "BLOWFISH").upper()))
        fields.extend(self.job_extras.items())
        try:
            reply = commandport.send_request(self.uftpd.cmd_host, self.uftpd.cmd_port, fields)
        except OSError:
            raise _HTTPError(500, "Cannot connect to UFTPD server") from None
        if not reply.startswith("OK::"):
            raise _HTTPError(500, f"UFTPD server '{self.server_name}': {reply}")
        port = int(reply[4:].strip())
        log.info("created UFTP session for '%s' (persistent=%s, streams=%d) on port %d",
                 user, persistent, streams, port)
        host = self.server_host or self.uftpd.advertise_host or self.uftpd.host
        if host in ("", "*"):
            host = "127.0.0.1"
        return {"success": True, "reason": "", "serverHost": host, "serverPort": port, "secret": secret}


class _AuthHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 request handler; ``auth`` is set on a per-server subclass."""

    auth: AuthServer
    protocol_version = "HTTP/1.1"
    server_version = "UNICORE-AuthServer-Test/1.0"
    timeout = 60

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s - %s", self.client_address[0], format % args)

    # -- plumbing ------------------------------------------------------------------------
    def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _send_json(self, status: int, document: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(document).encode("utf-8"), "application/json;charset=UTF-8", headers)

    def _send_error(self, status: int, message: str) -> None:
        headers = {"WWW-Authenticate": 'Basic realm="UNICORE"'} if status == 401 else None
        self._send_json(status, {"errorMessage": message, "status": status}, headers)

    def _read_body(self) -> bytes:
        length = self.headers.get("Content-Length")
        if length is None:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                return self._read_chunked()
            return b""
        try:
            size = int(length)
        except ValueError:
            raise _HTTPError(400, "Invalid Content-Length") from None
        return self.rfile.read(size) if size > 0 else b""

    def _read_chunked(self) -> bytes:
        parts = []
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(parts)
            parts.append(self.rfile.read(size))
            self.rfile.readline()

    def _user(self, required: bool) -> str | None:
        """The authenticated user, ``None`` for anonymous; raises 401 for bad credentials."""
        header = self.headers.get("Authorization")
        if not header:
            if required:
                raise _HTTPError(401, "User not authenticated: no credentials were provided")
            return None
        scheme, _, value = header.partition(" ")
        scheme = scheme.lower()
        if scheme == "basic":
            try:
                decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                raise _HTTPError(401, "Malformed Basic authorization header") from None
            user, _, password = decoded.partition(":")
            if self.auth.check_password(user, password):
                return user
            raise _HTTPError(401, "Authentication failed: invalid username or password")
        if scheme == "bearer":
            user = self.auth.user_for_token(value.strip())
            if user is not None:
                return user
            raise _HTTPError(401, "Authentication failed: invalid or expired token")
        raise _HTTPError(401, f"Unsupported authorization scheme '{scheme}'")

    def _route(self) -> tuple[list[str], dict[str, list[str]]]:
        split = urlsplit(self.path)
        parts = [part for part in split.path.split("/") if part]
        return parts, parse_qs(split.query)

    def _handle(self, method: str) -> None:
        try:
            parts, query = self._route()
            if parts[:2] != ["rest", "auth"] or len(parts) > 3:
                raise _HTTPError(404, f"Not found: {urlsplit(self.path).path}")
            if method == "GET":
                self._get(parts, query)
            elif method == "POST":
                self._post(parts)
            else:
                raise _HTTPError(405, f"Method {method} not allowed")
        except _HTTPError as err:
            self._drain()
            self._send_error(err.status, err.message)
        except (TimeoutError, ConnectionError):
            self.close_connection = True
        except Exception as exc:  # never let a handler thread die silently
            log.exception("Auth request failed")
            self._send_error(500, f"Internal server error: {exc}")

    def _drain(self) -> None:
        """Consume an unread request body so the kept-alive connection stays in sync."""
        if getattr(self, "_body_read", False):
            return
        try:
            self._read_body()
        except Exception:  # noqa: BLE001 - any failure: just drop the connection
            self.close_connection = True

    def _get(self, parts: list[str], query: dict[str, list[str]]) -> None:
        if len(parts) == 2:
            self._send_json(200, self.auth.info_document(self._user(required=False)))
            return
        if parts[2] == "token":
            user = self._user(required=True)
            assert user is not None
            try:
                lifetime = float(query.get("lifetime", [DEFAULT_TOKEN_LIFETIME])[0])
            except ValueError:
                raise _HTTPError(400, "Invalid lifetime") from None
            token = self.auth.issue_token(user, lifetime)
            self._send(200, token.encode("ascii"), "text/plain")
            return
        self._check_server(parts[2])
        user = self._user(required=False)
        self._send_json(200, self.auth.info_document(user)[self.auth.server_name])

    def _post(self, parts: list[str]) -> None:
        if len(parts) != 3:
            raise _HTTPError(405, "Method POST not allowed")
        user = self._user(required=True)
        assert user is not None
        self._check_server(parts[2])
        raw = self._read_body()
        self._body_read = True
        try:
            body = json.loads(raw.decode("utf-8") or "{}")
        except (ValueError, UnicodeDecodeError) as exc:
            raise _HTTPError(400, f"Invalid JSON: {exc}") from None
        if not isinstance(body, dict):
            raise _HTTPError(400, "Invalid request: JSON object expected")
        self._send_json(200, self.auth.create_session(user, body, self.client_address[0]))

    def _check_server(self, name: str) -> None:
        if name not in (self.auth.server_name, f"{self.auth.server_name}-1"):
            raise _HTTPError(404, f"No such server: '{name}', please check your URL")

    def do_GET(self) -> None:
        self._body_read = False
        self._handle("GET")

    def do_POST(self) -> None:
        self._body_read = False
        self._handle("POST")

    def do_PUT(self) -> None:
        self._body_read = False
        self._handle("PUT")

    def do_DELETE(self) -> None:
        self._body_read = False
        self._handle("DELETE")
