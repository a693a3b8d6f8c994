"""UFTP for the emulated site: a ``uftpcore.server.UFTPD`` plus the Auth-server endpoint.

The UFTPD runs on its own loopback ports (it speaks FTP, not HTTP).  The Auth-server REST
endpoints are mounted *inside* the site's URL space, ``<server>/<SITE>/rest/auth[/<NAME>]``,
as when the authserver jar is installed in a UNICORE/X, so that one base URL, one TLS
certificate and one set of credentials/sessions/tokens serve everything:

* ``GET .../rest/auth`` — the info document (§11.2) rendered here with this site's identity;
* ``POST .../rest/auth/<NAME>`` — authenticated here (Basic, Bearer, security session,
  preferences), then forwarded to ``uftpcore.server.AuthServer`` (running on a private
  loopback port) with the resolved user's credentials; its reply is passed through.  If
  ``AuthServer`` is unavailable, or the session is rooted outside the emulator tree (it then
  needs exclude patterns protecting the other users' folders), the request is served
  directly with ``UFTPD.add_job``;
* ``GET .../rest/auth/token`` — a delegation token, as ``GET BASE/token``.

Storage ``exports``/``imports`` with protocol UFTP (uftp spec §1.7) call :meth:`add_job`.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
from typing import TYPE_CHECKING, Any

from pyunicore_fast.testing.common import as_bool
from pyunicore_fast.testing.routing import HTTPError, Request, Response, Router

if TYPE_CHECKING:
    from pyunicore_fast.testing.auth import Identity
    from pyunicore_fast.testing.context import SiteContext

log = logging.getLogger(__name__)

MULTI_FILE_TAG = "___UFTP___MULTI___FILE___SESSION___MODE___"


class UFTPBackend:
    """Owns the UFTPD (and, when available, the AuthServer) of one emulated site."""

    host = "127.0.0.1"

    def __init__(self, ctx: SiteContext, max_streams: int = 4, max_connections: int = 64):
        from uftpcore.server import UFTPD  # ImportError → the site runs without UFTP

        self.ctx = ctx
        self.version = "3.5.3"
        self.uftpd = UFTPD(host=self.host, port=0, cmd_host=self.host, cmd_port=0,
                           max_streams=max_streams, max_connections=max_connections,
                           job_timeout=300.0, version=self.version)
        self.auth_server: Any = None

    def start(self) -> None:
        self.uftpd.start()
        try:
            from uftpcore.server import AuthServer
        except ImportError:
            log.info("uftpcore.server.AuthServer not available: serving Auth requests directly")
            return
        accounts = self.ctx.authenticator.accounts
        self.auth_server = AuthServer(
            self.uftpd, host=self.host, port=0,
            users={a.name: a.password for a in accounts.values() if a.password and a.has_login},
            tokens={}, server_name=self.ctx.uftp_server_name,
            home_dirs={a.name: self.home_dir(a.uid) for a in accounts.values() if a.has_login})
        self.auth_server.start()

    def stop(self) -> None:
        if self.auth_server is not None:
            try:
                self.auth_server.stop()
            except Exception:
                log.exception("stopping the AuthServer failed")
        try:
            self.uftpd.stop()
        except Exception:
            log.exception("stopping the UFTPD failed")

    @property
    def listen_port(self) -> int:
        return int(self.uftpd.port)

    def home_dir(self, uid: str) -> str:
        path = os.path.join(self.ctx.root_dir, "home", uid)
        os.makedirs(path, exist_ok=True)
        return path

    def add_job(self, identity: Identity, base_dir: str, client_ip: str, secret: str, *,
                persistent: bool = False, streams: int = 1, key: bytes | None = None,
                algo: str | None = None, compress: bool = False, group: str | None = None,
                excludes: list[str] | None = None) -> tuple[str, int]:
        """Register a UFTPD session rooted at ``base_dir``; returns ``(host, port)``."""
        account = identity.require_login()
        file = base_dir if base_dir.endswith("/") else base_dir + "/"
        port = self.uftpd.add_job(
            secret=secret, user=account.uid, file=file, client_ip=client_ip,
            persistent=persistent, streams=max(1, streams),
            key=key,
            algo=(algo or "BLOWFISH") if key is not None else None, compress=compress,
            group=group or identity.group, excludes=excludes or self.excludes_for(base_dir))
        return self.host, int(port or self.listen_port)

    # -- server path policy ---------------------------------------------------------------
    def excludes_for(self, base_dir: str) -> list[str]:
        """A session rooted *outside* the emulator tree must not reach into it.

        (The UFTPD serves files as the OS user running the tests; the emulated users'
        homes and job directories all live below ``root_dir``.)  Sessions rooted inside
        the tree are already confined to one storage folder of the caller.
        """
        root = os.path.realpath(self.ctx.root_dir)
        real = os.path.realpath(base_dir)
        if real == root or real.startswith(root + os.sep):
            return []
        return [root, root + "/*"]

    def resolve_server_path(self, identity: Identity, server_path: str) -> str:
        """``serverPath`` → local base directory (with the multi-file tag rules of §1.4).

        ``""`` and relative paths are relative to the user's home; absolute paths are
        taken as they are, but a user may not reach into other users' areas of the emulator.
        """
        from pyunicore_fast.testing.staging import _local_path_allowed

        account = identity.require_login()
        path = server_path
        if path == MULTI_FILE_TAG:
            path = ""
        elif os.path.basename(path.rstrip("/")) == MULTI_FILE_TAG:
            path = os.path.dirname(path.rstrip("/")) or "."
        home = self.home_dir(account.uid)
        full = os.path.normpath(os.path.join(home, path)) if not path.startswith("/") else \
            os.path.normpath(path)
        if not _local_path_allowed(self.ctx, identity, full):
            raise HTTPError(500, f"UFTPD server '{self.ctx.uftp_server_name}': "
                                 f"ERROR::Access denied to '{server_path}'")
        return full


def register(router: Router, ctx: SiteContext) -> None:
    base = f"/{ctx.site_name}/rest/auth"

    def info(req: Request) -> Response:
        doc: dict[str, Any] = {"client": ctx.authenticator.client_info(req.identity),
                               "server": ctx.server_info()}
        backend = ctx.uftp
        if backend is not None:
            entry: dict[str, Any] = {
                "href": ctx.auth_url, "description": "Embedded UFTPD server",
                "status": "OK", "uftpdServerVersion": backend.version,
                "dataSharing": {"enabled": False},
            }
            if not req.identity.anonymous and req.identity.uid:
                entry.update({"uid": req.identity.uid, "gid": req.identity.group,
                              "availableGroups": list(req.identity.account.groups)})
            doc[ctx.uftp_server_name] = entry
        return Response.json(doc)

    def authenticate(req: Request, name: str) -> Response:
        backend = ctx.uftp
        server = name.split("-")[0]
        if backend is None or server != ctx.uftp_server_name:
            raise HTTPError(404, f"No such server: '{name}', please check your URL")
        identity = req.identity
        if identity.anonymous:
            raise HTTPError(401, "Not authenticated")
        if identity.uid is None:
            raise HTTPError(401, f"No Unix login available for '{identity.dn}'")
        raw = req.body()
        try:
            body = json.loads(raw or b"{}")
        except ValueError as exc:
            raise HTTPError(400, f"Could not parse JSON request body: {exc}") from exc
        if not isinstance(body, dict) or body.get("serverPath") is None:
            raise HTTPError(500, "Request must contain 'serverPath'")
        group = body.get("group")
        if group and group not in identity.account.groups:
            raise HTTPError(400, f"Requested group '{group}' is not available")
        base_dir = backend.resolve_server_path(identity, str(body["serverPath"]))
        if backend.auth_server is not None and not backend.excludes_for(base_dir):
            return _forward(req, backend, name, body, base_dir)
        # no AuthServer, or per-session exclude patterns it cannot express: add the job here
        return _direct(req, backend, body, base_dir)

    router.add("GET", base + "/?", info, anonymous=True)
    router.add("GET", base + "/token", ctx.issue_token)
    router.add("POST", base + r"/(?P<name>[^/]+)", authenticate, anonymous=True)


def _direct(req: Request, backend: UFTPBackend, body: dict[str, Any], base_dir: str) -> Response:
    """Serve an Auth request with ``UFTPD.add_job`` (same reply as the AuthServer's)."""
    from pyunicore_fast.testing.transfers import random_secret

    key = None
    if body.get("encryptionKey"):
        try:
            key = base64.b64decode(str(body["encryptionKey"]))
        except (ValueError, binascii.Error) as exc:
            raise HTTPError(400, f"Invalid encryptionKey: {exc}") from exc
    secret = random_secret()
    client = str(body.get("client") or req.client_ip).replace(" ", ",")
    host, port = backend.add_job(req.identity, base_dir, client, secret,
                                 persistent=as_bool(body.get("persistent")),
                                 streams=int(body.get("streamCount") or 1), key=key,
                                 algo=str(body.get("encryptionAlgorithm") or "BLOWFISH").upper()
                                 if key else None,
                                 compress=as_bool(body.get("compress")), group=body.get("group"))
    return Response.json({"success": True, "reason": "", "serverHost": host, "serverPort": port,
                          "secret": secret})


def _forward(req: Request, backend: UFTPBackend, name: str, body: dict[str, Any],
             base_dir: str) -> Response:
    """Pass the request to the AuthServer as the already authenticated user."""
    import requests

    account = req.identity.account
    body = dict(body)
    body["serverPath"] = base_dir.rstrip("/") + "/"
    body.setdefault("client", req.client_ip)
    if req.identity.group and not body.get("group"):
        body["group"] = req.identity.group
    url = f"{backend.auth_server.base_url}/{name}"
    try:
        resp = requests.post(url, json=body, auth=(account.name, account.password or ""),
                             headers={"Accept": "application/json"}, timeout=30)
    except requests.RequestException as exc:
        raise HTTPError(503, f"UFTP Auth server unavailable: {exc}") from exc
    ctype = resp.headers.get("Content-Type", "application/json")
    return Response(resp.status_code, resp.content, {"Content-Type": ctype})
