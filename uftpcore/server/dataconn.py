"""Passive data-connection listeners of a session (spec §4.1).

One listener per PASV/EPSV, bound to the server-side address of the control connection
(or ``advertise_host``), ephemeral port or a random start inside ``port_range``; one
blocking ``accept`` with a timeout; the peer must have the control connection's IP.
"""

from __future__ import annotations

import random
import socket
import sys

from .errors import SessionEnd


def configure_socket(sock: socket.socket) -> None:
    """TCP keep-alive as uftpd sets it (idle 5 s, interval 1 s, 3 probes) and blocking mode."""
    sock.settimeout(None)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        if sys.platform.startswith("linux"):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 5)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 1)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 3)
    except OSError:
        pass


def _create_listener(host: str, port: int, family: int) -> socket.socket:
    if family == socket.AF_INET6:
        return socket.create_server(
            (host, port), family=socket.AF_INET6, dualstack_ipv6=socket.has_dualstack_ipv6(), backlog=2
        )
    return socket.create_server((host, port), family=socket.AF_INET, backlog=2)


def open_listener(
    host: str, family: int, timeout: float, port_range: tuple[int, int] | None = None
) -> socket.socket:
    """Bind a data listener; with a port range start at a random port and probe linearly."""
    if port_range is None:
        listener = _create_listener(host, 0, family)
    else:
        lower, upper = port_range
        port = lower + random.randint(0, upper - lower)
        for _ in range(upper - lower + 1):
            try:
                listener = _create_listener(host, port, family)
                break
            except OSError:
                port = lower if port >= upper else port + 1
        else:
            raise OSError(f"Cannot set up data connection - no free ports in range {lower}:{upper}")
    listener.settimeout(timeout)
    return listener


def accept_data(listener: socket.socket, expected_ip: str) -> socket.socket:
    """Wait for the client's data connection.

    A timeout or a connection from another IP ends the whole session without a reply
    (spec §4.1, quirk 15); that is signalled with :class:`SessionEnd`.
    """
    try:
        conn, address = listener.accept()
    except OSError as exc:  # socket.timeout is an OSError
        raise SessionEnd(f"{exc!r} waiting for client to set up data connection") from exc
    if address[0] != expected_ip:
        conn.close()
        raise SessionEnd(f"rejecting data connection from unexpected host {address[0]}, expected {expected_ip}")
    configure_socket(conn)
    return conn
