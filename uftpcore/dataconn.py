"""Opening passive data connections (spec §4.1).

uftpd accepts a data connection only from the *same IP address* as the control connection
(string compare) and blocks in ``accept`` after each EPSV/PASV without reading the control
channel, so connections are opened strictly one after the other, each from the control
socket's local address to the control socket's peer address (EPSV semantics; like ftplib we
ignore the host in a PASV reply).
"""

from __future__ import annotations

import re
import socket

from .control import ControlConnection
from .errors import ProtocolError, ReplyError, UFTPTimeoutError

_EPSV_RE = re.compile(r"\(\s*(.)\1\1(\d+)\1\s*\)")
_PASV_RE = re.compile(r"\((?:[^,()]*,)*?(\d+),(\d+)\)\s*$")
_NOOP_RE = re.compile(r"(?:Opening\s+)?(\d+)")


def parse_epsv(text: str) -> int:
    """``Entering Extended Passive Mode (|||34199|)`` -> 34199."""
    m = _EPSV_RE.search(text)
    if not m:
        raise ProtocolError(f"cannot parse EPSV reply {text!r}")
    return int(m.group(2))


def parse_pasv(text: str) -> int:
    """``Entering Passive Mode (127,0,0,1,168,11)`` -> 43019 (the host part is ignored)."""
    m = _PASV_RE.search(text.strip())
    if not m:
        raise ProtocolError(f"cannot parse PASV reply {text!r}")
    hi, lo = int(m.group(1)), int(m.group(2))
    if hi > 255 or lo > 255:
        raise ProtocolError(f"bad port in PASV reply {text!r}")
    return hi * 256 + lo


def parse_stream_count(text: str) -> int:
    """``Opening 2 data connections`` -> 2 (the number the server will really use)."""
    m = re.search(r"(\d+)", text)
    if not m:
        raise ProtocolError(f"cannot parse NOOP reply {text!r}")
    return int(m.group(1))


def connect_data(ctrl: ControlConnection, port: int, timeout: float) -> socket.socket:
    """Connect one data socket from the control connection's local address."""
    sock = socket.socket(ctrl.family, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.bind((ctrl.local_address, 0))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        sock.connect((ctrl.peer_address, port))
    except socket.timeout as exc:
        sock.close()
        raise UFTPTimeoutError(f"data connection to port {port} timed out after {timeout} s") from exc
    except OSError:
        sock.close()
        raise
    return sock


def open_passive(ctrl: ControlConnection, count: int, timeout: float, use_epsv: bool = True) -> list[socket.socket]:
    """Send ``count`` EPSV (or PASV) commands, connecting after each reply."""
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            if use_epsv:
                try:
                    reply = ctrl.command("EPSV", (229,))
                    port = parse_epsv(reply.text)
                except ReplyError as exc:
                    if exc.code not in (500, 501, 502):
                        raise
                    use_epsv = False
            if not use_epsv:
                reply = ctrl.command("PASV", (227,))
                port = parse_pasv(reply.text)
            socks.append(connect_data(ctrl, port, timeout))
    except BaseException:
        for s in socks:
            s.close()
        raise
    return socks
