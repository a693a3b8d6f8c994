"""Connecting to a site's core API with an explicit login check."""

from __future__ import annotations

import logging
from typing import Any

import pyunicore_fast.client as _client
from pyunicore_fast.credentials import AuthenticationFailedException
from pyunicore_fast.helpers.connection._security import resolve_security

logger = logging.getLogger(__name__)


def connect_to_site(site_api_url: str, credential: Any = None, *, authentication: Any = None,
                    credentials: Any = None) -> _client.Client:
    """A :class:`~pyunicore_fast.client.Client` for ``site_api_url``.

    Raises ``AuthenticationFailedException`` if the server grants no Unix login (``xlogin``)
    or sees us as anonymous.
    """
    security = resolve_security(credential, authentication=authentication, credentials=credentials)
    logger.info("Attempting to connect to %s", site_api_url)
    client = _client.Client(security, site_api_url)
    if _authentication_failed(client):
        raise AuthenticationFailedException(
            "Check if user and password are correct, and if the cluster name and registry URL are correct.")
    logger.info("Successfully connected to %s", site_api_url)
    return client


def _authentication_failed(client: _client.Client) -> bool:
    info = client.properties.get("client", {})
    return not info.get("xlogin")
