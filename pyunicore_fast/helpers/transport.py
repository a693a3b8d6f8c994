"""``helpers.create_transport``."""

from __future__ import annotations

from typing import Any

import pyunicore_fast.client as _client
from pyunicore_fast.helpers.connection._security import resolve_security


def create_transport(authentication: Any, **transport_options: Any) -> _client.Transport:
    """A :class:`~pyunicore_fast.client.Transport` for an Authentication (or Credential);
    ``transport_options`` (``verify``, ``timeout``, ...) go to the Transport."""
    security = resolve_security(authentication)
    if isinstance(security, _client.Transport):
        return security
    return _client.Transport(security, **transport_options)
