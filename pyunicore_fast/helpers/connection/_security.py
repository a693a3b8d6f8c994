"""One rule for "what did the caller pass as credentials" in every connection helper."""

from __future__ import annotations

from typing import Any

import pyunicore_fast.client as _client
from pyunicore_fast import credentials as _credentials


def resolve_security(credential: Any = None, *, authentication: Any = None, credentials: Any = None) -> Any:
    """A Credential or Transport from any of the spellings PyUNICORE and its README used:
    ``credential=`` (1.3), ``credentials=`` (1.1) or ``authentication=`` (README helpers),
    each a Credential, a Transport, or a ``UserAuthentication``/``TokenAuthentication``."""
    given = [x for x in (credential, authentication, credentials) if x is not None]
    if len(given) != 1:
        raise TypeError("give exactly one of credential, authentication or credentials")
    value = given[0]
    if isinstance(value, (_credentials.Credential, _client.Transport)):
        return value
    to_credential = getattr(value, "to_credential", None)
    if callable(to_credential):
        return to_credential()
    raise TypeError(f"cannot authenticate with a {type(value).__name__}")
