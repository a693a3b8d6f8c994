"""pyunicore_fast.forwarder: URL parameters, and real tunnels to an echo service started as a
job on the embedded site."""

from __future__ import annotations

import socket
import sys
import threading
import time

import pytest

import pyunicore_fast.client as uc
import pyunicore_fast.credentials as cr
from pyunicore_fast import forwarder as fw

testing = pytest.importorskip("pyunicore_fast.testing")

pytestmark = pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")

ECHO_SERVER = """\
import socket, sys, threading
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", int(sys.argv[1])))
srv.listen(8)
def serve(c):
    with c:
        while True:
            d = c.recv(65536)
            if not d:
                return
            c.sendall(d)
while True:
    c, _ = srv.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"""


def test_parse_forwarding_params():
    p = fw._parse_forwarding_params("https://h/S/rest/core/jobs/1/forward-port", 8000, "node1", "ln1")
    assert p.query == "port=8000&host=node1&loginNode=ln1"
    p = fw._parse_forwarding_params("https://h/x/forward-port?port=1", 8000)
    assert p.query == "port=1"  # already encoded in the endpoint
    p = fw._parse_forwarding_params("https://h/x/forward-port", login_node="ln", unix_socketfile="app.sock")
    assert p.query == "loginNode=ln&file=app.sock"  # PyUNICORE put the login node into file=
    with pytest.raises(ValueError):
        fw._parse_forwarding_params("https://h/x/forward-port?port=1", unix_socketfile="a.sock")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def echo_job(tmp_path_factory):
    with testing.EmbeddedSite(tls=True) as site:
        script = tmp_path_factory.mktemp("echo") / "echo_server.py"
        script.write_text(ECHO_SERVER)
        port = _free_port()
        client = uc.Client(cr.UsernamePassword("demouser", "test123"), site.core_url)
        job = client.new_job({"Executable": sys.executable, "Arguments": ["echo_server.py", str(port)]},
                             [str(script)])
        job.poll(uc.JobStatus.RUNNING, timeout=30)
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield job, port
        job.abort()


def _echo(sock: socket.socket, payload: bytes) -> bytes:
    sock.sendall(payload)
    got = b""
    while len(got) < len(payload):
        chunk = sock.recv(65536)
        if not chunk:
            break
        got += chunk
    return got


def test_open_tunnel(echo_job):
    job, port = echo_job
    with fw.open_tunnel(job, service_port=port) as sock:
        assert _echo(sock, b"ping") == b"ping"
        big = bytes(range(256)) * 4096
        assert _echo(sock, big) == big


def test_handshake_failure_is_value_error(echo_job):
    job, _port = echo_job
    with pytest.raises(ValueError, match="HTTP 500"):
        fw.open_tunnel(job)  # neither port nor file


def test_forwarder_run_keep_alive(echo_job):
    job, port = echo_job
    tr = job.transport._clone()
    tr.use_security_sessions = False
    forwarder = fw.Forwarder(tr, job.links["forwarding"], service_port=port, debug=True)
    runner = threading.Thread(target=forwarder.run, args=(0,), kwargs={"keep_alive": True}, daemon=True)
    runner.start()
    deadline = time.monotonic() + 10
    while forwarder.local_port == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        for i in range(3):
            with socket.create_connection(("127.0.0.1", forwarder.local_port), timeout=10) as c:
                assert _echo(c, f"client{i}".encode()) == f"client{i}".encode()
                c.shutdown(socket.SHUT_WR)
                assert c.recv(10) == b""  # EOF is propagated back through the tunnel
    finally:
        forwarder.stop_forwarding()
        runner.join(timeout=10)
    assert not runner.is_alive()


def test_forwarder_run_single_client(echo_job):
    job, port = echo_job
    forwarder = fw.Forwarder(cr.UsernamePassword("demouser", "test123"), job.links["forwarding"] + f"?port={port}")
    forwarder.transport.use_security_sessions = False
    runner = threading.Thread(target=forwarder.run, args=(0,), daemon=True)
    runner.start()
    while forwarder.local_port == 0:
        time.sleep(0.01)
    with socket.create_connection(("127.0.0.1", forwarder.local_port), timeout=10) as c:
        runner.join(timeout=10)
        assert not runner.is_alive()  # run() returned after the first client, forwarding continues
        assert _echo(c, b"still here") == b"still here"
