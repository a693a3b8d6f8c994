"""Storages backed by local folders and the ``files`` REST API on top of them.

Storage kinds, as on a typical site:

* ``HOME``: one resource whose mount point is the *caller's* home folder
  (``<root>/home/<uid>``) — the same URL shows every user their own files;
* ``SHARED``: one folder all users may read and write;
* ``<jobid>-uspace``: a job's working directory, visible to the job owner only and hidden
  from ``GET /storages`` unless ``filter=all``;
* storages made by the storage factory (``POST /storages``), owned by their creator.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote, urlsplit

from pyunicore_fast.testing import files as fs
from pyunicore_fast.testing.common import (
    filter_fields,
    has_tags,
    iso_time,
    link,
    page,
    parse_tags,
    parse_time,
)
from pyunicore_fast.testing.routing import FileBody, HTTPError, Request, Response, Router

if TYPE_CHECKING:
    from pyunicore_fast.testing.auth import Identity
    from pyunicore_fast.testing.context import SiteContext

log = logging.getLogger(__name__)

FACTORY_ID = "default_storage_factory"


@dataclass
class Storage:
    """One storage resource; ``root`` may contain ``{uid}`` (per-user mount point)."""

    id: str
    kind: str
    root: str
    owner: str | None = None
    job_id: str | None = None
    description: str = ""
    umask: str = "077"
    tags: list[str] = field(default_factory=list)
    acl: list[str] = field(default_factory=list)
    termination_time: float | None = None
    created: float = field(default_factory=time.time)
    from_factory: bool = False

    def root_for(self, identity: Identity) -> str:
        if "{uid}" in self.root:
            uid = identity.uid
            if uid is None:
                raise HTTPError(403)
            path = self.root.replace("{uid}", uid)
            os.makedirs(path, exist_ok=True)
            return path
        return self.root


class StorageManager:
    """All storages of the site and the access rules between users and storages."""

    def __init__(self, ctx: SiteContext):
        self.ctx = ctx
        self._storages: dict[str, Storage] = {}
        home = os.path.join(ctx.root_dir, "home", "{uid}")
        shared = os.path.join(ctx.root_dir, "shared")
        os.makedirs(shared, exist_ok=True)
        self.add(Storage("HOME", "HOME", home, description="User's home"))
        self.add(Storage("SHARED", "SHARED", shared, description="Shared storage"))

    # -- registry of storages -----------------------------------------------------------
    def add(self, storage: Storage) -> Storage:
        with self.ctx.lock:
            self._storages[storage.id] = storage
        return storage

    def remove(self, sid: str) -> None:
        with self.ctx.lock:
            self._storages.pop(sid, None)

    def url(self, storage: Storage | str) -> str:
        sid = storage if isinstance(storage, str) else storage.id
        return f"{self.ctx.core_url}/storages/{sid}"

    def file_url(self, storage: Storage | str, rel_path: str) -> str:
        return self.url(storage) + "/files" + quote(fs.normalize(rel_path).rstrip("/") or "", safe="/")

    def accessible(self, storage: Storage, identity: Identity) -> bool:
        if identity is None or identity.anonymous or identity.uid is None:
            return False
        if storage.owner is None:
            return True
        return storage.owner == identity.user or identity.dn in storage.acl or \
            (identity.uid in storage.acl)

    def get(self, sid: str, identity: Identity) -> Storage:
        """The storage ``sid`` if the caller may use it: 404 unknown, 403 not allowed."""
        with self.ctx.lock:
            storage = self._storages.get(sid)
        if storage is None:
            raise HTTPError(404)
        if identity is not None and not identity.anonymous and identity.uid is None:
            raise HTTPError(401, f"Access denied: no Unix login available for '{identity.dn}'")
        if not self.accessible(storage, identity):
            raise HTTPError(403)
        return storage

    def list_for(self, identity: Identity, include_job_dirs: bool) -> list[Storage]:
        with self.ctx.lock:
            all_storages = list(self._storages.values())
        out = [s for s in all_storages if self.accessible(s, identity)]
        if not include_job_dirs:
            out = [s for s in out if s.kind != "JOB"]
        return out

    def create_job_storage(self, job_id: str, owner: str, path: str) -> Storage:
        return self.add(Storage(f"{job_id}-uspace", "JOB", path, owner=owner, job_id=job_id,
                                description=f"Working directory of job {job_id}"))

    def create_storage(self, identity: Identity, params: dict[str, Any]) -> Storage:
        """What the storage factory does: a fresh folder owned by the caller."""
        sid = str(uuid.uuid4())
        path = params.get("path") or os.path.join(self.ctx.root_dir, "storages", sid)
        os.makedirs(path, exist_ok=True)
        storage = Storage(sid, "FACTORY", path, owner=identity.user, from_factory=True,
                          description=str(params.get("name") or params.get("description") or ""))
        storage.tags = parse_tags(params.get("tags") or params.get("Tags"))
        if params.get("terminationTime"):
            storage.termination_time = parse_time(str(params["terminationTime"]))
        return self.add(storage)

    def resolve_url(self, url: str, identity: Identity) -> tuple[Storage, str, str] | None:
        """For a UNICORE file URL on this site: ``(storage, local path, storage path)``.

        Returns None for URLs of other servers; access rules apply as for REST calls.
        """
        if not self.ctx.is_local_url(url):
            return None
        path = urlsplit(url).path
        marker = f"/{self.ctx.site_name}/rest/core/storages/"
        if not path.startswith(marker):
            return None
        rest = path[len(marker):]
        sid, _, tail = rest.partition("/")
        if tail != "files" and not tail.startswith("files/"):
            return None
        rel = unquote(tail[len("files"):]) or "/"
        storage = self.get(unquote(sid), identity)
        abs_path, rel = fs.resolve(storage.root_for(identity), rel)
        return storage, abs_path, rel

    # -- rendering ----------------------------------------------------------------------
    def properties(self, storage: Storage, identity: Identity) -> dict[str, Any]:
        root = storage.root_for(identity)
        try:
            usage = shutil.disk_usage(root)
            free, usable = usage.free, usage.free
        except OSError:
            free = usable = -1
        protocols = ["BFT"] + (["UFTP"] if self.ctx.uftp is not None else [])
        props: dict[str, Any] = {
            "resourceStatus": "READY",
            "resourceStatusMessage": "N/A",
            "protocols": protocols,
            "umask": storage.umask,
            "description": storage.description,
            "metadataSupported": True,
            "mountPoint": root,
            "filesystemDescription": storage.kind,
            "freeSpace": free,
            "usableSpace": usable,
            "owner": self._owner_dn(storage),
            "acl": list(storage.acl),
            "tags": list(storage.tags),
        }
        if storage.termination_time:
            props["terminationTime"] = iso_time(storage.termination_time)
        url = self.url(storage)
        links = {
            "self": link(url),
            "files": link(url + "/files"),
            "action:copy": link(url + "/actions/copy"),
            "action:rename": link(url + "/actions/rename"),
        }
        if storage.job_id:
            links["job"] = link(f"{self.ctx.core_url}/jobs/{storage.job_id}")
        if storage.from_factory:
            links["factory"] = link(f"{self.ctx.core_url}/storagefactories/{FACTORY_ID}")
        props["_links"] = links
        return props

    def _owner_dn(self, storage: Storage) -> str:
        if storage.owner and storage.owner in self.ctx.authenticator.accounts:
            return self.ctx.authenticator.accounts[storage.owner].dn
        return self.ctx.server_dn


# ----------------------------------------------------------------------------------------
# REST routes
# ----------------------------------------------------------------------------------------
def register(router: Router, ctx: SiteContext) -> None:
    core = f"/{ctx.site_name}/rest/core"
    sm = ctx.storages

    def storage_of(req: Request, sid: str) -> Storage:
        return sm.get(unquote(sid), req.identity)

    def list_storages(req: Request) -> Response:
        ctx.require(req.identity)
        include_all = req.query_value("filter") == "all"
        tags = parse_tags(req.query_value("tags"))
        items = [s for s in sm.list_for(req.identity, include_all) if has_tags(s.tags, tags)]
        urls = [sm.url(s) for s in items]
        extra = {k: v for k, v in (("filter", req.query_value("filter")),
                                    ("tags", req.query_value("tags"))) if v}
        chosen, links = page(urls, f"{ctx.core_url}/storages", req, extra_query=extra)
        return Response.json({"storages": chosen, "_links": links})

    def create_storage(req: Request) -> Response:
        ctx.require(req.identity)
        req.identity.require_login()
        params = req.json({}) or {}
        if not isinstance(params, dict):
            raise HTTPError(400, "Expected a JSON object")
        storage = sm.create_storage(req.identity, params)
        return Response.created(sm.url(storage))

    def get_storage(req: Request, sid: str) -> Response:
        storage = storage_of(req, sid)
        return Response.json(filter_fields(sm.properties(storage, req.identity), req))

    def put_storage(req: Request, sid: str) -> Response:
        storage = storage_of(req, sid)
        params = req.json({}) or {}
        result: dict[str, str] = {}
        for key, value in params.items():
            if key == "umask":
                try:
                    int(str(value), 8)
                    storage.umask = str(value)
                    result[key] = "OK"
                except ValueError:
                    result[key] = f"Invalid umask '{value}'"
            elif key == "description":
                storage.description = str(value)[:256]
                result[key] = "OK"
            elif key in ("tags", "Tags"):
                storage.tags = parse_tags(value)
                result[key] = "OK"
            elif key == "acl":
                if storage.owner != req.identity.user:
                    result[key] = "Only the owner may change the ACL"
                else:
                    storage.acl = [str(a) for a in value]
                    result[key] = "OK"
            elif key == "terminationTime":
                try:
                    storage.termination_time = parse_time(str(value))
                    result[key] = "OK"
                except ValueError as exc:
                    result[key] = str(exc)
            else:
                result[key] = "Property not found or cannot be modified!"
        return Response.json(result)

    def delete_storage(req: Request, sid: str) -> Response:
        storage = storage_of(req, sid)
        if storage.owner != req.identity.user:
            raise HTTPError(403)
        if storage.kind == "JOB":
            raise HTTPError(500, "Job working directories are removed together with their job")
        sm.remove(storage.id)
        if storage.from_factory:
            shutil.rmtree(storage.root, ignore_errors=True)
        return Response.no_content()

    # -- files -------------------------------------------------------------------------
    def locate(req: Request, sid: str, path: str | None) -> tuple[Storage, str, str]:
        storage = storage_of(req, sid)
        abs_path, rel = fs.resolve(storage.root_for(req.identity), unquote(path or "/"))
        return storage, abs_path, rel

    def get_file(req: Request, sid: str, path: str | None = None) -> Response:
        storage, abs_path, rel = locate(req, sid, path)
        if not os.path.exists(abs_path):
            raise HTTPError(404, f"File {rel} not found on storage {storage.id}")
        if req.accepts("application/octet-stream"):
            return _download(req, abs_path)
        owner, group = req.identity.uid, req.identity.group
        props = fs.file_properties(abs_path, owner, group, ctx.metadata)
        links = {"parentStorage": link(sm.url(storage))}
        headers = {}
        if props["isDirectory"]:
            default_num = 10000 if rel == "/" else 50000
            entries = fs.list_directory(abs_path, rel)
            base = sm.file_url(storage, rel)
            chosen, page_links = page(entries, base, req, default_num=default_num)
            props["content"] = {
                key: fs.file_properties(p, owner, group, ctx.metadata, st)
                for key, p, st in chosen
            }
            links.update(page_links)
        else:
            headers["Accept-Ranges"] = "bytes"
        props["_links"] = links
        return Response.json(filter_fields(props, req), headers=headers)

    def _download(req: Request, abs_path: str) -> Response:
        if os.path.isdir(abs_path):
            raise HTTPError(406)
        size = os.path.getsize(abs_path)
        ctype = ctx.metadata.get(abs_path).get("Content-Type") or "application/octet-stream"
        headers = {"Content-Type": ctype, "Accept-Ranges": "bytes"}
        range_header = req.header("Range")
        if range_header:
            offset, length = fs.parse_range(range_header, size)
            headers["Content-Range"] = f"bytes {offset}-{offset + length - 1}/{size}"
            return Response(206, FileBody(abs_path, offset, length), headers)
        return Response(200, FileBody(abs_path, 0, size), headers)

    def put_file(req: Request, sid: str, path: str | None = None) -> Response:
        _, abs_path, rel = locate(req, sid, path)
        if req.content_type == "application/json":
            return _modify_file(req, abs_path, rel)
        if rel == "/" or os.path.isdir(abs_path):
            raise HTTPError(500, f"Cannot upload to '{rel}': it is a directory")
        os.makedirs(os.path.dirname(abs_path), exist_ok=True)
        with open(abs_path, "wb") as f:
            f.writelines(req.iter_body())
        ctype = req.content_type
        if ctype and ctype != "application/octet-stream":
            ctx.metadata.update(abs_path, **{"Content-Type": req.header("Content-Type") or ctype})
        return Response.no_content()

    def _modify_file(req: Request, abs_path: str, rel: str) -> Response:
        if not os.path.exists(abs_path):
            raise HTTPError(404, f"File {rel} not found")
        params = req.json({}) or {}
        result: dict[str, str] = {}
        for key, value in params.items():
            if key in ("permissions", "unixPermissions"):
                try:
                    mode = fs.parse_permissions(str(value), os.stat(abs_path).st_mode)
                    os.chmod(abs_path, mode)
                    result[key] = "OK"
                except (ValueError, OSError) as exc:
                    result[key] = f"FAILED: {exc}"
            elif key == "group":
                if value in req.identity.account.groups:
                    ctx.metadata.set_group(abs_path, str(value))
                    result[key] = "OK"
                else:
                    result[key] = f"FAILED: group '{value}' is not available"
            elif key == "metadata":
                if not isinstance(value, dict):
                    result[key] = "FAILED: metadata must be a JSON object"
                else:
                    ctx.metadata.set(abs_path, {str(k): str(v) for k, v in value.items()})
                    result[key] = "OK"
            else:
                result[key] = "Property not found or cannot be modified!"
        return Response.json(result)

    def mkdir(req: Request, sid: str, path: str | None = None) -> Response:
        storage, abs_path, rel = locate(req, sid, path)
        req.drain()
        if os.path.exists(abs_path) and not os.path.isdir(abs_path):
            raise HTTPError(500, f"Cannot create directory '{rel}': a file of that name exists")
        os.makedirs(abs_path, exist_ok=True)
        return Response.created(sm.file_url(storage, rel))

    def delete_file(req: Request, sid: str, path: str | None = None) -> Response:
        storage, abs_path, rel = locate(req, sid, path)
        if rel == "/":
            raise HTTPError(500, "Cannot delete the root directory of a storage")
        if not os.path.lexists(abs_path):
            raise HTTPError(404, f"File {rel} not found on storage {storage.id}")
        fs.remove_path(abs_path)
        ctx.metadata.forget(abs_path)
        return Response.no_content()

    def action(req: Request, sid: str, name: str) -> Response:
        storage = storage_of(req, sid)
        if name not in ("rename", "copy"):
            raise HTTPError(404)
        params = req.json({}) or {}
        src, dst = params.get("from"), params.get("to")
        if not src or not dst:
            raise HTTPError(400, "Parameters 'from' and 'to' are required")
        root = storage.root_for(req.identity)
        src_abs, src_rel = fs.resolve(root, str(src))
        dst_abs, _ = fs.resolve(root, str(dst))
        if not os.path.lexists(src_abs):
            raise HTTPError(500, f"File {src_rel} not found on storage {storage.id}")
        os.makedirs(os.path.dirname(dst_abs), exist_ok=True)
        if name == "rename":
            os.replace(src_abs, dst_abs) if not os.path.isdir(dst_abs) else \
                shutil.move(src_abs, dst_abs)
            ctx.metadata.move(src_abs, dst_abs)
        else:
            fs.copy_path(src_abs, dst_abs)
        return Response.no_content()

    # -- storage factory ---------------------------------------------------------------
    factory_url = f"{ctx.core_url}/storagefactories/{FACTORY_ID}"

    def list_factories(req: Request) -> Response:
        ctx.require(req.identity)
        chosen, links = page([factory_url], f"{ctx.core_url}/storagefactories", req)
        return Response.json({"storagefactories": chosen, "_links": links})

    def get_factory(req: Request, fid: str) -> Response:
        ctx.require(req.identity)
        if fid != FACTORY_ID:
            raise HTTPError(404)
        return Response.json(filter_fields({
            "storageDescriptions": {"DEFAULT": {"description": "Folder-backed storage",
                                                "parameters": {"path": "optional local path"}}},
            "owner": ctx.server_dn, "acl": [], "tags": [],
            "_links": {"self": link(factory_url), "storages": link(f"{ctx.core_url}/storages")},
        }, req))

    def post_factory(req: Request, fid: str) -> Response:
        if fid != FACTORY_ID:
            raise HTTPError(404)
        return create_storage(req)

    s = core + r"/storages/(?P<sid>[^/]+)"
    router.add("GET", core + "/storages/?", list_storages)
    router.add("POST", core + "/storages/?", create_storage)
    router.add("GET", s, get_storage)
    router.add("PUT", s, put_storage)
    router.add("DELETE", s, delete_storage)
    router.add("POST", s + r"/actions/(?P<name>[^/]+)", action)
    files = s + r"/files(?P<path>/.*)?"
    router.add("GET", files, get_file)
    router.add("PUT", files, put_file)
    router.add("POST", files, mkdir)
    router.add("DELETE", files, delete_file)
    router.add("GET", core + "/storagefactories/?", list_factories)
    router.add("GET", core + r"/storagefactories/(?P<fid>[^/]+)", get_factory)
    router.add("POST", core + r"/storagefactories/(?P<fid>[^/]+)", post_factory)
