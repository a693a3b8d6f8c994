"""The service registry: ``/<REG>/rest/registries/default_registry`` (§11.1).

Lists this site's services as ``CoreServices``/``WorkflowServices``/… entries (``Endpoint``
renamed to ``href``, ``InterfaceName`` to ``type``, as upstream) plus whatever other
emulated sites were added with :meth:`EmbeddedSite.add_registry_entry`, so several sites can
form a small grid.  Reading needs no authentication; writing needs role ``server``.

Note that PyUNICORE's ``Registry`` only recognises ``https://`` hrefs: start the site with
``tls=True`` when a real PyUNICORE client reads the registry.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from pyunicore_fast.testing.common import link, page
from pyunicore_fast.testing.routing import HTTPError, Request, Response, Router

if TYPE_CHECKING:
    from pyunicore_fast.testing.context import SiteContext

REGISTRY_ID = "default_registry"


class Registry:
    """Static entries for this site plus externally added ones."""

    def __init__(self, ctx: SiteContext):
        self.ctx = ctx
        self.extra: list[dict[str, Any]] = []

    def own_entries(self) -> list[dict[str, Any]]:
        c = self.ctx
        common = {"InterfaceNamespace": "https://www.unicore.eu/rest", "ServerIdentity": c.server_dn}
        if c.certificate is not None:
            common["ServerPublicKey"] = c.certificate.pem()
        entries = [
            {"href": c.core_url, "type": "CoreServices", **common},
            {"href": c.workflows_url, "type": "WorkflowServices", **common},
            {"href": f"{c.core_url}/factories/default_target_system_factory",
             "type": "TargetSystemFactory", **common},
            {"href": f"{c.core_url}/storagefactories/default_storage_factory",
             "type": "StorageFactory", **common},
        ]
        if c.uftp is not None:
            entries.append({"href": c.auth_url, "type": "UFTPAuthServer", **common})
        return entries

    def entries(self) -> list[dict[str, Any]]:
        now = time.time()
        self.extra = [e for e in self.extra if e.get("_expires", now + 1) > now]
        return self.own_entries() + [{k: v for k, v in e.items() if not k.startswith("_")}
                                     for e in self.extra]

    def add(self, content: dict[str, Any], lifetime: float = 1800.0) -> None:
        entry = dict(content)
        if "Endpoint" in entry:
            entry["href"] = entry.pop("Endpoint")
        if "InterfaceName" in entry:
            entry["type"] = entry.pop("InterfaceName")
        entry["_expires"] = time.time() + lifetime
        self.extra = [e for e in self.extra if e.get("href") != entry.get("href")] + [entry]


def register(router: Router, ctx: SiteContext, registry: Registry) -> None:
    names = {ctx.registry_name, ctx.site_name}

    def registry_url(name: str) -> str:
        return f"{ctx.server_url}/{name}/rest/registries"

    def list_registries(req: Request, site: str) -> Response:
        if site not in names:
            raise HTTPError(404)
        chosen, links = page([f"{registry_url(site)}/{REGISTRY_ID}"], registry_url(site), req)
        return Response.json({"registries": chosen, "_links": links,
                              "client": ctx.authenticator.client_info(req.identity),
                              "server": ctx.server_info()})

    def get_registry(req: Request, site: str, rid: str) -> Response:
        if site not in names or rid != REGISTRY_ID:
            raise HTTPError(404)
        url = f"{registry_url(site)}/{REGISTRY_ID}"
        return Response.json({"entries": registry.entries(), "owner": ctx.server_dn, "acl": [],
                              "tags": [], "_links": {"self": link(url)}})

    def post_entry(req: Request, site: str, rid: str) -> Response:
        if site not in names or rid != REGISTRY_ID:
            raise HTTPError(404)
        if req.identity.anonymous or req.identity.role != "server":
            raise HTTPError(403)
        content = req.json({}) or {}
        if not content.get("Endpoint"):
            raise HTTPError(400, "Registry entry needs an 'Endpoint'")
        registry.add(content)
        resp = Response.created(f"{registry_url(site)}/{REGISTRY_ID}")
        resp.headers["X-UNICORE-Lifetime"] = "1800"
        return resp

    router.add("GET", r"/(?P<site>[^/]+)/rest/registries/?", list_registries, anonymous=True)
    router.add("GET", r"/(?P<site>[^/]+)/rest/registries/(?P<rid>[^/]+)", get_registry, anonymous=True)
    router.add("POST", r"/(?P<site>[^/]+)/rest/registries/(?P<rid>[^/]+)", post_entry, anonymous=True)
