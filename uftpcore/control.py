"""The FTP-dialect control connection to a UFTPD listen port (spec §3).

One object owns one TCP socket and speaks strictly request/reply.  Latency matters more than
anything here: uftpd writes multi-line replies in several small writes without TCP_NODELAY,
so a client that delays its ACKs waits ~40 ms per reply (Nagle meets delayed ACK).  We set
TCP_NODELAY and re-arm TCP_QUICKACK before every read, which brings a metadata round trip
well under a millisecond.
"""

from __future__ import annotations

import logging
import re
import socket
from dataclasses import dataclass, field

from .errors import (
    ConnectionClosedError,
    LoginError,
    NotFoundError,
    PermissionDeniedError,
    ProtocolError,
    ReplyError,
    UFTPTimeoutError,
)

log = logging.getLogger(__name__)

#: longest control line we accept; uftpd itself reads at most 8192 characters per line.
MAX_LINE = 1 << 20
_CODE_RE = re.compile(rb"^(\d{3})([ -]?)(.*)$", re.S)
_HAS_QUICKACK = hasattr(socket, "TCP_QUICKACK")


@dataclass
class Reply:
    """One (possibly multi-line) server reply."""

    code: int
    text: str
    #: content lines of a multi-line reply, without their leading space.
    lines: list[str] = field(default_factory=list)
    #: text of the first line of a multi-line reply (e.g. `` Listing /abs/path`` of MLST).
    header: str = ""

    @property
    def ok(self) -> bool:
        return self.code < 400


def reply_error(reply: Reply, verb: str | None) -> ReplyError:
    """The typed exception for an error reply."""
    if reply.code == 550:
        return NotFoundError(reply.code, reply.text, verb)
    if reply.code in (534, 530):
        return PermissionDeniedError(reply.code, reply.text, verb)
    return ReplyError(reply.code, reply.text, verb)


def tune_socket(sock: socket.socket) -> None:
    """Low-latency options for control sockets; keep-alive to notice dead peers."""
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    if _HAS_QUICKACK:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)


class ControlConnection:
    """Request/reply on a UFTPD control socket.

    Not thread-safe: one session = one conversation at a time, as the protocol demands
    (uftpd does not read the control channel during a transfer).
    """

    def __init__(self, sock: socket.socket, timeout: float):
        self.sock = sock
        self.timeout = timeout
        self._buf = bytearray()
        self._closed = False
        sock.settimeout(timeout)
        tune_socket(sock)

    # -- construction -------------------------------------------------------------------
    @classmethod
    def open(cls, host: str, port: int, timeout: float) -> ControlConnection:
        try:
            sock = socket.create_connection((host, port), timeout=timeout)
        except socket.timeout as exc:
            raise UFTPTimeoutError(f"connecting to {host}:{port} timed out after {timeout} s") from exc
        return cls(sock, timeout)

    @property
    def local_address(self) -> str:
        return self.sock.getsockname()[0]

    @property
    def peer_address(self) -> str:
        return self.sock.getpeername()[0]

    @property
    def family(self) -> int:
        return self.sock.family

    # -- lines --------------------------------------------------------------------------
    def _read_line(self) -> bytes:
        buf = self._buf
        while True:
            nl = buf.find(b"\n")
            if nl >= 0:
                line = bytes(buf[:nl])
                del buf[: nl + 1]
                return line[:-1] if line.endswith(b"\r") else line
            if len(buf) > MAX_LINE:
                raise ProtocolError(f"control line longer than {MAX_LINE} bytes")
            if _HAS_QUICKACK:
                try:
                    self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
                except OSError:
                    pass
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout as exc:
                raise UFTPTimeoutError(f"no reply from server within {self.timeout} s") from exc
            except OSError as exc:
                raise ConnectionClosedError(f"control connection failed: {exc}") from exc
            if not chunk:
                if buf:
                    raise ConnectionClosedError(f"server closed the control connection mid-line: {bytes(buf)[:200]!r}")
                raise ConnectionClosedError("server closed the control connection")
            buf += chunk

    def read_reply(self, skip_keepalive: bool = False) -> Reply:
        """Read one reply; multi-line replies end with a line ``NNN<SP>``.

        ``skip_keepalive`` ignores uftpd's bare ``213-`` lines sent during long HASH runs.
        """
        while True:
            first = self._read_line()
            if skip_keepalive and first.rstrip() == b"213-":
                continue
            break
        m = _CODE_RE.match(first)
        if not m:
            raise ProtocolError(f"garbled reply from server: {first[:200]!r}")
        code = int(m.group(1))
        sep = m.group(2)
        text = m.group(3).decode("utf-8", "replace").strip()
        if sep != b"-":
            return Reply(code, text)
        lines: list[str] = []
        end = m.group(1) + b" "
        while True:
            line = self._read_line()
            if line.startswith(end) or line == m.group(1):
                return Reply(code, line[4:].decode("utf-8", "replace").strip(), lines, text)
            if skip_keepalive and line.rstrip() == b"213-":
                continue
            if line.startswith(b" "):
                lines.append(line[1:].decode("utf-8", "replace"))
            elif _CODE_RE.match(line) and line[3:4] == b"-":
                continue  # a nested "NNN-" line; tolerated as RFC 959 allows
            else:
                lines.append(line.decode("utf-8", "replace"))

    def send_line(self, line: str, log_as: str | None = None) -> None:
        if self._closed:
            raise ConnectionClosedError("control connection is closed")
        if "\n" in line or "\r" in line:
            raise ValueError("control commands must not contain line breaks")
        log.debug("--> %s", log_as if log_as is not None else line)
        try:
            self.sock.sendall(line.encode("utf-8") + b"\r\n")
        except socket.timeout as exc:
            raise UFTPTimeoutError(f"sending a command timed out after {self.timeout} s") from exc
        except OSError as exc:
            raise ConnectionClosedError(f"control connection failed: {exc}") from exc

    # -- commands -----------------------------------------------------------------------
    def command(self, line: str, expect: tuple[int, ...] | None = None, *, log_as: str | None = None,
                skip_keepalive: bool = False) -> Reply:
        """Send one command and read its reply; raise a typed error unless the code is expected
        (default: any code below 400)."""
        verb = line.split(" ", 1)[0].upper()
        self.send_line(line, log_as)
        reply = self.read_reply(skip_keepalive)
        log.debug("<-- %d %s", reply.code, reply.text)
        if (expect is not None and reply.code not in expect) or (expect is None and not reply.ok):
            raise reply_error(reply, verb)
        return reply

    def pipeline(self, lines: list[str], expects: list[tuple[int, ...]]) -> list[Reply]:
        """Send several commands in one write, then read one reply each.

        Saves round trips where the server reads its commands strictly in order.  An
        unexpected reply to any but the last command leaves the later ones in an unknown state,
        so the connection is then closed before the typed error is raised.
        """
        for line in lines:
            if "\n" in line or "\r" in line:
                raise ValueError("control commands must not contain line breaks")
        if self._closed:
            raise ConnectionClosedError("control connection is closed")
        for line in lines:
            log.debug("--> %s", line)
        try:
            self.sock.sendall("".join(line + "\r\n" for line in lines).encode("utf-8"))
        except socket.timeout as exc:
            raise UFTPTimeoutError(f"sending commands timed out after {self.timeout} s") from exc
        except OSError as exc:
            raise ConnectionClosedError(f"control connection failed: {exc}") from exc
        replies = []
        for i, (line, expect) in enumerate(zip(lines, expects)):
            reply = self.read_reply()
            log.debug("<-- %d %s", reply.code, reply.text)
            if reply.code not in expect:
                if i < len(lines) - 1:  # the commands after it ran in an unknown state
                    self.close(send_quit=False)
                raise reply_error(reply, line.split(" ", 1)[0].upper())
            replies.append(reply)
        return replies

    def login(self, secret: str) -> Reply:
        """Greeting, ``USER anonymous``, ``PASS <secret>`` (spec §3.2); returns the greeting."""
        greeting = self.read_reply()
        if greeting.code != 220:
            raise ProtocolError(f"unexpected greeting {greeting.code} {greeting.text}")
        self.command("USER anonymous", (331,))
        try:
            reply = self.command("PASS " + secret, None, log_as="PASS ********")
        except ReplyError as exc:
            raise LoginError(exc.code, exc.text, "PASS") from None
        except ConnectionClosedError as exc:
            raise LoginError(0, f"server closed the connection after the password ({exc})", "PASS") from None
        if reply.code != 230:
            raise LoginError(reply.code, reply.text, "PASS")
        return greeting

    def close(self, send_quit: bool = True) -> None:
        """``QUIT`` (uftpd sends no reply) and close the socket."""
        if self._closed:
            return
        self._closed = True
        try:
            if send_quit:
                self.sock.sendall(b"QUIT\r\n")
        except OSError:
            pass
        finally:
            self.sock.close()

    @property
    def closed(self) -> bool:
        return self._closed
