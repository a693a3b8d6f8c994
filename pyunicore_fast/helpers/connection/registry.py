"""Connecting to a registry, and to a site found in a registry."""

from __future__ import annotations

import logging
from typing import Any

import pyunicore_fast.client as _client
from pyunicore_fast.helpers.connection import site as _site
from pyunicore_fast.helpers.connection._security import resolve_security

logger = logging.getLogger(__name__)


def connect_to_registry(registry_url: str, credential: Any = None, *, authentication: Any = None,
                        credentials: Any = None) -> _client.Registry:
    """A :class:`~pyunicore_fast.client.Registry` for ``registry_url``."""
    security = resolve_security(credential, authentication=authentication, credentials=credentials)
    logger.info("Attempting to connect to registry %s", registry_url)
    return _client.Registry(security, registry_url)


def connect_to_site_from_registry(registry_url: str, site_name: str, credential: Any = None, *,
                                  authentication: Any = None, credentials: Any = None) -> _client.Client:
    """A :class:`~pyunicore_fast.client.Client` for the site ``site_name`` of a registry
    (``ValueError`` listing the available sites if it is not registered)."""
    security = resolve_security(credential, authentication=authentication, credentials=credentials)
    registry = _client.Registry(security, registry_url)
    try:
        site_api_url = registry.site_urls[site_name]
    except KeyError:
        available = ", ".join(registry.site_urls)
        raise ValueError(f"Site {site_name} not available in registry {registry_url}. "
                         f"Available sites: {available}.") from None
    return _site.connect_to_site(site_api_url, registry.transport)
