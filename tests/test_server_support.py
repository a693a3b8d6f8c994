"""Shared helpers for the ``test_server_*`` modules: a raw FTP client and fixtures.

Raw sockets on purpose: the server's replies are compared byte for byte, which no
high-level FTP client allows.
"""

from __future__ import annotations

import itertools
import os
import socket

import pytest

from uftpcore.server import UFTPD

_secrets = itertools.count()


def new_secret() -> str:
    return f"secret{next(_secrets):06d}"


class RawFTP:
    """Minimal byte-exact FTP client for tests."""

    def __init__(self, port: int, host: str = "127.0.0.1", source: str | None = None, timeout: float = 10.0):
        self.host = host
        self.source = source
        self.sock = socket.create_connection((host, port), timeout=timeout,
                                             source_address=(source, 0) if source else None)
        self.file = self.sock.makefile("rb")
        self.data: list[socket.socket] = []

    # -- control ----------------------------------------------------------------------
    def send(self, line: str, end: bytes = b"\r\n") -> None:
        self.sock.sendall(line.encode("utf-8") + end)

    def read_reply(self) -> bytes:
        """One complete reply (multi-line aware), raw bytes; ``b""`` at EOF."""
        first = self.file.readline()
        if not first:
            return b""
        out = [first]
        if first[3:4] == b"-":
            code = first[:3]
            while True:
                line = self.file.readline()
                out.append(line)
                if not line or (line[:3] == code and line[3:4] == b" "):
                    break
        return b"".join(out)

    def cmd(self, line: str) -> str:
        self.send(line)
        return self.read_reply().decode("utf-8")

    def expect_eof(self) -> bool:
        try:
            return self.file.readline() == b""
        except (TimeoutError, ConnectionResetError):
            return False

    def login(self, secret: str) -> str:
        greeting = self.read_reply().decode()
        assert greeting.startswith("220 UFTPD ")
        assert self.cmd("USER anonymous") == "331 Please specify the password\n"
        return self.cmd(f"PASS {secret}")

    # -- data -------------------------------------------------------------------------
    def open_data(self, verb: str = "EPSV") -> socket.socket:
        reply = self.cmd(verb)
        if verb == "EPSV":
            assert reply.startswith("229 Entering Extended Passive Mode (|||"), reply
            port = int(reply.split("|||")[1].split("|")[0])
        else:
            assert reply.startswith("227 Entering Passive Mode ("), reply
            numbers = reply[reply.index("(") + 1 : reply.index(")")].split(",")
            port = int(numbers[-2]) * 256 + int(numbers[-1])
        sock = socket.create_connection((self.host, port), timeout=10,
                                        source_address=(self.source, 0) if self.source else None)
        self.data.append(sock)
        return sock

    def close(self) -> None:
        for sock in self.data:
            sock.close()
        self.file.close()
        self.sock.close()


def recv_all(sock: socket.socket) -> bytes:
    chunks = []
    while True:
        chunk = sock.recv(1 << 20)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def recv_exact(sock: socket.socket, count: int) -> bytes:
    buf = bytearray()
    while len(buf) < count:
        chunk = sock.recv(count - len(buf))
        if not chunk:
            break
        buf += chunk
    return bytes(buf)


@pytest.fixture
def uftpd():
    """A running server with short timeouts, torn down after the test."""
    server = UFTPD(accept_timeout=5.0, housekeeping_interval=3600)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def root(tmp_path):
    """A small tree: a.txt (12 bytes), sub/, sub/b.bin (1000 bytes), empty.txt."""
    base = tmp_path / "data"
    base.mkdir()
    (base / "a.txt").write_bytes(b"hello world\n")
    (base / "sub").mkdir()
    (base / "sub" / "b.bin").write_bytes(bytes(range(256)) * 3 + bytes(232))
    (base / "empty.txt").write_bytes(b"")
    return base


@pytest.fixture
def connect(uftpd, root):
    """``connect(**job_kwargs) -> RawFTP`` logged in to a fresh job rooted at ``root``."""
    clients: list[RawFTP] = []

    def _connect(expect: str = "230 Login successful\n", **job) -> RawFTP:
        job.setdefault("file", str(root) + "/")
        secret = job.pop("secret", None) or new_secret()
        uftpd.add_job(secret, job.pop("user", "demouser"), **job)
        client = RawFTP(uftpd.port)
        clients.append(client)
        assert client.login(secret) == expect
        return client

    yield _connect
    for client in clients:
        client.close()


def cwd_of(path) -> str:
    return os.path.realpath(str(path))
