"""uftpcore.authenticate against the Auth-server endpoint in front of the test UFTPD."""

from __future__ import annotations

import logging

import pytest

import uftpcore
from uftpcore.auth import split_auth_url
from uftpcore.errors import AuthenticationError


@pytest.fixture(scope="module")
def auth(uftpd):
    from uftpcore.server import AuthServer

    with AuthServer(uftpd, host="127.0.0.1", port=0, users={"demouser": "test123"},
                    tokens={"tok-123": "demouser"}, server_name="TEST") as a:
        yield a


def test_password_ticket_end_to_end(auth, workdir, impl, caplog):
    caplog.set_level(logging.DEBUG)
    ticket = uftpcore.authenticate(auth.url, username="demouser", password="test123", base_dir=str(workdir))
    assert ticket.port == auth_port(ticket) and ticket.host == "127.0.0.1"
    assert len(ticket.secret) == 20 and ticket.secret.isalpha() and ticket.secret.islower()
    assert ticket.secret not in repr(ticket)
    with uftpcore.connect(ticket, implementation=impl) as s:
        s.write("hello.txt", b"hi")
        assert s.pwd() == str(workdir)
    assert (workdir / "hello.txt").read_bytes() == b"hi"
    assert ticket.secret not in caplog.text and "test123" not in caplog.text


def auth_port(ticket):
    return ticket.port


def test_token_auth(auth, workdir):
    ticket = uftpcore.authenticate(auth.url, token="tok-123", base_dir=str(workdir))
    with uftpcore.connect(ticket) as s:
        assert s.pwd() == str(workdir)


def test_persistent_ticket_serves_two_sessions(auth, workdir):
    ticket = uftpcore.authenticate(auth.url, username="demouser", password="test123", base_dir=str(workdir),
                                   persistent=True)
    with uftpcore.connect(ticket) as a, uftpcore.connect(ticket) as b:
        a.write("p", b"1")
        assert b.read("p") == b"1"


def test_wrong_password(auth, workdir):
    with pytest.raises(AuthenticationError) as err:
        uftpcore.authenticate(auth.url, username="demouser", password="wrong", base_dir=str(workdir))
    assert err.value.status == 401
    assert "wrong" not in str(err.value)


def test_unknown_server_name(auth, workdir):
    url = auth.url.rsplit("/", 1)[0] + "/NOPE"
    with pytest.raises(AuthenticationError) as err:
        uftpcore.authenticate(url, username="demouser", password="test123", base_dir=str(workdir))
    assert err.value.status == 404
    assert "NOPE" in str(err.value)


def test_unreachable_auth_server_times_out_cleanly():
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    with pytest.raises(AuthenticationError, match="cannot reach"):
        uftpcore.authenticate(f"http://127.0.0.1:{port}/rest/auth/TEST", username="u", password="p", timeout=2)


def test_split_auth_url():
    assert split_auth_url("https://h:9000/rest/auth/TEST:/data/x") == ("https://h:9000/rest/auth/TEST", "/data/x")
    assert split_auth_url("https://h:9000/rest/auth/TEST") == ("https://h:9000/rest/auth/TEST", "")
    assert split_auth_url("https://h/SITE/rest/core/storages/HOME:rel/p") == (
        "https://h/SITE/rest/core/storages/HOME", "rel/p")
