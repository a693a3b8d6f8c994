"""A scripted fake UFTPD for client robustness tests.

Each test writes the server side as a plain function receiving a ``Peer``; the peer records
every line the client sent, so tests can also assert the exact command sequence.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable


class Peer:
    """The server's view of one control connection."""

    def __init__(self, conn: socket.socket):
        self.conn = conn
        self.rfile = conn.makefile("rb")
        self.received: list[str] = []
        self.data_listener: socket.socket | None = None

    def send(self, text: str) -> None:
        self.conn.sendall(text.encode())

    def line(self) -> str:
        raw = self.rfile.readline()
        if not raw:
            raise EOFError("client closed")
        text = raw.decode().rstrip("\r\n")
        self.received.append(text)
        return text

    def expect(self, prefix: str) -> str:
        got = self.line()
        assert got.startswith(prefix), f"expected {prefix!r}, client sent {got!r}"
        return got

    def login(self, features: str = " PASV\n EPSV\n RANG STREAM\n REST STREAMMFMT\n MLSD\n MLST\n") -> None:
        self.send("220 UFTPD 3.5.3, https://www.unicore.eu\n")
        self.expect("USER anonymous")
        self.send("331 Please specify the password\n")
        self.expect("PASS ")
        self.send("230 Login successful\n")
        self.expect("FEAT")
        self.send("211-Features:\n" + features + "211 END\n")

    def epsv(self) -> socket.socket:
        """Answer the client's (optional NOOP and) EPSV and accept its data connection."""
        cmd = self.line()
        if cmd.startswith("NOOP"):
            self.send("222 Opening 1 data connections\n")
            cmd = self.line()
        assert cmd == "EPSV", cmd
        lst = socket.socket()
        lst.bind(("127.0.0.1", 0))
        lst.listen(1)
        lst.settimeout(5)
        self.send(f"229 Entering Extended Passive Mode (|||{lst.getsockname()[1]}|)\n")
        data, _ = lst.accept()
        lst.close()
        return data


class ScriptedServer:
    """Runs ``script(peer)`` for the first client connection in a background thread."""

    def __init__(self, script: Callable[[Peer], None]):
        self.script = script
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(4)
        self.port = self.listener.getsockname()[1]
        self.error: BaseException | None = None
        self.peer: Peer | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        conn, _ = self.listener.accept()
        self.peer = Peer(conn)
        try:
            self.script(self.peer)
        except (EOFError, ConnectionError, OSError):
            pass
        except BaseException as exc:  # an assertion inside the script
            self.error = exc
        finally:
            self._done.set()

    def __enter__(self) -> ScriptedServer:
        self._done = threading.Event()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.wait(10)
        if self.peer is not None:
            try:
                self.peer.conn.close()
            except OSError:
                pass
        self.listener.close()
        if self.error is not None and exc[0] is None:
            raise self.error
