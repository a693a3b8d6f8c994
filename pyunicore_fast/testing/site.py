"""``EmbeddedSite``: a complete UNICORE site on loopback, for tests and demos.

One HTTP(S) server serves the core services, the workflow service, the registry and the
UFTP Auth endpoint under ``<scheme>://127.0.0.1:<port>/<SITE>/rest/...`` (the layout of the
``unicore-testing-all`` image used by PyUNICORE's integration tests), next to a UFTPD from
``uftpcore.server``.  Jobs run as local processes below a temporary root directory.

    with EmbeddedSite(tls=True) as site:
        client = pyunicore.client.Client(site.credentials("demouser"), site.core_url)
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterable
from typing import Any

from pyunicore_fast.testing import core, jobs, registry, storages, transfers, uftp, workflows
from pyunicore_fast.testing.auth import Authenticator, UserAccount
from pyunicore_fast.testing.context import KNOWN_CERTIFICATES, SiteContext
from pyunicore_fast.testing.files import MetadataStore
from pyunicore_fast.testing.routing import EmbeddedHTTPServer, HTTPError, Request, Response, Router

log = logging.getLogger(__name__)

DEFAULT_USERS = {"demouser": "test123", "otheruser": "test456"}


class EmbeddedSite:
    """A UNICORE site emulator (context manager).

    Args:
        users: user name → password (default ``demouser``/``test123`` and ``otheruser``/``test456``).
        tokens: opaque Bearer token → user name (default: one random token per user).
        tls: serve ``https://`` with a freshly generated self-signed certificate.
        site_name, registry_name, uftp_server_name: URL path names.
        root_dir: where homes, job directories and storages live (default: a new temp dir,
            removed on exit).
        uftp: start a UFTPD + Auth endpoint (``None`` = if ``uftpcore.server`` is importable).
        groups: user → list of Unix groups (first = default group).
        no_login_users: users who authenticate but have no Unix login.
        public_keys: user → list of public keys for SSH-key JWT authentication.
        session_lifetime: security session lifetime in seconds.
        queue_delay: seconds batch jobs stay QUEUED; allocation_delay: seconds until an
            allocation's batch id replaces its ``INTERACTIVE_`` placeholder.
    """

    def __init__(self, users: dict[str, str] | None = None, tokens: dict[str, str] | None = None, *,
                 tls: bool = False, host: str = "127.0.0.1", port: int = 0,
                 site_name: str = "DEMO-SITE", registry_name: str = "REGISTRY",
                 uftp_server_name: str = "TEST", root_dir: str | None = None,
                 uftp: bool | None = None, groups: dict[str, list[str]] | None = None,
                 no_login_users: Iterable[str] = (), public_keys: dict[str, list[str]] | None = None,
                 server_version: str = "10.2.0", session_lifetime: float = 300.0,
                 use_security_sessions: bool = True, queues: list[str] | None = None,
                 queue_delay: float = 0.0, allocation_delay: float = 0.3):
        if "-" in uftp_server_name:
            raise ValueError("UFTP server names may not contain '-'")
        self.users: dict[str, str] = dict(DEFAULT_USERS if users is None else users)
        self.tokens: dict[str, str] = dict(tokens) if tokens is not None else {
            f"token-{u}-{secrets.token_hex(8)}": u for u in self.users}
        self._tls = tls
        self._host = host
        self._port = port
        self._own_root = root_dir is None
        self._root = root_dir or tempfile.mkdtemp(prefix="unicore-site-")
        no_login = set(no_login_users)
        groups = groups or {}
        public_keys = public_keys or {}
        accounts = {
            name: UserAccount(name=name, password=pw, groups=list(groups.get(name, [])),
                              has_login=name not in no_login,
                              public_keys=list(public_keys.get(name, [])))
            for name, pw in self.users.items()
        }
        authenticator = Authenticator(accounts, self.tokens, server_dn=f"CN={site_name},O=UNICORE,C=EU",
                                      session_lifetime=session_lifetime,
                                      use_sessions=use_security_sessions)
        self.ctx = SiteContext(site_name=site_name, registry_name=registry_name,
                               uftp_server_name=uftp_server_name, root_dir=self._root,
                               server_version=server_version, queues=queues or ["batch", "devel"],
                               queue_delay=queue_delay, allocation_delay=allocation_delay,
                               authenticator=authenticator, metadata=MetadataStore())
        self._want_uftp = uftp
        self._server: EmbeddedHTTPServer | None = None
        self.registry: registry.Registry | None = None
        self.router = Router()

    # -- life cycle -----------------------------------------------------------------------
    def start(self) -> EmbeddedSite:
        ctx = self.ctx
        ssl_context = None
        if self._tls:
            from pyunicore_fast.testing import tls

            ctx.certificate = tls.generate(os.path.join(self._root, ".tls"))
            ssl_context = ctx.certificate.server_context()
        self._server = EmbeddedHTTPServer(self._host, self._port, self._handle, ssl_context)
        ctx.server_url = self._server.url
        if ctx.certificate is not None:
            KNOWN_CERTIFICATES[ctx.server_url] = ctx.certificate.cert_file
        if ctx.certificate is not None:
            ctx.authenticator.max_token_lifetime = \
                ctx.certificate.not_after.timestamp() - __import__("time").time()
        ctx.storages = storages.StorageManager(ctx)
        ctx.jobs = jobs.JobManager(ctx)
        ctx.transfers = transfers.TransferManager(ctx)
        ctx.workflows = workflows.WorkflowManager(ctx)
        if self._want_uftp is not False:
            try:
                backend = uftp.UFTPBackend(ctx)
                backend.start()
                ctx.uftp = backend
            except ImportError as exc:
                if self._want_uftp:
                    raise
                log.info("UFTP disabled: %s", exc)
        self.registry = registry.Registry(ctx)
        core.register(self.router, ctx)
        jobs.register(self.router, ctx)
        transfers.register(self.router, ctx)  # before storages: more specific storage paths
        storages.register(self.router, ctx)
        workflows.register(self.router, ctx)
        uftp.register(self.router, ctx)
        registry.register(self.router, ctx, self.registry)
        self._server.start()
        log.info("EmbeddedSite %s listening at %s (root %s)", ctx.site_name, ctx.server_url, self._root)
        return self

    def stop(self) -> None:
        ctx = self.ctx
        if self._server is not None:
            self._server.stop()
            self._server = None
            KNOWN_CERTIFICATES.pop(ctx.server_url, None)
        for manager in (ctx.workflows, ctx.transfers, ctx.jobs):
            if manager is not None:
                manager.shutdown()
        if ctx.uftp is not None:
            ctx.uftp.stop()
            ctx.uftp = None
        if self._own_root:
            shutil.rmtree(self._root, ignore_errors=True)

    def __enter__(self) -> EmbeddedSite:  # noqa: PYI034 - typing.Self needs Python 3.11
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- request entry point ---------------------------------------------------------------
    def _handle(self, req: Request) -> Response:
        route, params = self.router.match(req.method, req.raw_path)
        if not route.public:
            req.identity = self.ctx.authenticator.authenticate(req.headers, req.reply_headers)
            if req.identity.anonymous and not route.anonymous:
                raise HTTPError(403)
        return route.handler(req, **{k: v for k, v in params.items()})

    # -- public API -----------------------------------------------------------------------
    @property
    def url(self) -> str:
        """``scheme://127.0.0.1:port`` of the HTTP(S) server."""
        return self.ctx.server_url

    @property
    def port(self) -> int:
        return self._server.port if self._server else 0

    @property
    def site_name(self) -> str:
        return self.ctx.site_name

    @property
    def core_url(self) -> str:
        return self.ctx.core_url

    @property
    def registry_url(self) -> str:
        return self.ctx.registry_url

    @property
    def workflows_url(self) -> str:
        return self.ctx.workflows_url

    @property
    def auth_url(self) -> str:
        """The UFTP Auth endpoint, ``.../<SITE>/rest/auth/<UFTP server name>``."""
        return self.ctx.auth_url

    @property
    def auth_base_url(self) -> str:
        return self.ctx.auth_base_url

    @property
    def root_dir(self) -> str:
        return self._root

    @property
    def tls(self) -> bool:
        return self._tls

    @property
    def cert_file(self) -> str | None:
        """PEM of the self-signed server certificate (``verify=`` for strict clients)."""
        return self.ctx.certificate.cert_file if self.ctx.certificate else None

    @property
    def uftpd(self) -> Any:
        """The running ``uftpcore.server.UFTPD`` (None without UFTP)."""
        return self.ctx.uftp.uftpd if self.ctx.uftp else None

    def home_dir(self, user: str) -> str:
        """Local folder behind storage ``HOME`` for ``user``."""
        path = os.path.join(self._root, "home", self.ctx.authenticator.accounts[user].uid)
        os.makedirs(path, exist_ok=True)
        return path

    def token_for(self, user: str) -> str:
        """A static Bearer token of ``user``."""
        for token, owner in self.tokens.items():
            if owner == user:
                return token
        raise KeyError(user)

    def basic_auth(self, user: str) -> tuple[str, str]:
        """``(user, password)`` for ``requests``' ``auth=``."""
        return user, self.users[user]

    def credentials(self, user: str = "demouser", flavour: str = "auto") -> Any:
        """A username/password credential object for ``user``.

        ``flavour="pyunicore_fast"`` or ``"pyunicore"`` picks the package; ``"auto"`` prefers
        ``pyunicore_fast.credentials`` and falls back to ``pyunicore.credentials``.
        """
        password = self.users[user]
        candidates = {"auto": ("pyunicore_fast.credentials", "pyunicore.credentials"),
                      "pyunicore_fast": ("pyunicore_fast.credentials",),
                      "pyunicore": ("pyunicore.credentials",)}[flavour]
        last: Exception | None = None
        for module_name in candidates:
            try:
                module = __import__(module_name, fromlist=["UsernamePassword"])
                return module.UsernamePassword(user, password)
            except (ImportError, AttributeError) as exc:
                last = exc
        raise ImportError(f"no credentials module available ({last})")

    def expire_sessions(self) -> None:
        """Invalidate every security session (the next session request gets 432)."""
        self.ctx.authenticator.expire_sessions()

    def set_job_submission(self, enabled: bool, message: str = "") -> None:
        """Switch job submission off (503) or on, as ``server.jobSubmission.enabled`` does."""
        self.ctx.flags["job_submission_enabled"] = enabled
        self.ctx.flags["job_submission_message"] = message

    def add_registry_entry(self, href: str, type: str, **extra: Any) -> None:
        """Publish another service (e.g. a second EmbeddedSite's core URL) in the registry."""
        assert self.registry is not None, "start the site first"
        self.registry.add({"Endpoint": href, "InterfaceName": type, **extra})

    def __repr__(self) -> str:
        return f"EmbeddedSite({self.ctx.site_name!r}, {self.ctx.server_url or 'not started'})"
