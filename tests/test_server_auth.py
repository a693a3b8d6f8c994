"""The Auth endpoint (spec §1.3–§1.5, §15.4) with ``requests``, end to end into a session."""

from __future__ import annotations

import logging
import re
import shutil

import pytest
import requests

from uftpcore.server import UFTPD, AuthServer
from uftpcore.server.authserver import MULTI_FILE_TAG, derive_file

try:
    from .test_server_support import RawFTP, root, uftpd
except ImportError:
    from test_server_support import RawFTP, root, uftpd  # noqa: F401

USERS = {"demouser": "test123", "other": "pw"}


@pytest.fixture
def auth(uftpd, root):
    server = AuthServer(uftpd, users=dict(USERS), tokens={"static-token": "demouser"},
                        home_dirs={"demouser": str(root)})
    server.start()
    try:
        yield server
    finally:
        server.stop()


def post(server: AuthServer, body, **kwargs) -> requests.Response:
    kwargs.setdefault("auth", ("demouser", "test123"))
    return requests.post(server.url, json=body, timeout=10, **kwargs)


@pytest.mark.parametrize(
    "server_path, expected",
    [
        ("/data/foo", "/data/foo/"), ("/data/foo/", "/data/foo/"), ("/", "/"), ("", ""), ("data", "data/"),
        (MULTI_FILE_TAG, ""), (f"/data/{MULTI_FILE_TAG}", "/data/"), (f"/{MULTI_FILE_TAG}", "/"),
        (f"rel/{MULTI_FILE_TAG}", "rel/"),
    ],
)
def test_derive_file(server_path, expected):
    assert derive_file(server_path) == expected


def test_urls(auth):
    assert auth.url == f"http://127.0.0.1:{auth.port}/rest/auth/TEST"
    assert auth.base_url == f"http://127.0.0.1:{auth.port}/rest/auth"


def test_info_document(auth, uftpd):
    anonymous = requests.get(auth.base_url, timeout=10)
    assert anonymous.status_code == 200
    doc = anonymous.json()
    entry = doc["TEST"]
    assert entry["href"] == auth.url
    assert entry["status"] == "OK"
    assert entry["uftpdServerVersion"] == "3.5.3"
    assert entry["sessionLimit"] == 16
    assert entry["dataSharing"] == {"enabled": False}
    assert doc["client"]["role"]["selected"] == "anonymous"
    assert "version" in doc["server"]
    doc = requests.get(auth.base_url, auth=("demouser", "test123"), timeout=10).json()
    assert doc["TEST"]["uid"] == "demouser" and doc["TEST"]["gid"]
    assert doc["client"]["role"]["selected"] == "user"
    assert doc["client"]["dn"]
    bad = requests.get(auth.base_url, auth=("demouser", "wrong"), timeout=10)
    assert bad.status_code == 401 and bad.json()["errorMessage"]


def test_authenticate_and_login(auth, uftpd, root):
    reply = post(auth, {"serverPath": str(root) + "/", "persistent": "true"})
    assert reply.status_code == 200
    body = reply.json()
    assert set(body) == {"success", "reason", "serverHost", "serverPort", "secret"}
    assert body["success"] is True and body["reason"] == ""
    assert body["serverHost"] == "127.0.0.1" and body["serverPort"] == uftpd.port
    assert re.fullmatch(r"[a-z]{20}", body["secret"])
    request = uftpd.registry.lookup(body["secret"]).request
    assert request["file"] == str(root) + "/"
    assert request["persistent"] == "true"
    assert request["client-ip"] == "127.0.0.1"
    assert request["user"] == "demouser"
    assert request["streams"] == "1" and request["compress"] == "false"
    client = RawFTP(body["serverPort"])
    assert client.login(body["secret"]) == "230 Login successful\n"
    assert client.cmd("PWD") == f'257 "{root}"\n'
    client.close()


def test_request_fields(auth, uftpd):
    body = post(auth, {"serverPath": f"/tmp/{MULTI_FILE_TAG}", "persistent": True, "compress": "TRUE",
                       "streamCount": 2, "client": "10.0.0.1 10.0.0.2", "group": "users",
                       "encryptionKey": "a2V5a2V5a2V5", "encryptionAlgorithm": "aes",
                       "unknownField": 1}).json()
    request = uftpd.registry.lookup(body["secret"]).request
    assert request["file"] == "/tmp/"
    assert request["persistent"] == "true" and request["compress"] == "true"
    assert request["streams"] == "2"
    assert request["client-ip"] == "10.0.0.1,10.0.0.2"
    assert request["group"] == "users"
    assert request["key"] == "a2V5a2V5a2V5" and request["algo"] == "AES"
    body = post(auth, {"serverPath": "", "persistent": False, "encryptionKey": "a2V5"}).json()
    request = uftpd.registry.lookup(body["secret"]).request
    assert request["file"] == "" and request["persistent"] == "false" and request["algo"] == "BLOWFISH"
    assert post(auth, {"serverPath": "/", "persistent": "false"}).status_code == 200


def test_secrets_are_unique(auth):
    assert len({post(auth, {"serverPath": "/"}).json()["secret"] for _ in range(5)}) == 5


def test_bearer_tokens(auth):
    assert post(auth, {"serverPath": "/"}, auth=None, headers={"Authorization": "Bearer static-token"}).status_code == 200
    bad = post(auth, {"serverPath": "/"}, auth=None, headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401 and "errorMessage" in bad.json()
    issued = requests.get(f"{auth.base_url}/token", auth=("other", "pw"), timeout=10)
    assert issued.status_code == 200 and issued.headers["Content-Type"].startswith("text/plain")
    token = issued.text
    reply = post(auth, {"serverPath": "/"}, auth=None, headers={"Authorization": f"Bearer {token}"})
    assert reply.status_code == 200
    assert auth.uftpd.registry.lookup(reply.json()["secret"]).request["user"] == "other"
    assert requests.get(f"{auth.base_url}/token", timeout=10).status_code == 401


@pytest.mark.parametrize("credentials", [None, ("demouser", "wrong"), ("nobody", "test123")])
def test_bad_credentials(auth, credentials):
    reply = post(auth, {"serverPath": "/"}, auth=credentials)
    assert reply.status_code == 401
    assert reply.json()["errorMessage"]


def test_unknown_server_and_instance_suffix(auth):
    reply = requests.post(f"{auth.base_url}/NOPE", json={"serverPath": "/"}, auth=("demouser", "test123"), timeout=10)
    assert reply.status_code == 404
    assert reply.json()["errorMessage"] == "No such server: 'NOPE', please check your URL"
    pinned = requests.post(f"{auth.url}-1", json={"serverPath": "/"}, auth=("demouser", "test123"), timeout=10)
    assert pinned.status_code == 200


def test_bad_requests(auth):
    assert post(auth, {}).status_code == 500  # serverPath is required (null makes the server fail)
    raw = requests.post(auth.url, data=b"{not json", auth=("demouser", "test123"), timeout=10,
                        headers={"Content-Type": "application/json"})
    assert raw.status_code == 400 and raw.json()["errorMessage"].startswith("Invalid JSON")
    assert post(auth, {"serverPath": "/", "streamCount": "many"}).status_code == 400


def test_uftpd_error_becomes_500(root):
    with UFTPD(max_connections=1) as srv, AuthServer(srv, users=dict(USERS)) as auth:
        assert post(auth, {"serverPath": "/"}).status_code == 200
        reply = post(auth, {"serverPath": "/"})
        assert reply.status_code == 500
        assert reply.json()["errorMessage"] == (
            "UFTPD server 'TEST': ERROR::Too many active sessions for 'demouser' - server limit is 1"
        )


def test_uftpd_down(root):
    srv = UFTPD().start()
    auth = AuthServer(srv, users=dict(USERS)).start()
    try:
        srv.stop()
        assert post(auth, {"serverPath": "/"}).status_code == 503
        assert requests.get(auth.base_url, timeout=10).json()["TEST"]["status"] == "DOWN"
    finally:
        auth.stop()


def test_nothing_secret_is_logged(auth, root, caplog):
    caplog.set_level(logging.DEBUG)
    reply = post(auth, {"serverPath": str(root) + "/", "encryptionKey": "c2VjcmV0a2V5a2V5a2V5"})
    secret = reply.json()["secret"]
    client = RawFTP(reply.json()["serverPort"])
    client.login(secret)
    client.close()
    assert secret not in caplog.text
    assert "test123" not in caplog.text
    assert "c2VjcmV0a2V5a2V5a2V5" not in caplog.text


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl tool")
def test_tls(uftpd):
    with AuthServer(uftpd, users=dict(USERS), tls=True) as auth:
        assert auth.url.startswith("https://127.0.0.1:")
        reply = requests.post(auth.url, json={"serverPath": "/"}, auth=("demouser", "test123"),
                              verify=auth.cert_file, timeout=10)
        assert reply.status_code == 200 and reply.json()["serverPort"] == uftpd.port
