"""HTTP plumbing of the emulator: request/response objects, a regex router and the server.

Standard library only (``http.server``), so the emulator runs wherever the tests run.  The
server speaks HTTP/1.1 with keep-alive (clients with connection pools must see the same
behaviour as against a real gateway), accepts ``Content-Length`` and chunked request
bodies, streams file downloads, and can hand a raw socket to a handler after a
``101 Switching Protocols`` (UNICORE port forwarding).  With TLS the handshake is done in
the worker thread, never in the accept loop, so one slow client cannot stall the others.
"""

from __future__ import annotations

import json
import logging
import re
import socket
import ssl
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, BinaryIO
from urllib.parse import parse_qs, urlsplit

log = logging.getLogger(__name__)

#: Reason phrases for codes the standard library does not know.
_EXTRA_REASONS = {432: "Invalid security session"}

_CHUNK = 1 << 20


class HTTPError(Exception):
    """An error reply.  ``message=None`` means an empty body (404/403/432 as upstream)."""

    def __init__(self, status: int, message: str | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(message or str(status))
        self.status = status
        self.message = message
        self.headers = headers or {}

    def to_response(self) -> Response:
        if self.message is None:
            resp = Response(self.status)
        else:
            resp = Response.json({"errorMessage": self.message, "status": self.status}, self.status)
        resp.headers.update(self.headers)
        return resp


@dataclass
class FileBody:
    """A byte range of a local file, streamed without loading it into memory."""

    path: str
    offset: int
    length: int


UpgradeHandler = Callable[[socket.socket, bytes], None]


@dataclass
class Response:
    """What a route handler returns.  ``body`` is bytes, a :class:`FileBody` or an iterator."""

    status: int = 200
    body: bytes | FileBody | Iterable[bytes] = b""
    headers: dict[str, str] = field(default_factory=dict)
    #: set for ``101``: called with the raw connection and any bytes the client already
    #: sent behind the request (read into the request buffer) once the headers are out.
    upgrade: UpgradeHandler | None = None

    @classmethod
    def json(cls, obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
        data = json.dumps(obj, indent=1).encode("utf-8")
        h = {"Content-Type": "application/json"}
        h.update(headers or {})
        return cls(status, data, h)

    @classmethod
    def text(cls, text: str, status: int = 200, content_type: str = "text/plain") -> Response:
        return cls(status, text.encode("utf-8"), {"Content-Type": f"{content_type}; charset=UTF-8"})

    @classmethod
    def created(cls, location: str, obj: Any | None = None) -> Response:
        """``201 Created`` with the absolute ``Location`` every client relies on."""
        if obj is None:
            return cls(201, b"", {"Location": location})
        return cls.json(obj, 201, {"Location": location})

    @classmethod
    def no_content(cls) -> Response:
        return cls(204)


class Request:
    """One parsed request, plus whatever the authentication layer attached (``identity``)."""

    def __init__(self, handler: BaseHTTPRequestHandler, server_url: str):
        self._handler = handler
        self.method: str = handler.command
        parts = urlsplit(handler.path)
        self.raw_path: str = parts.path
        self.query: dict[str, list[str]] = parse_qs(parts.query, keep_blank_values=True)
        self.headers = handler.headers
        self.client_ip: str = handler.client_address[0]
        self.server_url = server_url
        self.identity: Any = None
        self.reply_headers: dict[str, str] = {}
        self._body_consumed = False
        self._remaining: int | None = None
        self._chunked = "chunked" in (self.headers.get("Transfer-Encoding") or "").lower()
        if not self._chunked:
            try:
                self._remaining = int(self.headers.get("Content-Length") or 0)
            except ValueError as exc:
                raise HTTPError(400, "Invalid Content-Length") from exc

    @property
    def url(self) -> str:
        return self.server_url + self._handler.path

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name, default)

    def query_value(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    @property
    def content_type(self) -> str:
        return (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()

    def accepts(self, media: str) -> bool:
        """True if ``Accept`` lists ``media`` before ``application/json`` (or alone)."""
        accept = (self.headers.get("Accept") or "").lower()
        items = [a.split(";")[0].strip() for a in accept.split(",") if a.strip()]
        if media not in items:
            return False
        if "application/json" in items:
            return items.index(media) < items.index("application/json")
        return True

    # -- body ---------------------------------------------------------------------------
    def iter_body(self, chunk_size: int = _CHUNK) -> Iterator[bytes]:
        """Stream the request body (Content-Length or chunked), exactly once."""
        if self._body_consumed:
            return
        self._body_consumed = True
        rfile: BinaryIO = self._handler.rfile
        if self._chunked:
            while True:
                line = rfile.readline(65537)
                if not line:
                    raise HTTPError(400, "Truncated chunked body")
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while True:  # trailers
                        trailer = rfile.readline(65537)
                        if trailer in (b"\r\n", b"\n", b""):
                            break
                    return
                while size > 0:
                    data = rfile.read(min(size, chunk_size))
                    if not data:
                        raise HTTPError(400, "Truncated chunked body")
                    size -= len(data)
                    yield data
                rfile.readline(3)
        else:
            remaining = self._remaining or 0
            while remaining > 0:
                data = rfile.read(min(remaining, chunk_size))
                if not data:
                    raise HTTPError(400, "Truncated request body")
                remaining -= len(data)
                self._remaining = remaining
                yield data

    def body(self) -> bytes:
        return b"".join(self.iter_body())

    def json(self, default: Any = None) -> Any:
        """The body as JSON; an empty body gives ``default``; bad JSON is a 400."""
        data = self.body()
        if not data.strip():
            return default
        try:
            return json.loads(data)
        except ValueError as exc:
            raise HTTPError(400, f"Could not parse JSON request body: {exc}") from exc

    def drain(self, limit: int = 16 << 20) -> bool:
        """Discard an unread body so the connection can be reused; False if too large."""
        if self._body_consumed:
            return True
        if not self._chunked and (self._remaining or 0) > limit:
            return False
        for _ in self.iter_body():
            pass
        return True


Handler = Callable[..., Response]


@dataclass
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler
    #: anonymous callers may use this route (otherwise 403, as the access-control layer does).
    anonymous: bool = False
    #: skip authentication entirely (e.g. the BFT data URLs check their own secret).
    public: bool = False


class Router:
    """Maps ``(method, path regex)`` to handlers; the first match wins."""

    def __init__(self) -> None:
        self.routes: list[Route] = []

    def add(self, method: str, pattern: str, handler: Handler, *, anonymous: bool = False,
            public: bool = False) -> None:
        self.routes.append(Route(method.upper(), re.compile("^" + pattern + "$"), handler,
                                 anonymous, public))

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]]:
        """Find the route; 404 if no path matches, 405 if only the method is wrong."""
        path_matched = False
        for route in self.routes:
            m = route.pattern.match(path)
            if not m:
                continue
            path_matched = True
            if route.method == method or (method == "HEAD" and route.method == "GET"):
                return route, m.groupdict()
        if path_matched:
            raise HTTPError(405, f"Method {method} not allowed")
        raise HTTPError(404)


class _RequestHandler(BaseHTTPRequestHandler):
    """Turns ``http.server`` callbacks into ``Request`` → app → ``Response``."""

    protocol_version = "HTTP/1.1"
    #: headers and body go out in separate writes: without TCP_NODELAY a keep-alive client
    #: would wait ~40 ms per request (Nagle meets delayed ACK)
    disable_nagle_algorithm = True
    server_version = "UNICORE-Emulator"
    sys_version = ""
    timeout = 300
    server: EmbeddedHTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s - %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = do_GET

    def _dispatch(self) -> None:
        app = self.server.app
        req: Request | None = None
        try:
            req = Request(self, self.server.url)
            resp = app(req)
        except HTTPError as err:
            resp = err.to_response()
        except Exception as exc:
            log.exception("internal error handling %s %s", self.command, self.path)
            resp = HTTPError(500, f"Internal error: {exc}").to_response()
        if req is not None:
            for k, v in req.reply_headers.items():
                resp.headers.setdefault(k, v)
            try:
                if not req.drain():
                    self.close_connection = True
            except Exception:  # noqa: BLE001 - a broken body only ends this connection
                self.close_connection = True
        else:
            self.close_connection = True
        self._write(resp)

    def _write(self, resp: Response) -> None:
        status = resp.status
        reason = _EXTRA_REASONS.get(status)
        if reason is None:
            try:
                reason = HTTPStatus(status).phrase
            except ValueError:
                reason = ""
        self.send_response_only(status, reason)
        self.send_header("Date", self.date_time_string())
        for k, v in resp.headers.items():
            self.send_header(k, v)
        if resp.upgrade is not None:
            self.send_header("Connection", "Upgrade")
            self.end_headers()
            self.wfile.flush()
            self.close_connection = True
            resp.upgrade(self.connection, self._buffered_input())
            return
        body = resp.body
        if status in (204, 304) or 100 <= status < 200:
            self.end_headers()
            return
        if isinstance(body, (bytes, bytearray)):
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
        elif isinstance(body, FileBody):
            self.send_header("Content-Length", str(body.length))
            self.end_headers()
            if self.command != "HEAD":
                self._send_file(body)
        else:
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            if self.command != "HEAD":
                for chunk in body:
                    if chunk:
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.write(b"0\r\n\r\n")

    def _buffered_input(self) -> bytes:
        """Bytes already sitting in ``rfile``'s buffer, without blocking for more."""
        conn = self.connection
        try:
            conn.setblocking(False)
            return self.rfile.read1(1 << 16) or b""  # type: ignore[attr-defined]
        except (OSError, ValueError):
            return b""
        finally:
            try:
                conn.setblocking(True)
            except OSError:
                pass

    def _send_file(self, body: FileBody) -> None:
        with open(body.path, "rb") as f:
            f.seek(body.offset)
            remaining = body.length
            while remaining > 0:
                data = f.read(min(remaining, _CHUNK))
                if not data:  # file shrank under us: the client sees a short body
                    self.close_connection = True
                    break
                self.wfile.write(data)
                remaining -= len(data)


class EmbeddedHTTPServer(ThreadingHTTPServer):
    """A threading HTTP(S) server on loopback that calls ``app(request) -> Response``."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, host: str, port: int, app: Callable[[Request], Response],
                 ssl_context: ssl.SSLContext | None = None):
        super().__init__((host, port), _RequestHandler)
        self.app = app
        self.ssl_context = ssl_context
        self._connections: set[socket.socket] = set()
        self._conn_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        scheme = "https" if ssl_context else "http"
        self.url = f"{scheme}://{host}:{self.server_address[1]}"

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def finish_request(self, request: Any, client_address: Any) -> None:
        """Runs in the worker thread: do the TLS handshake here, then serve."""
        if self.ssl_context is not None:
            request.settimeout(30)
            try:
                request = self.ssl_context.wrap_socket(request, server_side=True)
            except (OSError, ssl.SSLError) as exc:
                log.debug("TLS handshake with %s failed: %s", client_address, exc)
                return
            request.settimeout(None)
        with self._conn_lock:
            self._connections.add(request)
        try:
            super().finish_request(request, client_address)
        finally:
            with self._conn_lock:
                self._connections.discard(request)
            if self.ssl_context is not None:  # the plain socket was detached by wrap_socket
                try:
                    request.close()
                except OSError:
                    pass

    def start(self) -> None:
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.1},
                                        name=f"unicore-emulator-http-{self.port}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.shutdown()
        with self._conn_lock:
            conns = list(self._connections)
        for conn in conns:  # idle keep-alive connections would otherwise linger
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)


def relay(a: socket.socket, b: socket.socket, pending: bytes = b"", bufsize: int = 32 * 1024) -> None:
    """Copy bytes both ways until either side closes (port forwarding).

    ``pending`` are bytes from ``a`` that were already read (buffered behind the request
    headers); they go to ``b`` first.  When one direction ends both sockets are closed:
    TLS sockets cannot be half-closed without tearing down the TLS layer for the other
    direction, and the forwarding clients close both ends on EOF anyway.
    """
    done = threading.Event()

    def close_both() -> None:
        done.set()
        for s in (a, b):
            try:
                s.close()
            except OSError:
                pass

    def pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while not done.is_set():
                data = src.recv(bufsize)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            close_both()

    try:
        if pending:
            b.sendall(pending)
    except OSError:
        close_both()
        return
    t = threading.Thread(target=pump, args=(b, a), daemon=True)
    t.start()
    pump(a, b)
    t.join(timeout=5)
