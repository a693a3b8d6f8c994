"""An embedded UNICORE site emulator for tests: ``EmbeddedSite``.

Core services (jobs as local processes, folder-backed storages, transfers), workflows, the
registry and a UFTP Auth endpoint backed by ``uftpcore.server.UFTPD``, on loopback over
HTTP or HTTPS.  See :class:`EmbeddedSite`.
"""

from pyunicore_fast.testing.site import DEFAULT_USERS, EmbeddedSite

__all__ = ["DEFAULT_USERS", "EmbeddedSite"]
