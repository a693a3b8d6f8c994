"""The uftpd command port (spec §2): how an Auth server registers jobs.

Server side: one request per connection — ``key=value`` lines until a line *starting
with* ``END``, one reply, ``shutdown(SHUT_RDWR)``.  Request types: transfer (``OK::<port>``
/ ``ERROR::<msg>``), ping (``key: value`` lines plus an empty line) and get-user-info.
Unlike uftpd (one request at a time, no timeout) every connection is served by its own
thread with a read timeout, so a stuck requester cannot block the port; the registry lock
keeps the job bookkeeping atomic.

Client side: :func:`send_request` is what the Auth endpoint (and tests) use to talk to it.
"""

from __future__ import annotations

import logging
import os
import pwd
import socket
from collections.abc import Iterable
from typing import TYPE_CHECKING

from .datapath import close_socket
from .jobs import parse_request

if TYPE_CHECKING:
    from .uftpd import UFTPD

log = logging.getLogger(__name__)

#: seconds a requester may take to send its request (uftpd: unlimited)
READ_TIMEOUT = 60.0


def handle_connection(sock: socket.socket, server: UFTPD) -> None:
    """Serve one command-port connection completely (runs in its own thread)."""
    try:
        sock.settimeout(READ_TIMEOUT)
        reader = sock.makefile("r", encoding="utf-8", errors="replace", newline=None)
        lines: list[str] = []
        while True:
            line = reader.readline(8192)
            if not line:
                log.debug("command connection closed before END; no reply")
                return
            if line.startswith("END"):
                break
            lines.append(line.strip())
        reader.close()
        request = parse_request(lines)
        reply = dispatch(request, server)
        sock.sendall((reply + "\n").encode("utf-8"))
    except OSError as exc:
        log.warning("error on command connection: %s", exc)
    finally:
        close_socket(sock)


def dispatch(request: dict[str, str], server: UFTPD) -> str:
    """Compute the reply text (without the final ``\\n`` that the writer appends)."""
    request_type = request.get("request-type", "n/a")
    log.debug("command port request '%s' for user '%s'", request_type, request.get("user", "n/a"))
    if request_type == "uftp-transfer-request":
        try:
            server.registry.add(request)
        except Exception as exc:  # noqa: BLE001 - KeyError('user') -> "ERROR::'user'", as uftpd
            return f"ERROR::{exc}"
        return f"OK::{server.port}"
    if request_type == "uftp-ping-request":
        return ping_reply(server)
    if request_type == "uftp-get-user-info-request":
        return user_info_reply(request, server)
    return f"ERROR::Unsupported request type '{request_type}'"


def ping_reply(server: UFTPD) -> str:
    """``Version/ListenPort/ListenAddress/MaxSessionsPerClient`` (+ ``AdvertiseAddress``).

    The text ends with ``\\n`` and the writer adds another one, hence uftpd's empty last line.
    """
    text = (
        f"Version: {server.version}\n"
        f"ListenPort: {server.port}\n"
        f"ListenAddress: {server.host}\n"
        f"MaxSessionsPerClient: {server.max_connections}\n"
    )
    if server.advertise_host is not None:
        text += f"AdvertiseAddress: {server.advertise_host}"
    return text


def user_info_reply(request: dict[str, str], server: UFTPD) -> str:
    """Home directory and accepted SSH keys of a user (§2.5)."""
    user = request["user"].strip() if "user" in request else ""
    if user == "root":
        return "500 Not allowed"
    home = server.home_dirs.get(user)
    if home is None:
        try:
            home = pwd.getpwnam(user).pw_dir
        except KeyError:
            home = None
    if not home or not os.path.isdir(home):
        return "500 No such user or no home directory found"
    text = f"Version: {server.version}\nUser: {user}\nHome: {home}\n"
    status = ""
    index = 0
    for keyfile in server.keyfiles:
        path = os.path.join(home, keyfile)
        try:
            with open(path, "r", encoding="utf-8", errors="replace") as handle:
                status += f" keyfile {path} : OK"
                for line in handle:
                    if line.startswith("#"):
                        continue
                    text += f"Accepted key {index}: {line.strip()}\n"
                    index += 1
        except OSError as exc:
            status += f" keyfile {path} : {exc}"
    text += f"Status:{status}\n"
    return text


def send_request(
    host: str, port: int, fields: Iterable[tuple[str, str]], timeout: float = 30.0
) -> str:
    """Send one request to a command port and return the reply (read until EOF, stripped).

    ``fields`` are written in order as ``key=value`` lines, followed by ``END``; this is
    exactly what the Java requester of the Auth server writes.
    """
    payload = "".join(f"{key}={value}\n" for key, value in fields) + "END\n"
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(payload.encode("utf-8"))
        chunks = []
        while True:
            data = sock.recv(65536)
            if not data:
                break
            chunks.append(data)
    return b"".join(chunks).decode("utf-8").strip()


def ping(host: str, port: int, timeout: float = 10.0) -> dict[str, str] | None:
    """Ping a command port; the ``key: value`` pairs, or ``None`` if it is unreachable."""
    try:
        reply = send_request(host, port, [("request-type", "uftp-ping-request")], timeout)
    except OSError:
        return None
    info: dict[str, str] = {}
    for line in reply.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            info[key.strip()] = value.strip()
    return info
