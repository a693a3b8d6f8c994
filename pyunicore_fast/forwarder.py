"""Port forwarding to a service next to a UNICORE job (``pyunicore.forwarder`` API).

The client sends ``GET <job>/forward-port?port=P`` with ``Upgrade: UNICORE-Socket-Forwarding``
on a raw (TLS) socket; after ``101 Switching Protocols`` the socket carries the service's
bytes.  Differences from PyUNICORE, all in the direction of "works as the docs say":

* the handshake reply is read byte by byte, so service bytes that arrive right after the
  101 are not swallowed by a read-ahead buffer;
* when one side reaches EOF the other side is half-closed, so the peer sees the end;
* ``file=`` carries the UNIX socket file (PyUNICORE put the login node there);
* TLS verification follows ``transport.verify`` (PyUNICORE never verified);
* ``run()`` listens on 127.0.0.1 unless ``listen_host`` says otherwise (PyUNICORE listened on
  all interfaces, exposing the tunnel to the network);
* diagnostics go to :mod:`logging` (``debug=True`` raises them to INFO), never ``print``.

Security sessions must be off for forwarding; the helpers here ensure that.
"""

from __future__ import annotations

import argparse
import logging
import socket
import ssl
import threading
from typing import Any
from urllib.parse import ParseResult, urlparse

from pyunicore_fast.client import Transport, _to_transport
from pyunicore_fast.credentials import create_credential

log = logging.getLogger(__name__)

_BUFFER = 256 * 1024
_MAX_HEADER = 64 * 1024


class Forwarder:
    """Connects local clients to a service on the HPC side through UNICORE."""

    def __init__(self, transport: Any, endpoint: str, service_port: int | None = None,
                 service_host: str | None = None, login_node: str | None = None,
                 unix_socketfile: str | None = None, debug: bool = False):
        self.endpoint = endpoint
        self.parsed_url = _parse_forwarding_params(endpoint, service_port, service_host, login_node,
                                                   unix_socketfile)
        self.transport = transport if isinstance(transport, Transport) else _to_transport(transport)
        self.quiet = not debug
        self.local_port = 0
        self.service_socket: socket.socket | None = None
        self.client_socket: socket.socket | None = None
        self._server: socket.socket | None = None
        self._threads: list[threading.Thread] = []

    def _log(self, msg: str, *args: Any) -> None:
        log.log(logging.DEBUG if self.quiet else logging.INFO, msg, *args)

    # -- connecting ---------------------------------------------------------------------------
    def create_socket(self) -> socket.socket:
        """A TCP (for https: TLS) connection to the UNICORE server of the endpoint."""
        url = self.parsed_url
        https = url.scheme.lower() == "https"
        host = url.hostname or "localhost"
        port = url.port or (443 if https else 80)
        timeout = self.transport.timeout if isinstance(self.transport.timeout, (int, float)) else None
        self._log("Connecting to %s:%s", host, port)
        sock = socket.create_connection((host, port), timeout=timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if https:
            verify = self.transport.verify
            if verify is False:
                context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            else:
                context = ssl.create_default_context(cafile=verify if isinstance(verify, str) else None)
            sock = context.wrap_socket(sock, server_hostname=host)
        return sock

    def connect(self) -> socket.socket:
        """Perform the Upgrade handshake; returns the socket connected to the service."""
        sock = self.create_socket()
        url = self.parsed_url
        target = url.path + (f"?{url.query}" if url.query else "")
        headers = self.transport._headers({})
        headers.pop("X-UNICORE-SecuritySession", None)
        lines = [f"GET {target} HTTP/1.1", f"Host: {url.netloc}", "Connection: Upgrade",
                 "Upgrade: UNICORE-Socket-Forwarding"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        for line in lines:
            self._log("<-- %s", "Authorization: ***" if line.startswith("Authorization") else line)
        try:
            sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("utf-8"))
            status_line, reply_headers = _read_reply_head(sock)
        except BaseException:
            sock.close()
            raise
        self._log("--> %s", status_line)
        parts = status_line.split(" ", 2)
        code = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else -1
        if code != 101:
            sock.close()
            raise ValueError(f"Backend returned HTTP {code}, could not handle UNICORE-Socket-Forwarding"
                             f"{': ' + reply_headers.get('x-error', '') if reply_headers.get('x-error') else ''}")
        sock.settimeout(None)
        self._log("Connected to backend service.")
        return sock

    # -- forwarding ---------------------------------------------------------------------------------
    def start_forwarding(self) -> None:
        """Two threads copy client -> service and service -> client."""
        assert self.client_socket is not None and self.service_socket is not None
        self._start_pair(self.client_socket, self.service_socket)

    def _start_pair(self, client: socket.socket, service: socket.socket) -> None:
        self._log("Start forwarding.")
        pair = [client, service]
        done = threading.Barrier(2, action=lambda: _close_all(pair))
        for src, dst, name in ((client, service, "client->service"), (service, client, "service->client")):
            t = threading.Thread(target=self._pump, args=(src, dst, name, done), daemon=True,
                                 name=f"unicore-forward-{name}")
            t.start()
            self._threads.append(t)

    def _pump(self, source: socket.socket, destination: socket.socket, name: str, done: threading.Barrier) -> None:
        try:
            self.transfer(source, destination, name)
        finally:
            try:
                done.wait(timeout=3600)
            except threading.BrokenBarrierError:
                _close_all([source, destination])

    def stop_forwarding(self) -> None:
        """Close both sockets (and the listener of ``run(keep_alive=True)``)."""
        server = self._server
        if server is not None:
            try:
                server.shutdown(socket.SHUT_RDWR)  # wakes a thread blocked in accept(); close() does not
            except OSError:
                pass
        _close_all([s for s in (self.client_socket, self.service_socket, server) if s is not None])

    def transfer(self, source: socket.socket, destination: socket.socket, name: str = "") -> None:
        """Copy until EOF or error; on EOF half-close the destination so the peer sees it."""
        buf = bytearray(_BUFFER)
        view = memoryview(buf)
        self._log("Start TCP forwarding %s", name)
        try:
            while True:
                n = source.recv_into(view)
                if n == 0:
                    self._log("Source is at EOF for %s", name)
                    try:
                        # TCP half-close under the TLS layer: SSLSocket.shutdown() would drop the
                        # TLS state and later reads would return raw TLS records
                        socket.socket.shutdown(destination, socket.SHUT_WR)
                    except OSError:
                        pass
                    break
                destination.sendall(view[:n])
        except OSError as exc:
            self._log("I/O error for %s: %s", name, exc)
            _close_all([source, destination])
        self._log("Stopping TCP forwarding %s", name)

    def run(self, local_port: int, keep_alive: bool = False, listen_host: str = "127.0.0.1") -> None:
        """Listen on ``listen_host:local_port`` (0 = any free port, see ``local_port``), connect
        each client to the service.  Returns after the first client unless ``keep_alive``."""
        with socket.socket(socket.AF_INET6 if ":" in listen_host else socket.AF_INET) as server:
            self._server = server
            server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            server.bind((listen_host, local_port))
            self.local_port = server.getsockname()[1]
            log.info("Listening on %s:%d", listen_host or "*", self.local_port)
            server.listen(8)
            while True:
                self._log("Waiting for client connection.")
                try:
                    client, addr = server.accept()
                except OSError:
                    return  # stop_forwarding() closed the listener
                self._log("Client %s connected.", addr)
                try:
                    service = self.connect()
                except Exception:
                    client.close()
                    if not keep_alive:
                        raise
                    log.exception("forwarding for %s failed", addr)
                    continue
                self.client_socket, self.service_socket = client, service
                self._start_pair(client, service)
                if not keep_alive:
                    return


def _close_all(sockets: list[socket.socket]) -> None:
    for s in sockets:
        try:
            s.close()
        except OSError:
            pass


def _read_reply_head(sock: socket.socket) -> tuple[str, dict[str, str]]:
    """Read the status line and headers up to the blank line, never past it."""
    data = bytearray()
    while not data.endswith(b"\r\n\r\n") and not data.endswith(b"\n\n"):
        b = sock.recv(1)
        if not b:
            raise ConnectionError("server closed the connection during the forwarding handshake")
        data += b
        if len(data) > _MAX_HEADER:
            raise ValueError("forwarding handshake reply too long")
    lines = data.decode("iso-8859-1").splitlines()
    headers = {}
    for line in lines[1:]:
        key, sep, value = line.partition(":")
        if sep:
            headers[key.strip().lower()] = value.strip()
    return lines[0] if lines else "", headers


def _parse_forwarding_params(endpoint: str, service_port: int | None = None, service_host: str | None = None,
                             login_node: str | None = None, unix_socketfile: str | None = None) -> ParseResult:
    """The endpoint URL with ``port``/``host``/``loginNode``/``file`` added unless present."""
    parsed_url = urlparse(endpoint)
    query = [q for q in parsed_url.query.split("&") if q]
    present = {q.split("=", 1)[0] for q in query}

    def add(key: str, value: Any) -> None:
        if value is not None and key not in present:
            query.append(f"{key}={value}")
            present.add(key)

    add("port", service_port)
    add("host", service_host)
    add("loginNode", login_node)
    add("file", unix_socketfile)
    if "port" in present and "file" in present:
        raise ValueError("Cannot forward to both a port and a UNIX socket file")
    return parsed_url._replace(query="&".join(query))


def _forwarding_transport(security: Any) -> Transport:
    tr = _to_transport(security)
    tr.use_security_sessions = False
    tr.last_session_id = None
    return tr


def open_tunnel(job: Any, service_port: int | None = None, service_host: str | None = None,
                login_node: str | None = None, unix_socketfile: str | None = None,
                debug: bool = False) -> socket.socket:
    """A socket connected to a service running next to ``job`` (uses its ``forwarding`` link)."""
    endpoint = job.links["forwarding"]
    forwarder = Forwarder(_forwarding_transport(job.transport), endpoint, service_port, service_host, login_node,
                          unix_socketfile, debug)
    return forwarder.connect()


def run_forwarder(tr: Any, local_port: int, endpoint: str, debug: bool = False, keep_alive: bool = False,
                  listen_host: str = "127.0.0.1") -> Forwarder:
    """Listen on ``local_port`` and connect clients to ``endpoint``; returns the Forwarder."""
    forwarder = Forwarder(_forwarding_transport(tr), endpoint, debug=debug)
    forwarder.run(local_port, keep_alive=keep_alive, listen_host=listen_host)
    return forwarder


def main(argv: list[str] | None = None) -> None:
    """``unicore-port-forwarder -L PORT [auth options] ENDPOINT``."""
    parser = argparse.ArgumentParser(prog="unicore-port-forwarder",
                                     description="Forward a local port to a service next to a UNICORE job")
    parser.add_argument("endpoint", help="Full UNICORE REST API endpoint for forwarding")
    parser.add_argument("-L", "--listen", required=True, help="local port to listen on (0 = any)")
    parser.add_argument("-H", "--listen-host", default="127.0.0.1",
                        help="local address to listen on (default 127.0.0.1; '' = all interfaces)")
    parser.add_argument("-k", "--keep-alive", action="store_true", help="serve more than one client")
    parser.add_argument("-d", "--debug", action="store_true", help="print debug info")
    parser.add_argument("-t", "--token", help="Authentication: token")
    parser.add_argument("-u", "--username", help="Authentication: username")
    parser.add_argument("-p", "--password", nargs="?", const="__ASK__",
                        help="Authentication: password (leave empty to enter interactively)")
    parser.add_argument("-i", "--identity", help="Authentication: private key file")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.debug else logging.WARNING, format="%(message)s")
    password = args.password
    if password == "__ASK__":
        import getpass

        password = getpass.getpass("Enter password:")
    credential = create_credential(args.username, password, args.token, args.identity)
    tr = Transport(credential, use_security_sessions=False)
    forwarder = Forwarder(tr, args.endpoint, debug=args.debug)
    forwarder.run(int(args.listen), keep_alive=args.keep_alive, listen_host=args.listen_host)
    for t in forwarder._threads:
        t.join()


if __name__ == "__main__":
    main()
