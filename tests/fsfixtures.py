"""Fixtures of the fsspec and PyFilesystem2 driver tests: an Auth server in front of the suite's UFTPD.

Loaded by the ``test_fsspec_*``/``test_pyfs_*`` modules with ``pytest_plugins`` so that the
shared ``conftest.py`` stays untouched; constants and URL helpers are in ``tests.fsconfig``.  The Auth server accepts:

* ``demouser``/``test123`` (HTTP Basic),
* the static bearer token ``tok-123``,
* JWTs signed with the test's RSA key for ``keyuser`` (the UNICORE SSHKEY authenticator: the
  JWT subject names the user, the signature is checked against that user's public key).
"""

from __future__ import annotations

import contextlib
from typing import Any

import pytest

from tests.fsconfig import KEY_PASSPHRASE, KEY_USER, PASSWORD, TOKEN, USER
from uftpcore.server import AuthServer


class KeyAuthServer(AuthServer):
    """AuthServer that also accepts JWTs signed with a registered user key (RS256/ES256/EdDSA)."""

    def __init__(self, *args: Any, public_keys: dict[str, Any] | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.public_keys = public_keys or {}
        self.jwt_logins = 0

    def user_for_token(self, token: str) -> str | None:
        user = super().user_for_token(token)
        if user is not None or token.count(".") != 2:
            return user
        import jwt

        try:
            subject = jwt.decode(token, options={"verify_signature": False}).get("sub")
            key = self.public_keys.get(subject)
            if key is None:
                return None
            claims = jwt.decode(token, key, algorithms=["RS256", "ES256", "EdDSA"])
        except jwt.PyJWTError:
            return None
        self.jwt_logins += 1
        return claims["sub"]


@pytest.fixture(scope="session")
def rsa_identity(tmp_path_factory):
    """(path of an encrypted OpenSSH private key, its public key object)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path_factory.mktemp("keys") / "id_rsa"
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.BestAvailableEncryption(KEY_PASSPHRASE.encode())))
    return str(path), key.public_key()


@contextlib.contextmanager
def _auth_server(uftpd, rsa_identity, tls=False):
    with KeyAuthServer(uftpd, host="127.0.0.1", port=0, users={USER: PASSWORD}, tokens={TOKEN: USER},
                       server_name="TEST", public_keys={KEY_USER: rsa_identity[1]}, tls=tls) as auth:
        yield auth


@pytest.fixture(scope="session")
def auth(uftpd, rsa_identity):
    """Plain-http Auth server (``auth.url`` = ``http://127.0.0.1:P/rest/auth/TEST``)."""
    with _auth_server(uftpd, rsa_identity) as a:
        yield a


@pytest.fixture(scope="session")
def tls_auth(uftpd, rsa_identity):
    """Auth server over https with a self-signed certificate (``tls_auth.cert_file``)."""
    with _auth_server(uftpd, rsa_identity, tls=True) as a:
        yield a


@pytest.fixture
def fs(auth):
    """A fresh (uncached) UFTPFileSystem on the plain-http Auth server."""
    from pyunicore_fast.uftp.fsspec_impl import UFTPFileSystem

    fsys = UFTPFileSystem(auth.url, username=USER, password=PASSWORD, skip_instance_cache=True)
    yield fsys
    fsys.close()
