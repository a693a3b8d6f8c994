"""Server-to-server transfers (§9) and client-server transfers (storage imports/exports, §8.4).

Server-to-server: ``POST <storage>/transfers`` with ``source`` (pull) or ``target`` (push),
run in a background thread with status CREATED → RUNNING → DONE/FAILED/ABORTED and a
growing ``transferredBytes``.  Protocol ``BFT`` (the default) moves data over HTTP(S) — for
URLs of this site directly on disk, for other emulated sites with a delegation token —
and ``UFTP`` asks the remote storage for a UFTP export/import and moves the bytes with
``uftpcore``, as UNICORE/X does.

Client-server: ``POST <storage>/imports|exports`` returns 200 + ``Location`` and either a
BFT ``accessURL`` or the UFTPD host/port of a fresh UFTP session (the storage acting as a
UFTP authenticator, uftp spec §1.7).
"""

from __future__ import annotations

import base64
import logging
import os
import posixpath
import secrets
import string
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from pyunicore_fast.testing import files as fs
from pyunicore_fast.testing import staging
from pyunicore_fast.testing.auth import Identity
from pyunicore_fast.testing.common import (
    as_bool,
    filter_fields,
    has_tags,
    has_wildcard,
    iso_time,
    link,
    owned_entries,
    owned_entry,
    page,
    parse_tags,
    parse_time,
)
from pyunicore_fast.testing.context import verify_for
from pyunicore_fast.testing.routing import FileBody, HTTPError, Request, Response, Router

if TYPE_CHECKING:
    from pyunicore_fast.testing.context import SiteContext
    from pyunicore_fast.testing.storages import Storage

log = logging.getLogger(__name__)


class _TransferAborted(Exception):
    pass


@dataclass
class Transfer:
    """A server-to-server transfer."""

    id: str
    owner: str
    identity: Identity
    storage: Storage
    file: str
    remote: str
    protocol: str
    is_export: bool
    extra: dict[str, Any]
    tags: list[str]
    status: str = "CREATED"
    status_message: str = ""
    transferred: int = 0
    size: int = -1
    files: dict[str, str] = field(default_factory=dict)
    scheduled: float | None = None
    created: float = field(default_factory=time.time)
    abort_event: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass
class ClientTransfer:
    """A client-server transfer: a BFT access URL or a UFTP session on one storage file."""

    id: str
    owner: str
    storage: Storage
    root: str
    file: str
    protocol: str
    is_export: bool
    extra: dict[str, Any]
    transferred: int = 0
    created: float = field(default_factory=time.time)


def random_secret() -> str:
    """20 lower-case letters, like the Auth server's one-time passwords."""
    return "".join(secrets.choice(string.ascii_lowercase) for _ in range(20))


class TransferManager:
    """Both kinds of transfers of the site."""

    def __init__(self, ctx: SiteContext):
        self.ctx = ctx
        self._transfers: dict[str, Transfer] = {}
        self._client: dict[str, ClientTransfer] = {}

    # -- server-to-server ---------------------------------------------------------------
    def url(self, t: Transfer | str) -> str:
        return f"{self.ctx.core_url}/transfers/{t if isinstance(t, str) else t.id}"

    def get(self, tid: str, identity: Identity) -> Transfer:
        return owned_entry(self.ctx.lock, self._transfers, tid, identity)

    def list_for(self, identity: Identity, tags: list[str]) -> list[Transfer]:
        return [t for t in owned_entries(self.ctx.lock, self._transfers, identity)
                if has_tags(t.tags, tags)]

    def create(self, identity: Identity, storage: Storage, params: dict[str, Any]) -> Transfer:
        file = params.get("file")
        source, target = params.get("source"), params.get("target")
        if not file or bool(source) == bool(target):
            raise HTTPError(500, "Transfer needs 'file' and exactly one of 'source' or 'target'")
        remote = str(source or target)
        proto, url = staging.split_protocol(remote)
        protocol = str(params.get("protocol") or proto or "BFT").upper()
        if protocol not in ("BFT", "UFTP"):
            raise HTTPError(500, f"Protocol '{protocol}' is not supported, available: BFT, UFTP")
        if protocol == "UFTP" and self.ctx.uftp is None:
            raise HTTPError(500, "Protocol 'UFTP' is not available (no UFTPD), available: BFT")
        if not staging.is_unicore_file_url(url):
            raise HTTPError(500, f"Remote location '{url}' is not a UNICORE storage file URL")
        extra = dict(params.get("extraParameters") or {})
        t = Transfer(id=str(uuid.uuid4()), owner=identity.user or "", identity=identity,
                     storage=storage, file=str(file), remote=url, protocol=protocol,
                     is_export=bool(target), extra=extra,
                     tags=parse_tags(params.get("tags") or params.get("Tags")))
        if extra.get("scheduledStartTime"):
            try:
                t.scheduled = parse_time(str(extra["scheduledStartTime"]))
            except ValueError as exc:
                raise HTTPError(500, str(exc)) from exc
        with self.ctx.lock:
            self._transfers[t.id] = t
        t.thread = threading.Thread(target=self._run, args=(t,), daemon=True, name=f"transfer-{t.id[:8]}")
        t.thread.start()
        return t

    def abort(self, t: Transfer) -> None:
        t.abort_event.set()

    def delete(self, t: Transfer) -> None:
        self.abort(t)
        with self.ctx.lock:
            self._transfers.pop(t.id, None)

    def shutdown(self) -> None:
        with self.ctx.lock:
            items = list(self._transfers.values())
        for t in items:
            t.abort_event.set()

    def _progress(self, t: Transfer) -> staging.Progress:
        def cb(n: int) -> None:
            if t.abort_event.is_set():
                raise _TransferAborted()
            with t.lock:
                t.transferred += n
        return cb

    def _run(self, t: Transfer) -> None:
        try:
            if t.scheduled and t.abort_event.wait(max(0.0, t.scheduled - time.time())):
                raise _TransferAborted()
            if t.abort_event.is_set():
                raise _TransferAborted()
            with t.lock:
                t.status = "RUNNING"
            root = t.storage.root_for(t.identity)
            local, _ = fs.resolve(root, t.file)
            if t.is_export:
                t.size = _local_size(local)
                result = self._push(t, local)
            else:
                if os.path.isdir(local) and not has_wildcard(posixpath.basename(urlsplit(t.remote).path)):
                    local = os.path.join(local, posixpath.basename(unquote(urlsplit(t.remote).path)))
                result = self._pull(t, local)
            with t.lock:
                t.files = {k: "DONE" for k in result}
                if t.size < 0:
                    t.size = sum(result.values())
                t.status = "DONE"
                t.status_message = ""
        except _TransferAborted:
            with t.lock:
                t.status, t.status_message = "ABORTED", "Aborted by the user"
        except Exception as exc:  # noqa: BLE001 - any failure is reported in the status
            log.info("transfer %s failed: %s", t.id, exc)
            with t.lock:
                t.status, t.status_message = "FAILED", f"Transfer failed: {exc}"

    def _pull(self, t: Transfer, local: str) -> dict[str, int]:
        if t.protocol == "UFTP":
            return self._uftp(t, local, download=True)
        return staging.fetch(self.ctx, t.identity, t.remote, local, progress=self._progress(t))

    def _push(self, t: Transfer, local: str) -> dict[str, int]:
        if t.protocol == "UFTP":
            return self._uftp(t, local, download=False)
        return staging.push(self.ctx, t.identity, local, t.remote, progress=self._progress(t))

    def _uftp(self, t: Transfer, local: str, download: bool) -> dict[str, int]:
        """Ask the remote storage for a UFTP session on the file's directory, then move bytes."""
        import requests

        import uftpcore

        path = urlsplit(t.remote).path
        storage_path, _, remote_rel = path.partition("/files")
        remote_rel = unquote(remote_rel) or "/"
        scheme_host = t.remote[: t.remote.index(path)] if path else t.remote
        secret = random_secret()
        headers = staging._auth_headers(self.ctx, t.identity, None)
        endpoint = scheme_host + storage_path + ("/exports" if download else "/imports")
        body = {"file": posixpath.dirname(remote_rel.rstrip("/")) + "/" if has_wildcard(remote_rel)
                else remote_rel, "protocol": "UFTP",
                "extraParameters": {"uftp.secret": secret, "uftp.client.host": "127.0.0.1",
                                    "uftp.persistent": "true"}}
        resp = requests.post(endpoint, json=body, headers=headers, verify=verify_for(endpoint), timeout=60)
        if resp.status_code >= 300:
            raise staging.StagingError(f"UFTP negotiation with {endpoint} failed: HTTP {resp.status_code}")
        info = resp.json()
        host, port = str(info["uftp.server.host"]), int(info["uftp.server.port"])
        progress = self._progress(t)
        out: dict[str, int] = {}
        with uftpcore.connect(host, port, secret) as session:
            name = posixpath.basename(remote_rel.rstrip("/"))
            if download:
                if has_wildcard(name):
                    os.makedirs(local, exist_ok=True)
                    for info_ in session.listdir("."):
                        fname = getattr(info_, "name", str(info_))
                        if staging.wildcard_match(fname, name) and not getattr(info_, "is_dir", False):
                            out[fname] = session.download(fname, os.path.join(local, fname),
                                                          progress=progress)
                else:
                    os.makedirs(os.path.dirname(local) or ".", exist_ok=True)
                    out[name] = session.download(name, local, progress=progress)
            else:
                if os.path.isdir(local):
                    raise staging.StagingError("UFTP push of directories is not supported")
                out[local] = session.upload(local, name, progress=progress)
        return out

    def properties(self, t: Transfer) -> dict[str, Any]:
        local_url = self.ctx.storages.file_url(t.storage, t.file)
        with t.lock:
            props = {
                "status": t.status, "statusMessage": t.status_message,
                "transferredBytes": t.transferred, "size": t.size,
                "source": local_url if t.is_export else t.remote,
                "target": t.remote if t.is_export else local_url,
                "protocol": t.protocol, "isExport": t.is_export,
                "files": dict(t.files), "owner": t.identity.dn, "acl": [], "tags": list(t.tags),
                "submissionTime": iso_time(t.created),
            }
        if t.scheduled:
            props["scheduledStartTime"] = iso_time(t.scheduled)
        url = self.url(t)
        props["_links"] = {"self": link(url), "storage": link(self.ctx.storages.url(t.storage)),
                           # not published by the real server; PyUNICORE's Transfer.abort needs it
                           "action:abort": link(url + "/actions/abort")}
        return props

    # -- client-server ------------------------------------------------------------------
    def client_url(self, ct: ClientTransfer | str) -> str:
        return f"{self.ctx.core_url}/client-server-transfers/{ct if isinstance(ct, str) else ct.id}"

    def get_client(self, tid: str, identity: Identity) -> ClientTransfer:
        return owned_entry(self.ctx.lock, self._client, tid, identity)

    def create_client(self, req: Request, storage: Storage, is_export: bool) -> Response:
        params = req.json({}) or {}
        file = params.get("file")
        if not file:
            raise HTTPError(500, "Parameter 'file' is required")
        protocol = str(params.get("protocol") or "BFT").upper()
        available = ["BFT"] + (["UFTP"] if self.ctx.uftp is not None else [])
        if protocol not in available:
            raise HTTPError(500, f"Protocol '{protocol}' is not supported, available: "
                                 f"{', '.join(available)}")
        extra = {str(k): v for k, v in (params.get("extraParameters") or {}).items()}
        root = storage.root_for(req.identity)
        ct = ClientTransfer(str(uuid.uuid4()), req.identity.user or "", storage, root, str(file),
                            protocol, is_export, extra)
        _, rel = fs.resolve(root, ct.file)
        body: dict[str, Any] = {"protocol": protocol, "parent": self.ctx.storages.url(storage),
                                "isExport": is_export, "fileName": rel}
        if protocol == "BFT":
            body["accessURL"] = self.client_url(ct) + "/data"
            if not is_export and as_bool(params.get("overwrite"), True) is False and \
                    os.path.exists(fs.resolve(root, ct.file)[0]):
                raise HTTPError(500, f"File '{rel}' exists and overwrite is false")
        else:
            body.update(self._uftp_session(req, ct, root, rel))
        with self.ctx.lock:
            self._client[ct.id] = ct
        return Response.json(body, 200, {"Location": self.client_url(ct)})

    def _uftp_session(self, req: Request, ct: ClientTransfer, root: str, rel: str) -> dict[str, Any]:
        assert self.ctx.uftp is not None
        e = ct.extra
        secret = str(e.get("uftp.secret") or "")
        generated = not secret
        secret = secret or random_secret()
        client_ip = str(e.get("uftp.client.host") or req.client_ip)
        streams = int(e.get("uftp.streams") or 1)
        compress = as_bool(e.get("uftp.compression"))
        key: bytes | None = None
        if as_bool(e.get("uftp.encryption")):
            key = secrets.token_bytes(56)
        abs_path, _ = fs.resolve(root, rel)
        name = posixpath.basename(rel)
        if name == "__uftp_session__":  # multi-file session in the file's directory
            base = os.path.dirname(abs_path)
        elif ct.file.endswith("/") or os.path.isdir(abs_path):
            base = abs_path
        else:  # a single file: the session lives in its directory
            base = os.path.dirname(abs_path)
        if not ct.is_export:
            os.makedirs(base, exist_ok=True)
        host, port = self.ctx.uftp.add_job(req.identity, base, client_ip, secret,
                                           persistent=as_bool(e.get("uftp.persistent")),
                                           streams=streams, key=key, compress=compress)
        reply: dict[str, Any] = {"uftp.server.host": host, "uftp.server.port": str(port),
                                 "uftp.streams": str(streams),
                                 "uftp.compression": "true" if compress else "false"}
        if key is not None:
            reply["uftp.encryption_key"] = base64.b64encode(key).decode("ascii")
        if generated:
            reply["uftp.secret"] = secret
        return reply


def _local_size(path: str) -> int:
    if has_wildcard(os.path.basename(path)):
        import glob

        return sum(os.path.getsize(p) for p in glob.glob(path) if os.path.isfile(p))
    try:
        return os.path.getsize(path)
    except OSError:
        return -1


# ----------------------------------------------------------------------------------------
# REST routes
# ----------------------------------------------------------------------------------------
def register(router: Router, ctx: SiteContext) -> None:
    core = f"/{ctx.site_name}/rest/core"
    tm = ctx.transfers

    def create(req: Request, sid: str) -> Response:
        storage = ctx.storages.get(unquote(sid), req.identity)
        params = req.json({}) or {}
        t = tm.create(req.identity, storage, params)
        return Response.created(tm.url(t))

    def list_transfers(req: Request) -> Response:
        ctx.require(req.identity)
        tags = parse_tags(req.query_value("tags"))
        urls = [tm.url(t) for t in tm.list_for(req.identity, tags)]
        chosen, links = page(urls, f"{ctx.core_url}/transfers", req)
        return Response.json({"transfers": chosen, "_links": links})

    def get_transfer(req: Request, tid: str) -> Response:
        return Response.json(filter_fields(tm.properties(tm.get(tid, req.identity)), req))

    def delete_transfer(req: Request, tid: str) -> Response:
        tm.delete(tm.get(tid, req.identity))
        return Response.no_content()

    def action(req: Request, tid: str, name: str) -> Response:
        t = tm.get(tid, req.identity)
        req.drain()
        if name != "abort":
            raise HTTPError(404)
        tm.abort(t)
        return Response.no_content()

    def imports(req: Request, sid: str) -> Response:
        return tm.create_client(req, ctx.storages.get(unquote(sid), req.identity), is_export=False)

    def exports(req: Request, sid: str) -> Response:
        return tm.create_client(req, ctx.storages.get(unquote(sid), req.identity), is_export=True)

    def list_client(req: Request) -> Response:
        ctx.require(req.identity)
        items = owned_entries(ctx.lock, tm._client, req.identity)
        chosen, links = page([tm.client_url(ct) for ct in items],
                             f"{ctx.core_url}/client-server-transfers", req)
        return Response.json({"client-server-transfers": chosen, "_links": links})

    def get_client(req: Request, tid: str) -> Response:
        ct = tm.get_client(tid, req.identity)
        local = ctx.storages.file_url(ct.storage, ct.file)
        props = {"protocol": ct.protocol, "isExport": ct.is_export,
                 "source": local if ct.is_export else "client",
                 "target": "client" if ct.is_export else local,
                 "extraParameters": {k: v for k, v in ct.extra.items() if k != "uftp.secret"},
                 "transferredBytes": ct.transferred, "owner": req.identity.dn, "acl": [], "tags": [],
                 "_links": {"self": link(tm.client_url(ct)),
                            "storage": link(ctx.storages.url(ct.storage))}}
        return Response.json(filter_fields(props, req))

    def delete_client(req: Request, tid: str) -> Response:
        ct = tm.get_client(tid, req.identity)
        with ctx.lock:
            tm._client.pop(ct.id, None)
        return Response.no_content()

    def bft_get(req: Request, tid: str) -> Response:
        ct = tm.get_client(tid, req.identity)
        if not ct.is_export or ct.protocol != "BFT":
            raise HTTPError(404)
        abs_path, rel = fs.resolve(ct.root, ct.file)
        if not os.path.isfile(abs_path):
            raise HTTPError(404, f"File {rel} not found")
        size = os.path.getsize(abs_path)
        offset, length, status, headers = 0, size, 200, {"Content-Type": "application/octet-stream",
                                                          "Accept-Ranges": "bytes"}
        if req.header("Range"):
            offset, length = fs.parse_range(req.header("Range") or "", size)
            status = 206
            headers["Content-Range"] = f"bytes {offset}-{offset + length - 1}/{size}"
        ct.transferred += length
        return Response(status, FileBody(abs_path, offset, length), headers)

    def bft_put(req: Request, tid: str) -> Response:
        ct = tm.get_client(tid, req.identity)
        if ct.is_export or ct.protocol != "BFT":
            raise HTTPError(404)
        abs_path, _ = fs.resolve(ct.root, ct.file)
        os.makedirs(os.path.dirname(abs_path), exist_ok=True)
        with open(abs_path, "wb") as f:
            for chunk in req.iter_body():
                f.write(chunk)
                ct.transferred += len(chunk)
        return Response.no_content()

    s = core + r"/storages/(?P<sid>[^/]+)"
    router.add("POST", s + "/transfers/?", create)
    router.add("POST", s + "/imports/?", imports)
    router.add("POST", s + "/exports/?", exports)
    router.add("GET", core + "/transfers/?", list_transfers)
    t = core + r"/transfers/(?P<tid>[^/]+)"
    router.add("GET", t, get_transfer)
    router.add("DELETE", t, delete_transfer)
    router.add("POST", t + r"/actions/(?P<name>[^/]+)", action)
    router.add("GET", core + "/client-server-transfers/?", list_client)
    c = core + r"/client-server-transfers/(?P<tid>[^/]+)"
    router.add("GET", c, get_client)
    router.add("DELETE", c, delete_client)
    router.add("GET", c + "/data", bft_get)
    router.add("PUT", c + "/data", bft_put)
    router.add("POST", c + "/data", bft_put)
