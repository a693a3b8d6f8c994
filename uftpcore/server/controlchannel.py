"""The FTP control connection as uftpd speaks it (spec §3.1).

Reads: text lines of at most 8192 characters, UTF-8, universal newlines (``\\r\\n``, ``\\n``
and bare ``\\r`` all end a line), stripped.  Writes: ``\\n``-terminated replies only.
Multi-line replies are sent with one ``sendall`` (same bytes, fewer segments); together
with ``TCP_NODELAY`` that keeps the per-command latency at one round trip.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterable

from .dataconn import configure_socket
from .datapath import close_socket

log = logging.getLogger(__name__)

#: uftpd reads lines with ``readline(8192)``; longer lines arrive as several "lines"
MAX_LINE = 8192


class ControlClosed(EOFError):
    """The client closed the control connection."""


class ControlChannel:
    """Line I/O on one accepted control socket."""

    def __init__(self, sock: socket.socket):
        configure_socket(sock)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        self.sock = sock
        self._reader = sock.makefile("r", encoding="utf-8", newline=None)
        self.peer_ip: str = sock.getpeername()[0]
        self.local_ip: str = sock.getsockname()[0]
        self.family = sock.family
        self.closed = False

    def read_line(self) -> str:
        """Next line, stripped; raises :class:`ControlClosed` at EOF."""
        line = self._reader.readline(MAX_LINE)
        if not line:
            raise ControlClosed("Socket closed")
        return line.strip()

    def reply(self, text: str) -> None:
        """Send one reply line (``\\n`` appended)."""
        self.sock.sendall((text + "\n").encode("utf-8"))

    def reply_lines(self, lines: Iterable[str]) -> None:
        """Send several lines in one write (multi-line replies)."""
        self.sock.sendall("".join(line + "\n" for line in lines).encode("utf-8"))

    def abort(self) -> None:
        """Wake the session thread from another thread (server stop); it cleans up itself."""
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def close(self) -> None:
        """Shut down and close (wakes a thread blocked in ``read_line``)."""
        if self.closed:
            return
        self.closed = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            self._reader.close()
        except OSError:
            pass
        close_socket(self.sock)
