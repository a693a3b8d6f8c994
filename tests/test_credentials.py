"""pyunicore_fast.credentials: header values as PyUNICORE produces them, token caching, key
loading for SSH-key JWT authentication, OIDC refresh paths (against local fakes)."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from base64 import b64encode
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization as ser
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

import pyunicore_fast.credentials as cr
from pyunicore_fast.client import Transport


def _jwt(exp_in: float, iat_ago: float = 0.0) -> str:
    now = time.time()
    return jwt.encode({"sub": "x", "iat": int(now - iat_ago), "exp": int(now + exp_in)}, "k" * 32, algorithm="HS256")


# -- simple credentials (oracles of PyUNICORE's tests/unit/test_utils.py) ------------------------
def test_username_password():
    c = cr.UsernamePassword("demouser", "test123")
    assert c.get_auth_header() == "Basic " + b64encode(b"demouser:test123").decode("ascii")
    assert c.username == "demouser" and c.password == "test123"  # 1.2-dev attribute kept
    assert c.token == b64encode(b"demouser:test123").decode("ascii")  # 1.3+ attribute
    assert isinstance(c, cr.BasicToken)


def test_username_password_non_ascii():
    c = cr.UsernamePassword("jürgen", "pässword")
    assert c.get_auth_header() == "Basic " + b64encode("jürgen:pässword".encode()).decode("ascii")


def test_factory_username_password_and_token():
    assert cr.create_credential("demouser", "test123").get_auth_header() == cr.UsernamePassword(
        "demouser", "test123").get_auth_header()
    tok = cr.create_credential(token="test123")
    assert isinstance(tok, cr.OIDCToken) and tok.get_auth_header() == "Bearer test123"
    with pytest.raises(cr.AuthenticationFailedException):
        cr.create_credential()


def test_basic_bearer_anonymous():
    assert cr.BasicToken("test123").get_auth_header() == "Basic test123"
    assert cr.BearerToken("abc").get_auth_header() == "Bearer abc"
    assert cr.BearerToken("abc").get_token() == "abc"
    assert cr.Anonymous().get_auth_header() is None


def test_transport_uses_credential_header():
    c = cr.UsernamePassword("demouser", "test123")
    assert Transport(c)._headers({})["Authorization"] == "Basic " + b64encode(b"demouser:test123").decode()


def test_reprs_hide_secrets():
    secrets = ["test123", b64encode(b"demouser:test123").decode(), "tok-secret"]
    reprs = [repr(cr.UsernamePassword("demouser", "test123")), str(cr.UsernamePassword("demouser", "test123")),
             repr(cr.OIDCToken("tok-secret")), repr(cr.BasicToken(secrets[1])),
             repr(cr.JWTToken("u", None, "tok-secret", algorithm="HS256")), repr(cr.RefreshHandler(token="tok-secret"))]
    for r in reprs:
        assert not any(s in r for s in secrets), r


# -- OIDC tokens with refresh handlers ------------------------------------------------------------
class MockRefresh12:
    """PyUNICORE 1.2-dev handler interface: get_token()."""

    def __init__(self, token: str = "foobar"):
        self.calls = 0
        self.token = token

    def get_token(self) -> str:
        self.calls += 1
        return self.token


class MockRefresh13(cr.RefreshHandler):
    """PyUNICORE 1.3+/2.0 interface: refresh_token()."""

    def __init__(self, token: str):
        self.calls = 0
        self.new_token = token

    def refresh_token(self) -> str:
        self.calls += 1
        return self.new_token


def test_oidc_token_with_refresh_handler_12():
    handler = MockRefresh12()
    c = cr.OIDCToken("test123", handler)
    assert c.get_auth_header() == "Bearer foobar"  # oracle of PyUNICORE's unit test
    assert c.get_auth_header() == "Bearer foobar"
    assert handler.calls == 2  # opaque tokens: validity unknown, ask every time (PyUNICORE)


def test_oidc_token_with_jwt_refreshes_only_near_expiry():
    fresh = _jwt(3600)
    handler = MockRefresh13(fresh)
    c = cr.OIDCToken(_jwt(-10, 300), handler)  # expired initial token
    for _ in range(50):
        assert c.get_auth_header() == "Bearer " + fresh
    assert handler.calls == 1
    c.token = _jwt(5, 300)  # within the renewal margin
    c.get_token()
    assert handler.calls == 2


def test_refresh_handler_12_config(monkeypatch):
    posted: list[dict[str, Any]] = []

    class Res:
        status_code = 200
        reason = "OK"

        def json(self):
            return {"access_token": _jwt(600)}

    def fake_post(url, headers=None, data=None, timeout=None):
        posted.append({"url": url, "data": data, "timeout": timeout})
        return Res()

    import requests

    monkeypatch.setattr(requests, "post", fake_post)
    cfg = {"url": "https://idp/oauth2/", "client_id": "c", "client_secret": "s", "refresh_token": "r"}
    handler = cr.RefreshHandler(cfg)  # no token: refreshes immediately
    assert posted[0]["url"] == "https://idp/oauth2/token" and posted[0]["data"]["grant_type"] == "refresh_token"
    assert posted[0]["timeout"] is not None
    assert handler.is_valid_token()
    c = cr.OIDCToken(None, handler)
    c.get_auth_header()
    c.get_auth_header()
    assert len(posted) == 1  # valid token: no refresh per request
    with pytest.raises(NotImplementedError):
        cr.RefreshHandler().refresh_token()


# -- JWT tokens -------------------------------------------------------------------------------
def test_hs256_like_pyunicore_unit_test():
    c = cr.JWTToken("CN=Demouser", "CN=My Service", secret="test123" * 5, algorithm="HS256", etd=True)
    claims = jwt.decode(c.create_token(), "test123" * 5, algorithms=["HS256"])
    assert claims["sub"] == "CN=Demouser" and claims["iss"] == "CN=My Service" and claims["etd"] == "true"
    assert claims["exp"] - claims["iat"] == 300


def test_jwt_resigned_only_near_expiry(monkeypatch):
    c = cr.JWTToken("demouser", None, "k" * 32, algorithm="HS256", lifetime=300)
    assert c.issuer == "demouser"
    signed = []
    original = c.create_token
    monkeypatch.setattr(c, "create_token", lambda: signed.append(1) or original())
    first = c.get_token()
    assert all(c.get_token() == first for _ in range(100))
    assert c.get_auth_header() == "Bearer " + first
    assert len(signed) == 1
    real = time.time
    monkeypatch.setattr(cr.time, "time", lambda: real() + 250)  # 50 s left < 60 s margin
    c.get_token()
    assert len(signed) == 2
    c.subject = "other"  # changed settings invalidate the cached token
    c.get_token()
    assert len(signed) == 3


def _write_key(tmp_path, key, fmt: str, password: bytes | None = None) -> str:
    enc = ser.BestAvailableEncryption(password) if password else ser.NoEncryption()
    if fmt == "openssh":
        data = key.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.OpenSSH, enc)
    elif fmt == "pkcs8":
        data = key.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.PKCS8, enc)
    else:
        data = key.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.TraditionalOpenSSL, enc)
    path = tmp_path / f"id_{fmt}_{type(key).__name__}"
    path.write_bytes(data)
    return str(path)


KEYS = [
    ("rsa", lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048), "RS256"),
    ("ec256", lambda: ec.generate_private_key(ec.SECP256R1()), "ES256"),
    ("ec384", lambda: ec.generate_private_key(ec.SECP384R1()), "ES384"),
    ("ed25519", lambda: ed25519.Ed25519PrivateKey.generate(), "EdDSA"),
]


# Ed25519 keys have no "traditional" PEM encoding, so that combination does not exist.
KEY_FORMATS = [(k, fmt) for k in KEYS for fmt in ("openssh", "pkcs8", "traditional")
               if not (fmt == "traditional" and k[0] == "ed25519")]


@pytest.mark.parametrize("key_spec,fmt", KEY_FORMATS, ids=[f"{k[0]}-{f}" for k, f in KEY_FORMATS])
def test_create_credential_with_key_files(tmp_path, key_spec, fmt):
    name, make, algo = key_spec
    key = make()
    path = _write_key(tmp_path, key, fmt)
    c = cr.create_credential("demouser", identity=path)
    assert isinstance(c, cr.JWTToken) and c.algorithm == algo and c.etd is False
    token = c.get_auth_header().split(" ", 1)[1]
    claims = jwt.decode(token, key.public_key(), algorithms=[algo])
    assert claims["sub"] == claims["iss"] == "demouser" and claims["etd"] == "false"


def test_encrypted_pem_key_with_passphrase(tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    path = _write_key(tmp_path, key, "pkcs8", password=b"phrase")
    c = cr.create_credential("demouser", "phrase", identity=path)
    jwt.decode(c.get_token(), key.public_key(), algorithms=["ES256"])
    with pytest.raises(cr.AuthenticationFailedException):
        cr.create_credential("demouser", "wrong", identity=path)


def test_identity_resolved_in_dot_uftp(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / ".uftp").mkdir()
    key = ed25519.Ed25519PrivateKey.generate()
    (tmp_path / ".uftp" / "id_ed25519").write_bytes(
        key.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.OpenSSH, ser.NoEncryption()))
    c = cr.create_credential("demouser", identity="id_ed25519")
    assert c.algorithm == "EdDSA"
    c = cr.create_credential("demouser", identity="~/.uftp/id_ed25519")
    assert c.algorithm == "EdDSA"
    with pytest.raises(FileNotFoundError):
        cr.create_credential("demouser", identity="missing_key")


# -- oidc-agent over a UNIX socket ---------------------------------------------------------------
def test_oidc_agent_token_cached(tmp_path, monkeypatch):
    path = str(tmp_path / "agent.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(5)
    requests_seen: list[dict[str, Any]] = []

    def serve():
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            with conn:
                req = json.loads(conn.recv(65536))
                requests_seen.append(req)
                conn.sendall(json.dumps({"status": "success", "access_token": f"tok{len(requests_seen)}",
                                         "expires_at": int(time.time()) + 600}).encode())

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    monkeypatch.setenv("OIDC_SOCK", path)
    try:
        c = cr.OIDCAgentToken("myaccount")
        assert c.get_auth_header() == "Bearer tok1"
        assert c.get_auth_header() == "Bearer tok1"
        assert requests_seen == [{"request": "access_token", "account": "myaccount"}]
    finally:
        srv.close()


def test_oidc_agent_missing_socket(monkeypatch):
    monkeypatch.delenv("OIDC_SOCK", raising=False)
    with pytest.raises(OSError, match="OIDC_SOCK"):
        cr.OIDCAgentToken("x").get_token()


# -- OIDC server (password + refresh grants) -----------------------------------------------------
def test_oidc_server_token_grants_and_store(tmp_path, monkeypatch):
    calls: list[dict[str, Any]] = []

    class Res:
        def __init__(self, body):
            self.status_code = 200
            self.reason = "OK"
            self._body = body

        def json(self):
            return self._body

        def __enter__(self):
            return self

        def __exit__(self, *a):
            pass

    def fake_post(url, data=None, headers=None, timeout=None):
        calls.append(dict(data))
        return Res({"access_token": f"acc{len(calls)}", "refresh_token": "ref", "expires_in": 300})

    import requests

    monkeypatch.setattr(requests, "post", fake_post)
    store = tmp_path / "sub" / "refresh-tokens"
    cfg = {"oidc.endpoint": "https://idp/token", "oidc.username": "u", "oidc.password": "p",
           "oidc.clientID": "cid", "oidc.clientSecret": "cs", "oidc.refreshTokenFile": str(store)}
    c = cr.OIDCServerToken(cfg)
    assert c.get_auth_header() == "Bearer acc1"
    assert c.get_auth_header() == "Bearer acc1"  # no grant per request
    assert calls[0]["grant_type"] == "password" and calls[0]["client_id"] == "cid"
    assert json.loads(store.read_text()) == {"https://idp/token": {"refresh_token": "ref"}}
    assert oct(store.stat().st_mode & 0o777) == "0o600"
    c2 = cr.OIDCServerToken(dict(cfg, **{"oidc.authentication": "BASIC"}))
    assert c2.refresh_token == "ref"
    assert c2.get_token() == "acc2" and calls[1]["grant_type"] == "refresh_token"
    assert "client_id" not in calls[1]


def test_default_refresh_token_file_path(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    c = cr.OIDCServerToken({"oidc.endpoint": "https://idp/token"})
    assert c._token_file() == os.path.join(str(tmp_path), ".ucc", "refresh-tokens")  # PyUNICORE lacked the '/'
