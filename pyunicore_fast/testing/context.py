"""The state one emulated site shares between its modules (configuration, URLs, managers).

Every feature module (jobs, storages, transfers, workflows, registry, UFTP) receives this
object instead of importing the others, so the dependency graph stays flat and each module
can be read on its own.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from pyunicore_fast.testing.auth import Authenticator, Identity
    from pyunicore_fast.testing.files import MetadataStore
    from pyunicore_fast.testing.jobs import JobManager
    from pyunicore_fast.testing.routing import Request, Response
    from pyunicore_fast.testing.storages import StorageManager
    from pyunicore_fast.testing.tls import SelfSignedCertificate
    from pyunicore_fast.testing.transfers import TransferManager
    from pyunicore_fast.testing.uftp import UFTPBackend
    from pyunicore_fast.testing.workflows import WorkflowManager


#: server URL → certificate file of every TLS EmbeddedSite running in this process, so that
#: server-to-server calls between emulated sites verify certificates like a real grid would.
KNOWN_CERTIFICATES: dict[str, str] = {}


def verify_for(url: str) -> bool | str:
    """``verify=`` for an internal HTTPS call: a known emulator certificate, else no check."""
    parts = urlsplit(url)
    if parts.scheme != "https":
        return True
    host = "127.0.0.1" if parts.hostname == "localhost" else parts.hostname
    return KNOWN_CERTIFICATES.get(f"https://{host}:{parts.port}", False)


@dataclass
class SiteContext:
    """Configuration and shared managers of one EmbeddedSite."""

    site_name: str
    registry_name: str
    uftp_server_name: str
    root_dir: str
    server_version: str
    queues: list[str]
    queue_delay: float
    allocation_delay: float
    authenticator: Authenticator
    metadata: MetadataStore
    server_url: str = ""
    certificate: SelfSignedCertificate | None = None
    start_time: float = field(default_factory=time.time)
    lock: threading.RLock = field(default_factory=threading.RLock)
    storages: StorageManager = None  # type: ignore[assignment]
    jobs: JobManager = None  # type: ignore[assignment]
    transfers: TransferManager = None  # type: ignore[assignment]
    workflows: WorkflowManager = None  # type: ignore[assignment]
    uftp: UFTPBackend | None = None
    #: EmbeddedSite-level extras (e.g. ``job_submission_enabled``) toggled by tests.
    flags: dict[str, Any] = field(default_factory=dict)

    # -- URLs -------------------------------------------------------------------------
    @property
    def core_url(self) -> str:
        return f"{self.server_url}/{self.site_name}/rest/core"

    @property
    def workflows_url(self) -> str:
        return f"{self.server_url}/{self.site_name}/rest/workflows"

    @property
    def registry_url(self) -> str:
        return f"{self.server_url}/{self.registry_name}/rest/registries/default_registry"

    @property
    def auth_base_url(self) -> str:
        return f"{self.server_url}/{self.site_name}/rest/auth"

    @property
    def auth_url(self) -> str:
        return f"{self.auth_base_url}/{self.uftp_server_name}"

    @property
    def server_dn(self) -> str:
        return self.authenticator.server_dn

    def is_local_url(self, url: str) -> bool:
        """True if ``url`` points at this emulated server (same scheme-less host:port)."""
        a, b = urlsplit(url), urlsplit(self.server_url)
        return a.hostname in ("127.0.0.1", "localhost", b.hostname) and a.port == b.port

    def server_info(self) -> dict[str, Any]:
        """The ``server`` map of base resources."""
        from pyunicore_fast.testing.common import iso_time

        cred: dict[str, Any] = {"dn": self.server_dn, "issuer": self.server_dn}
        if self.certificate is not None:
            cred["expires"] = iso_time(self.certificate.not_after)
        return {
            "siteName": self.site_name,
            "version": self.server_version,
            "upSince": iso_time(self.start_time),
            "currentTime": iso_time(),
            "credential": cred,
            "trustedCAs": [self.server_dn],
            "trustedSAMLIssuers": [],
            "externalConnections": {"TSI": "OK",
                                    **({f"UFTPD {self.uftp_server_name}": "OK"} if self.uftp else {})},
            "jobSubmission": {"enabled": bool(self.flags.get("job_submission_enabled", True)),
                              "message": self.flags.get("job_submission_message", "")},
        }

    def require(self, identity: Identity) -> None:
        """Deny anonymous callers the way access control does (empty 403)."""
        from pyunicore_fast.testing.routing import HTTPError

        if identity is None or identity.anonymous:
            raise HTTPError(403)

    def issue_token(self, req: Request) -> Response:
        """``GET /token``: the core services and the UFTP auth server issue delegation tokens
        with the same parameters (``lifetime``, ``renewable``, ``limited``) and rules."""
        from pyunicore_fast.testing.common import as_bool
        from pyunicore_fast.testing.routing import HTTPError, Response

        self.require(req.identity)
        lifetime = req.query_value("lifetime")
        try:
            seconds = float(lifetime) if lifetime else None
        except ValueError as exc:
            raise HTTPError(400, f"Invalid lifetime '{lifetime}'") from exc
        return Response.text(self.authenticator.issue_token(
            req.identity, seconds, renewable=as_bool(req.query_value("renewable")),
            limited=as_bool(req.query_value("limited"))))
