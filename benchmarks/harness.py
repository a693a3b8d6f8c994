"""Shared benchmark plumbing: a UFTPD server in its own process, job submission through its
command port (spec §2.7), test files, and timing helpers.

The server runs in a separate process so that the client under test, curl and the raw-TCP
reference all meet the same server on equal terms (no GIL shared with the client).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def new_secret() -> str:
    return "".join(secrets.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(20))


class ServerProcess:
    """``python -m uftpcore.server`` on loopback, serving ``root``."""

    def __init__(self, root: str, max_streams: int = 8):
        self.root = root
        self.port = free_port()
        self.cmd_port = free_port()
        self.max_streams = max_streams
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> ServerProcess:
        env = dict(os.environ)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "uftpcore.server", "--host", "127.0.0.1", "--port", str(self.port),
             "--cmd-port", str(self.cmd_port), "--root", self.root],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.cmd_port), timeout=1):
                    pass
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    pass
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("benchmark server did not start")

    def __exit__(self, *exc) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)

    def job(self, base_dir: str, *, persistent: bool = True, streams: int = 1) -> str:
        """Register a session through the command port; returns its secret."""
        secret = new_secret()
        lines = ["request-type=uftp-transfer-request", "client-ip=127.0.0.1", "user=bench", f"secret={secret}",
                 f"persistent={'true' if persistent else 'false'}", f"file={base_dir.rstrip('/')}/",
                 f"streams={streams}", "compress=false", "END", ""]
        with socket.create_connection(("127.0.0.1", self.cmd_port), timeout=10) as s:
            s.sendall("\n".join(lines).encode())
            reply = s.makefile("rb").read().decode().strip()
        if not reply.startswith("OK::"):
            raise RuntimeError(f"job refused: {reply}")
        return secret


def make_file(path: str, size: int) -> None:
    """A file of ``size`` pseudo-random bytes (generated in 8 MiB blocks)."""
    import numpy as np

    if os.path.exists(path) and os.path.getsize(path) == size:
        return
    block = np.random.default_rng(7).integers(0, 256, size=min(size, 8 << 20), dtype=np.uint8)
    with open(path, "wb") as f:
        left, i = size, 0
        while left > 0:
            n = min(left, len(block))
            block[0] = i & 0xFF
            f.write(memoryview(block)[:n])
            left -= n
            i += 1


def best_of(runs: int, fn: Callable[[], object]) -> float:
    """Best wall time of ``runs`` calls (the least disturbed by other load on a shared machine)."""
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def median_of(samples: list[float]) -> float:
    return statistics.median(samples)


@contextlib.contextmanager
def chdir(path: str) -> Iterator[None]:
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)
