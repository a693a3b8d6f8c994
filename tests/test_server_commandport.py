"""The command port (spec §2) and the job lifecycle (§2.4), over real TCP."""

from __future__ import annotations

import socket

import pytest

from uftpcore.server import UFTPD, JobError
from uftpcore.server.commandport import send_request

try:
    from .test_server_support import RawFTP, new_secret, root, uftpd
except ImportError:
    from test_server_support import RawFTP, new_secret, root, uftpd  # noqa: F401


def transfer_request(secret: str, user: str = "alice", **extra: str) -> list[tuple[str, str]]:
    fields = [
        ("request-type", "uftp-transfer-request"),
        ("client-ip", "127.0.0.1"),
        ("user", user),
        ("secret", secret),
        ("persistent", "false"),
        ("file", "/tmp/"),
        ("streams", "1"),
        ("compress", "false"),
    ]
    fields.extend(extra.items())
    return fields


def raw_exchange(port: int, payload: bytes) -> bytes:
    """Send raw bytes, read until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(payload)
        chunks = []
        while True:
            chunk = sock.recv(4096)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)


def test_transfer_request_ok(uftpd):
    reply = raw_exchange(
        uftpd.cmd_port,
        b"request-type=uftp-transfer-request\nclient-ip=127.0.0.1\nuser=nobody\nsecret=s3cr3t\n"
        b"file=/srv/test/\nstreams=1\ncompress=false\npersistent=false\nEND\n",
    )
    assert reply == f"OK::{uftpd.port}\n".encode()
    assert uftpd.registry.lookup("s3cr3t") is not None
    assert uftpd.registry.count("nobody") == 1


def test_crlf_and_end_prefix(uftpd):
    # END only has to *start* the line; CRLF line ends are fine
    reply = raw_exchange(uftpd.cmd_port, b"request-type=uftp-transfer-request\r\nuser=u\r\nsecret=x1\r\nENDE\r\n")
    assert reply == f"OK::{uftpd.port}\n".encode()


def test_unsupported_and_missing_request_type(uftpd):
    assert send_request("127.0.0.1", uftpd.cmd_port, [("request-type", "bogus")]) == (
        "ERROR::Unsupported request type 'bogus'"
    )
    assert send_request("127.0.0.1", uftpd.cmd_port, [("user", "x")]) == "ERROR::Unsupported request type 'n/a'"


def test_missing_user_and_secret(uftpd):
    reply = send_request("127.0.0.1", uftpd.cmd_port, [("request-type", "uftp-transfer-request"), ("secret", "a")])
    assert reply == "ERROR::'user'"
    reply = send_request("127.0.0.1", uftpd.cmd_port, [("request-type", "uftp-transfer-request"), ("user", "a")])
    assert reply == "ERROR::'secret'"


def test_parsing_rules(uftpd):
    # later duplicates win; lines without '=' are ignored; values keep everything after the first '='
    fields = transfer_request("first", user="bob") + [("secret", "b=c")]
    payload = "".join(f"{k}={v}\n" for k, v in fields) + "garbage line\nEND\n"
    assert raw_exchange(uftpd.cmd_port, payload.encode()) == f"OK::{uftpd.port}\n".encode()
    assert uftpd.registry.lookup("first") is None
    assert uftpd.registry.lookup("b=c").request["user"] == "bob"


def test_duplicate_secret(uftpd):
    assert send_request("127.0.0.1", uftpd.cmd_port, transfer_request("dup")) == f"OK::{uftpd.port}"
    assert send_request("127.0.0.1", uftpd.cmd_port, transfer_request("dup")) == (
        "ERROR::Duplicate secret - this is not allowed."
    )
    with pytest.raises(ValueError, match="^Duplicate secret - this is not allowed.$"):
        uftpd.add_job("dup", "alice")


def test_per_user_limit():
    with UFTPD(max_connections=2, housekeeping_interval=3600) as srv:
        assert srv.add_job("l1", "carol") == srv.port
        assert send_request("127.0.0.1", srv.cmd_port, transfer_request("l2", user="carol")) == f"OK::{srv.port}"
        assert send_request("127.0.0.1", srv.cmd_port, transfer_request("l3", user="carol")) == (
            "ERROR::Too many active sessions for 'carol' - server limit is 2"
        )
        with pytest.raises(JobError, match="Too many active sessions for 'carol' - server limit is 2"):
            srv.add_job("l4", "carol")
        # other users are not affected
        assert srv.add_job("l5", "dave") == srv.port


def test_ping_format(uftpd):
    reply = raw_exchange(uftpd.cmd_port, b"request-type=uftp-ping-request\nEND\n")
    assert reply == (
        f"Version: 3.5.3\nListenPort: {uftpd.port}\nListenAddress: 127.0.0.1\nMaxSessionsPerClient: 16\n\n"
    ).encode()


def test_ping_with_advertise_host():
    with UFTPD(advertise_host="192.0.2.1", version="DEV", max_connections=8) as srv:
        reply = raw_exchange(srv.cmd_port, b"request-type=uftp-ping-request\nEND\n")
        assert reply == (
            f"Version: DEV\nListenPort: {srv.port}\nListenAddress: 127.0.0.1\nMaxSessionsPerClient: 8\n"
            f"AdvertiseAddress: 192.0.2.1\n"
        ).encode()


def test_get_user_info(tmp_path):
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "authorized_keys").write_text("# comment\nssh-ed25519 AAAA alice@host\n")
    with UFTPD(home_dirs={"alice": str(home)}) as srv:
        reply = send_request("127.0.0.1", srv.cmd_port,
                             [("request-type", "uftp-get-user-info-request"), ("user", "alice")])
        missing = home / ".uftp" / "authorized_keys"
        assert reply.splitlines() == [
            "Version: 3.5.3",
            "User: alice",
            f"Home: {home}",
            "Accepted key 0: ssh-ed25519 AAAA alice@host",
            (f"Status: keyfile {home}/.ssh/authorized_keys : OK keyfile {missing} : "
             f"[Errno 2] No such file or directory: '{missing}'"),
        ]
        assert send_request("127.0.0.1", srv.cmd_port,
                            [("request-type", "uftp-get-user-info-request"), ("user", "root")]) == "500 Not allowed"
        assert send_request(
            "127.0.0.1", srv.cmd_port,
            [("request-type", "uftp-get-user-info-request"), ("user", "no-such-user-xyz")],
        ) == "500 No such user or no home directory found"


def test_connection_closed_before_end_gets_no_reply(uftpd):
    with socket.create_connection(("127.0.0.1", uftpd.cmd_port), timeout=10) as sock:
        sock.sendall(b"request-type=uftp-ping-request\n")
        sock.shutdown(socket.SHUT_WR)
        assert sock.recv(100) == b""


def test_unused_job_expires():
    with UFTPD(job_timeout=0.0, housekeeping_interval=3600) as srv:
        srv.add_job("exp", "erin")
        assert srv.registry.count("erin") == 1
        import time

        time.sleep(0.01)
        srv.run_housekeeping()
        assert srv.registry.lookup("exp") is None
        assert srv.registry.count("erin") == 0
        client = RawFTP(srv.port)
        assert client.login("exp") == "530 Not logged in: no matching transfer request found\n"
        assert client.expect_eof()
        client.close()


def _login_and_quit(srv: UFTPD, secret: str) -> None:
    client = RawFTP(srv.port)
    assert client.login(secret) == "230 Login successful\n"
    client.send("QUIT")
    assert client.expect_eof()
    client.close()


def _wait_finished(srv: UFTPD, secret: str) -> None:
    import time

    job = srv.registry.lookup(secret)
    deadline = time.time() + 5
    while job is not None and not all(t.finished for t in job.sessions):
        assert time.time() < deadline
        time.sleep(0.01)


def test_non_persistent_job_lifecycle(root):
    with UFTPD(housekeeping_interval=3600) as srv:
        srv.add_job("np", "frank", file=str(root) + "/")
        first = RawFTP(srv.port)
        assert first.login("np") == "230 Login successful\n"
        second = RawFTP(srv.port)
        assert second.login("np") == "500 Session for these credentials is already running\n"
        assert second.expect_eof()
        first.send("QUIT")
        assert first.expect_eof()
        _wait_finished(srv, "np")
        # ended but not yet reaped: still "already running"
        third = RawFTP(srv.port)
        assert third.login("np") == "500 Session for these credentials is already running\n"
        srv.run_housekeeping()
        fourth = RawFTP(srv.port)
        assert fourth.login("np") == "530 Not logged in: no matching transfer request found\n"
        assert srv.registry.count("frank") == 0
        for c in (first, second, third, fourth):
            c.close()


def test_persistent_job_and_limit(root):
    with UFTPD(max_connections=2, housekeeping_interval=3600) as srv:
        srv.add_job("p", "gina", file=str(root) + "/", persistent=True)
        a = RawFTP(srv.port)
        assert a.login("p") == "230 Login successful\n"
        b = RawFTP(srv.port)
        assert b.login("p") == "230 Login successful\n"  # counter 2
        assert srv.registry.count("gina") == 2
        c = RawFTP(srv.port)
        assert c.login("p") == (
            "500 Too many active transfer requests / sessions for 'gina' - server limit is 2\n"
        )
        assert srv.registry.count("gina") == 2
        for client in (a, b):
            client.send("QUIT")
            assert client.expect_eof()
        _wait_finished(srv, "p")
        srv.run_housekeeping()
        assert srv.registry.count("gina") == 0
        d = RawFTP(srv.port)
        assert d.login("p") == "530 Not logged in: no matching transfer request found\n"
        for client in (a, b, c, d):
            client.close()
