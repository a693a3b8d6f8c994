"""Connection helpers of PyUNICORE 1.x (``pyunicore.helpers.connection``, removed in 2.0)."""

from pyunicore_fast.helpers.connection.registry import connect_to_registry, connect_to_site_from_registry
from pyunicore_fast.helpers.connection.site import AuthenticationFailedException, connect_to_site

__all__ = [
           "AuthenticationFailedException",
           "connect_to_registry",
           "connect_to_site",
           "connect_to_site_from_registry",
]
