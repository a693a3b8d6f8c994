"""Constants and helpers of the fsspec / PyFilesystem2 driver tests (the fixtures are in ``fsfixtures``).

Kept apart from the fixtures module so that test modules can import these names while pytest
loads ``tests.fsfixtures`` as a plugin (``pytest_plugins``) with assertion rewriting.
"""

from __future__ import annotations

import secrets

USER, PASSWORD, TOKEN = "demouser", "test123", "tok-123"
KEY_USER, KEY_PASSPHRASE = "keyuser", "s3cret-key"


def hostpart(auth_server) -> str:
    """``127.0.0.1:P/rest/auth/TEST`` (the Auth URL without scheme)."""
    return auth_server.url.split("://", 1)[1]


def http_url(auth_server, path: str, user: str = USER, password: str = PASSWORD) -> str:
    """``uftp+http://user:pw@127.0.0.1:P/rest/auth/TEST:<path>``."""
    return f"uftp+http://{user}:{password}@{hostpart(auth_server)}:{path}"


def unique(prefix: str = "f") -> str:
    return f"{prefix}-{secrets.token_hex(4)}"
