"""The core base resource (``GET BASE``), tokens, the certificate, factories, sites, applications.

``GET BASE`` is the first call of every client: it tells the caller who the server thinks
they are (role ``user`` or ``anonymous``, Unix login, groups) and links every service.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from pyunicore_fast.testing.common import filter_fields, iso_time, link, page, parse_time
from pyunicore_fast.testing.jobs import APPLICATIONS, RESOURCES
from pyunicore_fast.testing.routing import HTTPError, Request, Response, Router

if TYPE_CHECKING:
    from pyunicore_fast.testing.context import SiteContext

FACTORY_ID = "default_target_system_factory"


def register(router: Router, ctx: SiteContext) -> None:
    core = f"/{ctx.site_name}/rest/core"
    jm = ctx.jobs

    def resources() -> dict[str, Any]:
        return {q: dict(RESOURCES) for q in ctx.queues}

    def applications() -> list[str]:
        return [f"{name}---v{version}" for name, versions in APPLICATIONS.items()
                for version in versions]

    def base(req: Request) -> Response:
        c = ctx.core_url
        links = {name: link(f"{c}/{name}") for name in (
            "factories", "sites", "jobs", "reservations", "storages", "storagefactories",
            "transfers", "client-server-transfers")}
        links["self"] = link(c)
        props = {"client": ctx.authenticator.client_info(req.identity, ctx.queues),
                 "server": ctx.server_info(), "_links": links}
        return Response.json(filter_fields(props, req))

    def certificate(req: Request) -> Response:
        if ctx.certificate is None:
            return Response.no_content()
        return Response.text(ctx.certificate.pem())

    # -- factories ---------------------------------------------------------------------
    factory_url = f"{ctx.core_url}/factories/{FACTORY_ID}"

    def list_factories(req: Request) -> Response:
        ctx.require(req.identity)
        chosen, links = page([factory_url], f"{ctx.core_url}/factories", req)
        return Response.json({"factories": chosen, "_links": links})

    def check_factory(fid: str) -> None:
        if unquote(fid) != FACTORY_ID:
            raise HTTPError(404)

    def get_factory(req: Request, fid: str) -> Response:
        ctx.require(req.identity)
        check_factory(fid)
        props = {
            "siteName": ctx.site_name,
            "supportsReservation": "false",
            "resources": resources(),
            "applications": applications(),
            "otherInfo": {"emulator": "pyunicore_fast.testing"},
            "remainingComputeTime": {},
            "owner": ctx.server_dn, "acl": [], "tags": [],
            "_links": {"self": link(factory_url), "sites": link(f"{ctx.core_url}/sites"),
                       "applications": link(factory_url + "/applications")},
        }
        return Response.json(filter_fields(props, req))

    def create_site(req: Request, fid: str) -> Response:
        ctx.require(req.identity)
        check_factory(fid)
        params = req.json({}) or {}
        tt = params.get("terminationTime")
        sid = jm.create_site(req.identity, parse_time(str(tt)) if tt else None)
        return Response.created(f"{ctx.core_url}/sites/{sid}")

    def list_apps(req: Request, fid: str) -> Response:
        ctx.require(req.identity)
        check_factory(fid)
        return Response.json({"applications": applications(),
                              "_links": {"self": link(factory_url + "/applications")}})

    def get_app(req: Request, fid: str, app: str) -> Response:
        ctx.require(req.identity)
        check_factory(fid)
        name, _, version = unquote(app).partition("---v")
        defn = APPLICATIONS.get(name, {}).get(version)
        if defn is None:
            raise HTTPError(404)
        return Response.json({"ApplicationName": name, "ApplicationVersion": version,
                              "ApplicationDescription": defn["Description"],
                              "Options": defn["Options"],
                              "_links": {"self": link(f"{factory_url}/applications/{app}")}})

    # -- sites (target systems) --------------------------------------------------------
    def list_sites(req: Request) -> Response:
        ctx.require(req.identity)
        urls = [f"{ctx.core_url}/sites/{sid}" for sid in jm.sites_for(req.identity)]
        chosen, links = page(urls, f"{ctx.core_url}/sites", req)
        return Response.json({"sites": chosen, "_links": links})

    def post_sites(req: Request) -> Response:
        ctx.require(req.identity)
        req.drain()
        sid = jm.create_site(req.identity)
        return Response.created(f"{ctx.core_url}/sites/{sid}")

    def get_site(req: Request, sid: str) -> Response:
        ctx.require(req.identity)
        site = jm.site(sid, req.identity)
        url = f"{ctx.core_url}/sites/{sid}"
        props: dict[str, Any] = {
            "siteName": ctx.site_name,
            "umask": "077",
            "supportsReservation": "false",
            "numberOfJobs": len(jm.list_for(req.identity, [], site_id=sid)),
            "resources": resources(),
            "applications": applications(),
            "owner": req.identity.dn, "acl": [], "tags": [],
            "submissionTime": iso_time(site["created"]),
            "_links": {"self": link(url), "jobs": link(url + "/jobs"),
                       "applications": link(factory_url + "/applications"),
                       "parent": link(factory_url),
                       "storage:HOME": link(f"{ctx.core_url}/storages/HOME")},
        }
        if site.get("terminationTime"):
            props["terminationTime"] = iso_time(site["terminationTime"])
        return Response.json(filter_fields(props, req))

    def submit_to_site(req: Request, sid: str) -> Response:
        ctx.require(req.identity)
        jm.site(sid, req.identity)
        job = jm.submit(req.identity, req.json({}), site_id=sid)
        return Response.created(jm.url(job))

    def delete_site(req: Request, sid: str) -> Response:
        ctx.require(req.identity)
        jm.site(sid, req.identity)
        jm.delete_site(sid)
        return Response.no_content()

    def site_jobs(req: Request, sid: str) -> Response:
        ctx.require(req.identity)
        jm.site(sid, req.identity)
        urls = [jm.url(j) for j in jm.list_for(req.identity, [], site_id=sid)]
        chosen, links = page(urls, f"{ctx.core_url}/sites/{sid}/jobs", req, default_num=100)
        return Response.json({"jobs": chosen, "_links": links})

    def reservations(req: Request) -> Response:
        ctx.require(req.identity)
        chosen, links = page([], f"{ctx.core_url}/reservations", req)
        return Response.json({"reservations": chosen, "_links": links})

    router.add("GET", core + "/?", base, anonymous=True)
    router.add("GET", core + "/token", ctx.issue_token)
    router.add("GET", core + "/certificate", certificate, anonymous=True)
    router.add("GET", core + "/factories/?", list_factories)
    f = core + r"/factories/(?P<fid>[^/]+)"
    router.add("GET", f, get_factory)
    router.add("POST", f, create_site)
    router.add("GET", f + "/applications/?", list_apps)
    router.add("GET", f + r"/applications/(?P<app>[^/]+)", get_app)
    router.add("GET", core + "/sites/?", list_sites)
    router.add("POST", core + "/sites/?", post_sites)
    s = core + r"/sites/(?P<sid>[^/]+)"
    router.add("GET", s, get_site)
    router.add("POST", s, submit_to_site)
    router.add("DELETE", s, delete_site)
    router.add("GET", s + "/jobs/?", site_jobs)
    router.add("GET", core + "/reservations/?", reservations)
