"""Greeting and login state machine (spec §3.2), every failure case, on raw sockets."""

from __future__ import annotations

import pytest

from uftpcore.server import UFTPD

try:
    from .test_server_support import RawFTP, connect, new_secret, root, uftpd
except ImportError:
    from test_server_support import RawFTP, connect, new_secret, root, uftpd  # noqa: F401

GREETING = b"220 UFTPD 3.5.3, https://www.unicore.eu\n"


@pytest.fixture
def job(uftpd, root):
    secret = new_secret()
    uftpd.add_job(secret, "demouser", file=str(root) + "/")
    return secret


def dialogue(uftpd, *lines: str) -> list[bytes]:
    """Send the lines one by one; collect each reply; end with whatever precedes EOF."""
    client = RawFTP(uftpd.port)
    replies = [client.read_reply()]
    for line in lines:
        client.send(line)
        replies.append(client.read_reply())
    replies.append(client.read_reply())  # b"" = the server closed
    client.close()
    return replies


def test_greeting_and_login(uftpd, job):
    client = RawFTP(uftpd.port)
    assert client.read_reply() == GREETING
    client.send("USER anonymous")
    assert client.read_reply() == b"331 Please specify the password\n"
    client.send(f"PASS {job}")
    assert client.read_reply() == b"230 Login successful\n"
    client.close()


def test_login_then_commands(uftpd, job):
    client = RawFTP(uftpd.port)
    assert client.read_reply() == GREETING
    assert client.cmd("USER anonymous") == "331 Please specify the password\n"
    assert client.cmd(f"PASS {job}") == "230 Login successful\n"
    assert client.cmd("SYST") == "215 Unix Type: L8\n"
    client.send("QUIT")
    assert client.expect_eof()
    client.close()


def test_custom_version_in_greeting(root):
    with UFTPD(version="DEV") as srv:
        client = RawFTP(srv.port)
        assert client.read_reply() == b"220 UFTPD DEV, https://www.unicore.eu\n"
        client.close()


def test_one_syst_before_login(uftpd, job):
    client = RawFTP(uftpd.port)
    assert client.read_reply() == GREETING
    assert client.cmd("SYST") == "215 Unix Type: L8\n"
    assert client.cmd("USER anonymous") == "331 Please specify the password\n"
    assert client.cmd(f"PASS {job}") == "230 Login successful\n"
    client.close()


def test_second_syst_fails(uftpd, job):
    assert dialogue(uftpd, "SYST", "SYST") == [
        GREETING, b"215 Unix Type: L8\n",
        b"500 Error establishing connection: list.remove(x): x not in list\n", b"",
    ]


@pytest.mark.parametrize("user_line", ["user anonymous", "USER bob", "USER  anonymous", "USER anonymous x"])
def test_user_must_be_exact(uftpd, user_line):
    assert dialogue(uftpd, user_line) == [GREETING, b"500 Protocol error\n", b""]


@pytest.mark.parametrize("line", ["FEAT", "AUTH TLS", "OPTS UTF8 ON", "PASS x"])
def test_other_commands_before_login(uftpd, line):
    assert dialogue(uftpd, line) == [GREETING, b"500 Protocol error\n", b""]


def test_empty_line_before_login_is_a_protocol_error(uftpd):
    client = RawFTP(uftpd.port)
    assert client.read_reply() == GREETING
    client.send("")
    assert client.read_reply() == b"500 Protocol error\n"
    assert client.expect_eof()
    client.close()


@pytest.mark.parametrize("password_line", ["PASS anonymous", "ACCT x", "PASS", "pass secret"])
def test_bad_password_line(uftpd, password_line):
    assert dialogue(uftpd, "USER anonymous", password_line) == [
        GREETING, b"331 Please specify the password\n", b"500 Protocol error\n", b"",
    ]


def test_user_secret_proxy_style(uftpd, job):
    client = RawFTP(uftpd.port)
    client.read_reply()
    assert client.cmd("USER anonymous") == "331 Please specify the password\n"
    assert client.cmd(f"USER {job}") == "230 Login successful\n"
    client.close()


def test_unknown_secret(uftpd):
    assert dialogue(uftpd, "USER anonymous", "PASS nosuchsecret") == [
        GREETING, b"331 Please specify the password\n",
        b"530 Not logged in: no matching transfer request found\n", b"",
    ]


def test_client_ip_check(uftpd, root):
    uftpd.add_job("ipjob", "demouser", file=str(root) + "/", client_ip="10.1.2.3,10.1.2.4")
    assert dialogue(uftpd, "USER anonymous", "PASS ipjob") == [
        GREETING, b"331 Please specify the password\n",
        (b"500 Error establishing connection: Rejecting connection for 'demouser' from 127.0.0.1, "
         b"allowed: ['10.1.2.3', '10.1.2.4']\n"),
        b"",
    ]


def test_client_ip_list_accepts_any_listed_address(uftpd, root):
    uftpd.add_job("iplist", "demouser", file=str(root) + "/", client_ip=["10.1.2.3", "127.0.0.1"])
    client = RawFTP(uftpd.port)
    assert client.login("iplist") == "230 Login successful\n"
    client.close()


def test_client_ip_from_other_loopback_address(uftpd, root):
    uftpd.add_job("src", "demouser", file=str(root) + "/", client_ip="127.0.0.1")
    client = RawFTP(uftpd.port, source="127.0.0.2")
    assert client.login("src") == (
        "500 Error establishing connection: Rejecting connection for 'demouser' from 127.0.0.2, "
        "allowed: ['127.0.0.1']\n"
    )
    client.close()


def test_missing_client_ip(uftpd, root):
    uftpd.add_job("noip", "demouser", file=str(root) + "/", client_ip=None)
    assert dialogue(uftpd, "USER anonymous", "PASS noip")[2] == b"500 Error establishing connection: 'client-ip'\n"


def test_disable_ip_check(root):
    with UFTPD(disable_ip_check=True) as srv:
        srv.add_job("anyip", "demouser", file=str(root) + "/", client_ip="10.9.9.9")
        client = RawFTP(srv.port)
        assert client.login("anyip") == "230 Login successful\n"
        client.close()


def test_session_setup_failure_closes_silently(uftpd, tmp_path):
    uftpd.add_job("nodir", "demouser", file=str(tmp_path / "missing") + "/")
    client = RawFTP(uftpd.port)
    assert client.login("nodir") == "230 Login successful\n"
    assert client.expect_eof()
    client.close()


def test_bad_key_closes_after_230(uftpd, root):
    uftpd.add_job("badkey", "demouser", file=str(root) + "/", key=b"k" * 60)  # Blowfish > 56 bytes
    client = RawFTP(uftpd.port)
    assert client.login("badkey") == "230 Login successful\n"
    assert client.expect_eof()
    client.close()


def test_quit_gets_no_reply(connect):
    client = connect()
    client.send("QUIT")
    assert client.expect_eof()


def test_bye_gets_no_reply(connect):
    client = connect()
    client.send("BYE")
    assert client.expect_eof()
