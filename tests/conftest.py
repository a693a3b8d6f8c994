"""Shared fixtures: the implementation switch and a UFTPD-compatible server on loopback."""

from __future__ import annotations

import hashlib
import os
import secrets

import pytest

import uftpcore
from uftpcore._impl import available_implementations

IMPLEMENTATIONS = available_implementations()
if os.environ.get("UFTPCORE_NO_EXTENSIONS", "").strip() not in ("", "0"):
    IMPLEMENTATIONS = ["python"]


def pytest_report_header(config):
    return f"uftpcore default implementation: {uftpcore.IMPLEMENTATION}; data-channel tests run with {IMPLEMENTATIONS}"


@pytest.fixture(params=IMPLEMENTATIONS)
def impl(request) -> str:
    """Every data-channel test runs against each implementation available in this run."""
    return request.param


@pytest.fixture(scope="session")
def uftpd_root(tmp_path_factory):
    return tmp_path_factory.mktemp("uftpd-root")


@pytest.fixture(scope="session")
def uftpd(uftpd_root):
    from uftpcore.server import UFTPD

    # a generous per-user limit: the whole suite shares this server and user "tester"
    with UFTPD(host="127.0.0.1", port=0, cmd_host="127.0.0.1", cmd_port=0, max_connections=100_000,
               housekeeping_interval=0.5) as srv:
        yield srv


@pytest.fixture
def workdir(uftpd_root):
    """A fresh directory inside the server root for one test."""
    d = uftpd_root / secrets.token_hex(6)
    d.mkdir()
    return d


def new_secret() -> str:
    return "".join(secrets.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(20))


@pytest.fixture
def session(uftpd, workdir, impl):
    secret = new_secret()
    uftpd.add_job(secret=secret, user="tester", file=str(workdir) + "/", client_ip="127.0.0.1", persistent=True)
    s = uftpcore.connect("127.0.0.1", uftpd.port, secret, timeout=10, implementation=impl)
    yield s
    s.close()


def make_file(path, size: int, seed: int = 0) -> str:
    """Write ``size`` pseudo-random bytes (fast, reproducible); returns the sha256 hex digest."""
    import numpy as np

    rng = np.random.default_rng(seed)
    h = hashlib.sha256()
    with open(path, "wb") as f:
        left = size
        block = rng.integers(0, 256, size=min(size, 4 << 20), dtype=np.uint8).tobytes() if size else b""
        i = 0
        while left > 0:
            n = min(left, len(block))
            chunk = block[:n] if i == 0 else (bytes([i & 0xFF]) + block[1:n] if n > 1 else bytes([i & 0xFF]))
            f.write(chunk)
            h.update(chunk)
            left -= n
            i += 1
    return h.hexdigest()


def sha256_file(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()
