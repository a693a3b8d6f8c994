"""asyncio client for the UNICORE REST API (``pyunicore.aio.client`` of PyUNICORE 2.0.2).

Same classes as :mod:`pyunicore_fast.client`; everything that talks HTTP is a coroutine and
several getters are *awaitable properties* (``await job.status``), as in PyUNICORE 2.0.2.
URL building, paging, error mapping, the job/registry parsing and the polling back-off are the
sync module's functions, so both clients behave the same.

HTTP backend, honestly stated:

* with ``httpx`` installed, one ``httpx.AsyncClient`` (connection pool, HTTP/1.1 keep-alive)
  is shared by a Transport and all its clones: requests really run concurrently on one
  event loop;
* without ``httpx``, each request runs the blocking ``requests`` call in a worker thread
  (``asyncio.to_thread``) over one pooled ``requests.Session``: the loop never blocks, and
  concurrency is bounded by the default thread pool.

UFTP transfers (``Storage.upload/download(protocol="UFTP")``) use uftpcore's blocking engine
in a worker thread in both cases.  Computing an ``Authorization`` header is done on the loop;
it is cheap except for the rare refresh of an OIDC token (once per token lifetime).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import requests

from pyunicore_fast import client as _sync
from pyunicore_fast.client import (
    _DEFAULT_CACHE_TIME,
    _FINAL_JOB_STATES,
    _FINAL_TRANSFER_STATES,
    _FINAL_WORKFLOW_STATES,
    _SESSION_HEADER,
    AuthenticationFailedException,
    JobStatus,
    TransferStatus,
    UnicoreHTTPError,
    UnicoreTimeoutError,
    WorkflowStatus,
    _allocation_available,
    _collect_pages,
    _Deadline,
    _directory_pages,
    _input_pairs,
    _job_reached,
    _Pages,
    _ResourceState,
    _transfer_reached,
    _TransportState,
    _workflow_reached,
    error_from_response,
    file_url,
    is_allocation,
    needs_start,
    parse_registry_entries,
    poll_delays,
    prepare_job_description,
    range_header,
    version_tuple,
)
from pyunicore_fast.credentials import Anonymous, Credential

log = logging.getLogger(__name__)

try:
    import httpx
except ImportError:  # pragma: no cover - exercised by the thread backend tests
    httpx = None  # type: ignore[assignment]

_CHUNK = 1 << 20

#: which backend new Transports use: "httpx" or "thread" (tests may override).
BACKEND = "httpx" if httpx is not None else "thread"


# ----------------------------------------------------------------------------- backends
def _quickack_network_backend(inner: Any) -> Any:
    """Wrap an httpcore network backend so that every read re-arms TCP_QUICKACK (see
    ``pyunicore_fast.client._quickack_pool_classes``: without it a server writing headers and
    body separately waits ~40 ms for our delayed ACK on each kept-alive request)."""
    import httpcore

    class QuickAckStream(httpcore.AsyncNetworkStream):
        def __init__(self, stream: Any):
            self._stream = stream
            self._sock = stream.get_extra_info("socket")

        async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
            if self._sock is not None:
                try:
                    self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
                except (OSError, AttributeError):
                    self._sock = None
            return await self._stream.read(max_bytes, timeout)

        async def write(self, buffer: bytes, timeout: float | None = None) -> None:
            await self._stream.write(buffer, timeout)

        async def aclose(self) -> None:
            await self._stream.aclose()

        async def start_tls(self, ssl_context: Any, server_hostname: str | None = None,
                            timeout: float | None = None) -> Any:
            return QuickAckStream(await self._stream.start_tls(ssl_context, server_hostname, timeout))

        def get_extra_info(self, info: str) -> Any:
            return self._stream.get_extra_info(info)

    class QuickAckBackend(httpcore.AsyncNetworkBackend):
        async def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                              local_address: str | None = None, socket_options: Any = None) -> Any:
            return QuickAckStream(await inner.connect_tcp(host, port, timeout, local_address, socket_options))

        async def connect_unix_socket(self, path: str, timeout: float | None = None,
                                      socket_options: Any = None) -> Any:
            return await inner.connect_unix_socket(path, timeout, socket_options)

        async def sleep(self, seconds: float) -> None:
            await inner.sleep(seconds)

    return QuickAckBackend()


def _new_httpx_client(verify: Any, timeout: Any) -> Any:
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=32)
    transport = httpx.AsyncHTTPTransport(verify=verify, limits=limits)
    pool = getattr(transport, "_pool", None)
    if hasattr(socket, "TCP_QUICKACK") and pool is not None and hasattr(pool, "_network_backend"):
        try:
            pool._network_backend = _quickack_network_backend(pool._network_backend)
        except Exception as exc:  # noqa: BLE001 - an optimisation only; plain httpx works too
            log.debug("TCP_QUICKACK wrapper not installed: %s", exc)
    return httpx.AsyncClient(transport=transport, timeout=timeout, follow_redirects=False)


class _HttpxBackend:
    """One ``httpx.AsyncClient`` shared by a Transport and its clones (recreated if closed)."""

    name = "httpx"

    def __init__(self, verify: Any, timeout: Any, client: Any = None):
        self.verify = verify
        self.timeout = timeout
        self._client = client

    def client(self) -> Any:
        if self._client is None or self._client.is_closed:
            self._client = _new_httpx_client(self.verify, self.timeout)
        return self._client

    async def request(self, method: str, url: str, headers: dict[str, str], timeout: Any, **kw: Any) -> Any:
        if "data" in kw and not isinstance(kw["data"], Mapping):
            kw["content"] = kw.pop("data")
        try:
            return await self.client().request(method, url, headers=headers, timeout=timeout, **kw)
        except httpx.TimeoutException as exc:
            raise UnicoreTimeoutError(f"{method} {url}: no reply within {timeout} s") from exc

    @asynccontextmanager
    async def stream(self, method: str, url: str, headers: dict[str, str], timeout: Any,
                     **kw: Any) -> AsyncIterator[Any]:
        try:
            async with self.client().stream(method, url, headers=headers, timeout=timeout, **kw) as res:
                yield res
        except httpx.TimeoutException as exc:
            raise UnicoreTimeoutError(f"{method} {url}: no reply within {timeout} s") from exc

    async def upload_file(self, url: str, headers: dict[str, str], timeout: Any, path: str) -> Any:
        headers = dict(headers, **{"Content-Length": str(os.path.getsize(path))})
        return await self.request("PUT", url, headers, timeout, content=_file_chunks(path))

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()


class _ThreadResponse:
    """A streamed ``requests`` response read from a worker thread (httpx-like methods)."""

    def __init__(self, res: requests.Response):
        self._res = res
        self.status_code = res.status_code
        self.headers = res.headers
        self.url = res.url

    async def aiter_bytes(self, chunk_size: int = _CHUNK) -> AsyncIterator[bytes]:
        it = self._res.iter_content(chunk_size)
        while True:
            chunk = await asyncio.to_thread(next, it, b"")
            if not chunk:
                return
            yield chunk

    async def aread(self) -> bytes:
        return await asyncio.to_thread(lambda: self._res.content)

    def json(self) -> Any:
        return self._res.json()

    async def aclose(self) -> None:
        self._res.close()


class _ThreadBackend:
    """Blocking ``requests`` calls in worker threads (used when httpx is not installed)."""

    name = "thread"

    def __init__(self, verify: Any, timeout: Any, client: Any = None):
        self.verify = verify
        self.timeout = timeout
        self._http = client if isinstance(client, requests.Session) else _sync.new_http_session()

    def _call(self, method: str, url: str, headers: dict[str, str], timeout: Any, **kw: Any) -> requests.Response:
        if "content" in kw:
            kw["data"] = kw.pop("content")
        try:
            return self._http.request(method, url, headers=headers, timeout=timeout, verify=self.verify, **kw)
        except requests.Timeout as exc:
            raise UnicoreTimeoutError(f"{method} {url}: no reply within {timeout} s") from exc

    async def request(self, method: str, url: str, headers: dict[str, str], timeout: Any, **kw: Any) -> Any:
        return await asyncio.to_thread(self._call, method, url, headers, timeout, **kw)

    @asynccontextmanager
    async def stream(self, method: str, url: str, headers: dict[str, str], timeout: Any,
                     **kw: Any) -> AsyncIterator[Any]:
        res = await asyncio.to_thread(self._call, method, url, headers, timeout, stream=True, **kw)
        wrapped = _ThreadResponse(res)
        try:
            yield wrapped
        finally:
            res.close()

    async def upload_file(self, url: str, headers: dict[str, str], timeout: Any, path: str) -> Any:
        def put() -> requests.Response:
            with open(path, "rb") as f:
                return self._call("PUT", url, headers, timeout, data=f)

        return await asyncio.to_thread(put)

    async def aclose(self) -> None:
        self._http.close()


async def _file_chunks(path: str) -> AsyncIterator[bytes]:
    f = await asyncio.to_thread(open, path, "rb")
    try:
        while True:
            chunk = await asyncio.to_thread(f.read, _CHUNK)
            if not chunk:
                return
            yield chunk
    finally:
        f.close()


async def _stream_of(source: Any) -> AsyncIterator[bytes]:
    """Chunks of a sync or async file-like object (``read`` may be a coroutine, aiofiles)."""
    read = source.read
    while True:
        chunk = read(_CHUNK)
        if asyncio.iscoroutine(chunk) or isinstance(chunk, Awaitable):
            chunk = await chunk
        if not chunk:
            return
        yield chunk if isinstance(chunk, bytes) else str(chunk).encode("utf-8")


# ----------------------------------------------------------------------------- transport
class Transport(_TransportState):
    """Async counterpart of :class:`pyunicore_fast.client.Transport` (same headers, sessions,
    preferences and errors).  ``client`` may be an ``httpx.AsyncClient`` to share."""

    def __init__(self, credential: Credential | None, verify: bool | str = False, use_security_sessions: bool = True,
                 timeout: float = 120, client: Any = None, *, backend: str | None = None):
        super().__init__(credential, verify, use_security_sessions, timeout)
        kind = backend or BACKEND
        if kind == "httpx" and httpx is None:
            raise RuntimeError("the httpx backend needs the 'httpx' package")
        self._backend: Any = (_HttpxBackend if kind == "httpx" else _ThreadBackend)(verify, timeout, client)

    @property
    def backend(self) -> str:
        """``"httpx"`` or ``"thread"``."""
        return self._backend.name

    def _clone(self) -> Transport:
        tr = Transport.__new__(Transport)
        _TransportState.__init__(tr, self.credential, self.verify, self.use_security_sessions, self.timeout)
        self._copy_state_to(tr)
        tr._backend = self._backend
        return tr

    def _check_error(self, res: Any, method: str | None = None) -> None:
        if 400 <= res.status_code < 600:
            raise error_from_response(res, method)
        if not 200 <= res.status_code < 300:
            raise UnicoreHTTPError(f"{res.status_code} unexpected reply for url: {res.url}", response=res,
                                   status_code=res.status_code, url=str(res.url), method=method)

    def _repeat_required(self, res: Any, headers: dict[str, str]) -> bool:
        return self._session_expired(res.status_code, headers)

    async def run_method(self, method: str, **args: Any) -> Any:
        """One request with headers, timeout, the single 432 retry and error checking."""
        headers = self._headers(args)
        url = args.pop("url")
        verb = method.upper()
        res = await self._backend.request(verb, url, headers, self.timeout, **args)
        if self._repeat_required(res, headers):
            res = await self._backend.request(verb, url, headers, self.timeout, **args)
        self._check_error(res, verb)
        self._remember_session(res)
        return res

    async def get(self, to_json: bool = True, **kwargs: Any) -> Any:
        res = await self.run_method("GET", **kwargs)
        return res.json() if to_json else res

    async def put(self, **kwargs: Any) -> Any:
        return await self.run_method("PUT", **kwargs)

    async def post(self, **kwargs: Any) -> Any:
        return await self.run_method("POST", **kwargs)

    async def delete(self, **kwargs: Any) -> None:
        await self.run_method("DELETE", **kwargs)

    @asynccontextmanager
    async def get_stream(self, **kwargs: Any) -> AsyncIterator[Any]:
        """Streaming GET without the security session header (never a 432)."""
        headers = self._headers(kwargs)
        headers.pop(_SESSION_HEADER, None)
        url = kwargs.pop("url")
        async with self._backend.stream("GET", url, headers, self.timeout, **kwargs) as res:
            if res.status_code >= 400:
                await res.aread()
                self._check_error(res, "GET")
            yield res

    async def upload_file(self, url: str, path: str) -> None:
        """PUT a local file, streamed (with Content-Length)."""
        headers = self._headers({"headers": {"Content-Type": "application/octet-stream"}})
        res = await self._backend.upload_file(url, headers, self.timeout, path)
        if self._repeat_required(res, headers):
            res = await self._backend.upload_file(url, headers, self.timeout, path)
        self._check_error(res, "PUT")
        self._remember_session(res)

    async def aclose(self) -> None:
        await self._backend.aclose()

    async def __aenter__(self) -> Transport:  # noqa: PYI034 - typing.Self needs Python 3.11
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def _to_transport(security: Any) -> Transport:
    if isinstance(security, Transport):
        return security._clone()
    if isinstance(security, Credential) or hasattr(security, "get_auth_header"):
        return Transport(security)
    raise TypeError("Need Credential or Transport object")


async def _collect(transport: Transport, url: str, key: str, offset: int = 0, num: int | None = None,
                   tags: Iterable[str] | None = None, filter: str | None = None) -> list[str]:
    """As the sync ``_collect``: all pages via ``next`` when ``num`` is None."""
    return await _get_pages(_collect_pages(url, key, offset, num, tags, filter), transport.get)


async def _get_pages(pages: _Pages, get: Callable[..., Awaitable[Any]]) -> Any:
    """Run a paging conversation of the sync module with an async ``get``."""
    request = next(pages)
    try:
        while True:
            request = pages.send(await get(**request))
    except StopIteration as end:
        return end.value


_T = TypeVar("_T")


async def _wait_until(fetch: Callable[[], Awaitable[_T]], done: Callable[[_T], bool], deadline: _Deadline,
                      what: str) -> _T:
    """The sync ``_wait_until`` with ``await``: the loop behind every ``poll``/``wait_*``."""
    for delay in poll_delays():
        value = await fetch()
        if done(value):
            return value
        if deadline.expired():
            raise TimeoutError(what)
        await asyncio.sleep(deadline.clamp(delay))
    raise AssertionError("unreachable")  # pragma: no cover


async def _fresh_status(resource: Resource, status_type: Callable[[str], _T]) -> _T:
    """The resource's status read from the server, bypassing the properties cache."""
    return status_type((await resource._refresh_properties())["status"])


# ----------------------------------------------------------------------------- resources
class Resource(_ResourceState):
    """A REST resource; ``properties`` and ``links`` are awaitable."""

    def __init__(self, security: Credential | Transport, resource_url: str, cache_time: float = _DEFAULT_CACHE_TIME):
        self._init_state(_to_transport(security), resource_url, cache_time)

    async def _refresh_properties(self) -> dict[str, Any]:
        return self._store_properties(await self.transport.get(url=self.resource_url))

    async def _get_properties(self) -> dict[str, Any]:
        if not self._cache_valid():
            await self._refresh_properties()
        assert self._last_properties is not None
        return self._last_properties

    @property
    def properties(self) -> Awaitable[dict[str, Any]]:
        return self._get_properties()

    async def _get_links(self) -> dict[str, str]:
        if self._known_links is None:
            await self._refresh_properties()
        return dict(self._known_links or {})

    @property
    def links(self) -> Awaitable[dict[str, str]]:
        return self._get_links()

    async def _link(self, rel: str, fallback: str | None = None) -> str:
        href = self._link_without_fetch(rel, fallback)
        if href is not None:
            return href
        await self._refresh_properties()
        return self._link_after_fetch(rel, fallback)

    async def delete(self) -> None:
        await self.transport.delete(url=self.resource_url)

    async def set_properties(self, props: dict[str, Any]) -> dict[str, Any]:
        res = await self.transport.put(url=self.resource_url, json=props)
        self._invalidate()
        return res.json()

    async def aclose(self) -> None:
        """Close the HTTP connections (shared with every object of the same Transport)."""
        await self.transport.aclose()

    async def __aenter__(self) -> Resource:  # noqa: PYI034 - typing.Self needs Python 3.11
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"{type(self).__name__}: {self.resource_url}"

    __str__ = __repr__


async def load_properties(resources: Iterable[Resource], concurrency: int = 16) -> list[Resource]:
    """Fetch the properties of many resources concurrently (bounded by ``concurrency``)."""
    items = list(resources)
    sem = asyncio.Semaphore(max(1, concurrency))

    async def one(r: Resource) -> None:
        async with sem:
            await r._refresh_properties()

    await asyncio.gather(*(one(r) for r in items))
    return items


class Registry(Resource):
    """A service registry; ``site_urls``/``workflow_services_urls`` are awaitable."""

    async def _urls(self) -> tuple[dict[str, str], dict[str, str]]:
        props = await self._get_properties()
        return parse_registry_entries(props.get("entries") or [])

    async def _site_urls(self) -> dict[str, str]:
        return (await self._urls())[0]

    async def _workflow_urls(self) -> dict[str, str]:
        return (await self._urls())[1]

    @property
    def site_urls(self) -> Awaitable[dict[str, str]]:
        return self._site_urls()

    @property
    def workflow_services_urls(self) -> Awaitable[dict[str, str]]:
        return self._workflow_urls()

    async def site(self, name: str | None = None) -> Client:
        return Client(self.transport, _sync._pick(await self._site_urls(), name, "site"))

    async def workflow_service(self, name: str | None = None) -> WorkflowService:
        return WorkflowService(self.transport, _sync._pick(await self._workflow_urls(), name, "workflow service"))


async def _upload_inputs(storage: Storage, inputs: Any) -> None:
    await asyncio.gather(*(storage.upload(local, remote) for local, remote in _input_pairs(inputs)))


class Client(Resource):
    """A site's core API; call ``await client.assert_authentication()`` to check the login
    (the constructor cannot await; ``check_authentication`` is accepted for symmetry)."""

    def __init__(self, security: Credential | Transport, site_url: str, cache_time: float = _DEFAULT_CACHE_TIME,
                 check_authentication: bool = True):
        super().__init__(security, site_url, cache_time)
        self.check_authentication = check_authentication and not isinstance(self.transport.credential, Anonymous)

    async def assert_authentication(self) -> None:
        if isinstance(self.transport.credential, Anonymous):
            return
        info = (await self._get_properties())["client"]
        if info.get("role", {}).get("selected") == "anonymous":
            raise AuthenticationFailedException(f"Failure to authenticate at {self.resource_url}")

    async def _access_info(self) -> dict[str, Any]:
        return (await self._get_properties())["client"]

    @property
    def access_info(self) -> Awaitable[dict[str, Any]]:
        return self._access_info()

    async def _server_version_info(self) -> tuple[int, ...]:
        return version_tuple((await self._get_properties())["server"]["version"])

    @property
    def server_version_info(self) -> Awaitable[tuple[int, ...]]:
        return self._server_version_info()

    async def get_storages(self, offset: int = 0, num: int | None = None, tags: Iterable[str] | None = None,
                           all: bool = False) -> list[Storage]:
        urls = await _collect(self.transport, await self._link("storages", "/storages"), "storages", offset, num,
                              tags, "all" if all else None)
        return [Storage(self.transport, u) for u in urls]

    async def get_transfers(self, offset: int = 0, num: int | None = None,
                            tags: Iterable[str] | None = None) -> list[Transfer]:
        urls = await _collect(self.transport, await self._link("transfers", "/transfers"), "transfers", offset,
                              num, tags)
        return [Transfer(self.transport, u) for u in urls]

    async def get_compute(self) -> list[Compute]:
        urls = await _collect(self.transport, await self._link("factories", "/factories"), "factories")
        return [Compute(self.transport, u) for u in urls]

    async def get_applications(self) -> list[Application]:
        computes = await self.get_compute()
        lists = await asyncio.gather(*(c.get_applications() for c in computes))
        return [app for apps in lists for app in apps]

    async def get_jobs(self, offset: int = 0, num: int | None = None, tags: Iterable[str] | None = None) -> list[Job]:
        urls = await _collect(self.transport, await self._link("jobs", "/jobs"), "jobs", offset, num, tags)
        return [Job(self.transport, u) for u in urls]

    async def new_job(self, job_description: dict[str, Any], inputs: Any = None, autostart: bool = True) -> Job:
        jd = prepare_job_description(job_description, inputs)
        res = await self.transport.post(url=await self._link("jobs", "/jobs"), json=jd)
        job_url = res.headers["Location"]
        job: Job = Allocation(self.transport, job_url) if is_allocation(jd) else Job(self.transport, job_url)
        if inputs:
            await _upload_inputs(await job._working_dir(), inputs)
        if autostart and needs_start(jd):
            await job.start()
        return job

    async def execute(self, cmd: str, login_node: str | None = None) -> Job:
        jd: dict[str, Any] = {"Executable": cmd, "Job type": "INTERACTIVE"}
        if login_node:
            jd["Login node"] = login_node
        res = await self.transport.post(url=await self._link("jobs", "/jobs"), json=jd)
        return Job(self.transport, res.headers["Location"])

    async def issue_auth_token(self, lifetime: int = -1, renewable: bool = False, limited: bool = False) -> str:
        params: dict[str, Any] = {}
        if lifetime > 0:
            params["lifetime"] = lifetime
        if renewable:
            params["renewable"] = "true"
        if limited:
            params["limited"] = "true"
        res = await self.transport.get(url=self.resource_url + "/token", headers={"Accept": "text/plain"},
                                       to_json=False, params=params)
        return res.text


class Application(Resource):
    """An application of a site; ``name``, ``version``, ``options`` are awaitable."""

    def __init__(self, security: Credential | Transport, app_url: str, submit_url: str | None = None,
                 cache_time: float = _DEFAULT_CACHE_TIME):
        super().__init__(security, app_url, cache_time)
        self.submit_url = submit_url or app_url.split("/rest/core/factories/")[0] + "/rest/core/jobs"

    async def _prop(self, key: str, default: Any = None) -> Any:
        return (await self._get_properties()).get(key, default)

    @property
    def name(self) -> Awaitable[str]:
        return self._prop("ApplicationName")

    @property
    def version(self) -> Awaitable[str]:
        return self._prop("ApplicationVersion")

    @property
    def options(self) -> Awaitable[dict[str, Any]]:
        return self._prop("Options", {})

    def __repr__(self) -> str:
        return f"Application {self.resource_url}"

    __str__ = __repr__


class Job(Resource):
    """A job; ``status``, ``working_dir``, ``exit_code``, ``log``, ``is_running``,
    ``bss_details`` are awaitable properties."""

    @property
    def id(self) -> str:
        return self.resource_url.rstrip("/").rsplit("/", 1)[-1]

    job_id = id

    async def _status(self) -> JobStatus:
        return JobStatus((await self._get_properties())["status"])

    @property
    def status(self) -> Awaitable[JobStatus]:
        return self._status()

    async def _is_running(self) -> bool:
        return (await self._status()) not in _FINAL_JOB_STATES

    @property
    def is_running(self) -> Awaitable[bool]:
        return self._is_running()

    async def _working_dir(self) -> Storage:
        storage = Storage(self.transport, await self._link("workingDirectory"))
        if await self._is_running():
            await storage._wait_until_ready(timeout=_sync._timeout_seconds(self.transport.timeout) or 120)
        return storage

    @property
    def working_dir(self) -> Awaitable[Storage]:
        return self._working_dir()

    async def _bss_details(self) -> dict[str, Any]:
        return await self.transport.get(url=await self._link("details", "/details"))

    @property
    def bss_details(self) -> Awaitable[dict[str, Any]]:
        return self._bss_details()

    async def _exit_code(self) -> int | None:
        value = (await self._get_properties()).get("exitCode")
        return None if value in (None, "", "N/A") else int(value)

    @property
    def exit_code(self) -> Awaitable[int | None]:
        return self._exit_code()

    async def _log(self) -> list[str]:
        return (await self._get_properties()).get("log", [])

    @property
    def log(self) -> Awaitable[list[str]]:
        return self._log()

    async def _action(self, name: str) -> None:
        await self.transport.post(url=await self._link(f"action:{name}", f"/actions/{name}"), json={})
        self._invalidate()

    async def abort(self) -> None:
        await self._action("abort")

    async def restart(self) -> None:
        await self._action("restart")

    async def start(self) -> None:
        await self._action("start")

    async def poll(self, state: JobStatus = JobStatus.SUCCESSFUL, timeout: float = 0) -> JobStatus:
        """As the sync ``poll``: 50 ms first check, back-off to 2 s, ``TimeoutError``."""
        if state == JobStatus.UNDEFINED:
            raise ValueError(f"Cannot wait for {state}")
        return await _wait_until(lambda: _fresh_status(self, JobStatus),
                                 lambda status: _job_reached(status, state), _Deadline(timeout),
                                 f"Timeout waiting for job to become {state.value}")


class Allocation(Job):
    """A batch allocation."""

    async def _is_ready(self) -> bool:
        props = await self._refresh_properties()
        return (JobStatus(props.get("status")) == JobStatus.RUNNING
                and not str(props.get("batchSystemID", "")).startswith("INTERACTIVE_"))

    @property
    def is_ready(self) -> Awaitable[bool]:
        return self._is_ready()

    async def new_job(self, job_description: dict[str, Any], inputs: Any = None, autostart: bool = True) -> Job:
        jd = prepare_job_description(job_description, inputs)
        res = await self.transport.post(url=self.resource_url, json=jd)
        job = Job(self.transport, res.headers["Location"])
        if inputs:
            await _upload_inputs(await job._working_dir(), inputs)
        if autostart and needs_start(jd):
            await job.start()
        return job

    async def wait_until_available(self, timeout: float = 0) -> None:
        deadline = _Deadline(timeout)
        await self.poll(JobStatus.RUNNING, timeout)
        await _wait_until(self._refresh_properties, _allocation_available, deadline,
                          "Timeout waiting for allocation to become available")


class Compute(Resource):
    """A compute resource; ``queues`` is awaitable."""

    async def get_queues(self) -> dict[str, Any]:
        return (await self._get_properties())["resources"]

    @property
    def queues(self) -> Awaitable[dict[str, Any]]:
        return self.get_queues()

    async def get_applications(self) -> list[Application]:
        base = await self._link("applications", "/applications")
        props = await self._get_properties()
        return [Application(self.transport, base + "/" + app) for app in props.get("applications", [])]


class Storage(Resource):
    """A storage; every operation is a coroutine."""

    async def _wait_until_ready(self, timeout: float = 30) -> None:
        deadline = _Deadline(timeout if timeout and timeout > 0 else 30)
        for delay in poll_delays():
            props = await self._refresh_properties()
            status = props.get("resourceStatus", "READY")
            if status == "READY":
                return
            if status == "ERROR":
                raise OSError(f"Storage {self.resource_url} is in state ERROR: "
                              f"{props.get('resourceStatusMessage', '')}")
            if deadline.expired():
                raise OSError(f"Storage {self.resource_url} not READY after {timeout} s (status {status})")
            await asyncio.sleep(deadline.clamp(delay))

    def _to_file_url(self, path: str) -> str:
        return file_url(self.resource_url, path)

    async def contents(self, path: str = "/") -> dict[str, Any]:
        return await _get_pages(_directory_pages(self._to_file_url(path)), self.transport.get)

    def _path_object(self, path_url: str, name: str, props: dict[str, Any]) -> PathFile | PathDir:
        cls = PathDir if props.get("isDirectory") else PathFile
        obj = cls(self, path_url, name, self.cache_time)
        obj._store_properties(props)
        return obj

    async def stat(self, path: str) -> PathFile | PathDir:
        path_url = self._to_file_url(path)
        props = await self.transport.get(url=path_url, headers={"Accept": "application/json"})
        return self._path_object(path_url, path, props)

    async def listdir(self, base: str = "/") -> dict[str, PathFile | PathDir]:
        ret: dict[str, PathFile | PathDir] = {}
        for path, meta in ((await self.contents(base)).get("content") or {}).items():
            name = path.lstrip("/")
            ret[name] = self._path_object(self._to_file_url(path), name, dict(meta))
        return ret

    async def rename(self, source: str, target: str) -> None:
        await self.transport.post(url=await self._link("action:rename", "/actions/rename"),
                                  json={"from": source, "to": target})

    async def copy(self, source: str, target: str) -> None:
        await self.transport.post(url=await self._link("action:copy", "/actions/copy"),
                                  json={"from": source, "to": target})

    async def mkdir(self, name: str) -> None:
        await self.transport.post(url=self._to_file_url(name), json={})

    async def makedirs(self, name: str) -> None:
        await self.mkdir(name)

    async def rmdir(self, name: str) -> None:
        await self.transport.delete(url=self._to_file_url(name))

    async def rm(self, name: str) -> None:
        await self.transport.delete(url=self._to_file_url(name))

    def _sync_twin(self) -> _sync.Storage:
        """A blocking Storage with the same credential, for uftpcore work in a thread."""
        twin = getattr(self, "_twin", None)
        if twin is None:
            tr = _sync.Transport(self.transport.credential, verify=self.transport.verify,
                                 use_security_sessions=self.transport.use_security_sessions,
                                 timeout=self.transport.timeout)
            tr.preferences = self.transport.preferences
            twin = _sync.Storage(tr, self.resource_url, self.cache_time)
            self._twin = twin
        return twin

    async def upload(self, file_name: str, destination: str | None = None, protocol: str | None = None,
                     **uftp_options: Any) -> None:
        """Upload a local file (streamed from a worker thread; ``protocol="UFTP"`` via uftpcore)."""
        file_name = os.fspath(file_name)
        if destination is None:
            destination = os.path.basename(file_name) if os.path.isabs(file_name) else file_name
        if protocol and protocol.upper() == "UFTP":
            twin = self._sync_twin()
            await asyncio.to_thread(twin.upload, file_name, destination, protocol, **uftp_options)
            return
        await self.transport.upload_file(self._to_file_url(destination), file_name)

    async def put(self, source: Any, destination: str) -> None:
        """Upload bytes, str, or a (sync or async) binary file-like object."""
        if isinstance(source, str):
            source = source.encode("utf-8")
        sync_file_for_requests = (self.transport.backend == "thread"
                                  and not asyncio.iscoroutinefunction(getattr(source, "read", None)))
        if not isinstance(source, (bytes, bytearray, memoryview)) and not sync_file_for_requests:
            source = _stream_of(source)
        await self.transport.put(url=self._to_file_url(destination),
                                 headers={"Content-Type": "application/octet-stream"}, data=source)

    async def download(self, remote_path: str, local_file: Any = None, protocol: str | None = None,
                       **uftp_options: Any) -> None:
        if local_file is None:
            local_file = os.path.basename(remote_path.rstrip("/"))
        if protocol and protocol.upper() == "UFTP":
            twin = self._sync_twin()
            await asyncio.to_thread(twin.download, remote_path, local_file, protocol, **uftp_options)
            return
        await PathFile(self, self._to_file_url(remote_path), remote_path).download(local_file)

    async def _start_transfer(self, direction: str, file_name: str, remote_url: str, protocol: str | None,
                              scheduled: str | None, additional_parameters: Mapping[str, Any] | None) -> Transfer:
        params = dict(additional_parameters or {})
        if protocol:
            remote_url = protocol + ":" + remote_url
        if scheduled:
            params["scheduledStartTime"] = scheduled
        res = await self.transport.post(url=self.resource_url + "/transfers",
                                        json={"file": file_name, direction: remote_url, "extraParameters": params})
        return Transfer(self.transport, res.headers["Location"])

    async def send_file(self, file_name: str, remote_url: str, protocol: str | None = None,
                        scheduled: str | None = None,
                        additional_parameters: Mapping[str, Any] | None = None) -> Transfer:
        return await self._start_transfer("target", file_name, remote_url, protocol, scheduled,
                                          additional_parameters)

    async def receive_file(self, remote_url: str, file_name: str, protocol: str | None = None,
                           scheduled: str | None = None,
                           additional_parameters: Mapping[str, Any] | None = None) -> Transfer:
        return await self._start_transfer("source", file_name, remote_url, protocol, scheduled,
                                          additional_parameters)


class _Flag:
    """A bool that can also be called: ``path.isdir`` (aio, property) and ``path.isdir()``
    (sync, method) both work."""

    __slots__ = ("_value",)

    def __init__(self, value: bool):
        self._value = value

    def __bool__(self) -> bool:
        return self._value

    def __call__(self) -> bool:
        return self._value

    def __eq__(self, other: object) -> bool:
        return bool(self) == bool(other)

    def __hash__(self) -> int:
        return hash(self._value)

    def __repr__(self) -> str:
        return repr(self._value)


class Path(Resource):
    """A remote file or directory; ``isdir``/``isfile`` are plain properties, ``size`` is
    awaitable."""

    _is_dir = False

    def __init__(self, storage: Storage, path_url: str, name: str, cache_time: float = _DEFAULT_CACHE_TIME):
        super().__init__(storage.transport, path_url, cache_time)
        self.name = name
        self.storage = storage

    @property
    def isdir(self) -> _Flag:
        return _Flag(self._is_dir)

    @property
    def isfile(self) -> _Flag:
        return _Flag(not self._is_dir)

    async def _size(self) -> int:
        return int((await self._get_properties())["size"])

    @property
    def size(self) -> Awaitable[int]:
        return self._size()

    async def get_metadata(self, name: str | None = None) -> Any:
        meta = (await self._get_properties()).get("metadata", {})
        return meta[name] if name else meta

    async def remove(self) -> None:
        await self.storage.rm(self.name)

    def __repr__(self) -> str:
        return f"{type(self).__name__}: {self.name}"

    __str__ = __repr__


class PathDir(Path):
    _is_dir = True


class PathFile(Path):
    _is_dir = False

    def _range_headers(self, offset: int, size: int) -> dict[str, str]:
        headers = {"Accept": "application/octet-stream"}
        rng = range_header(offset, size)
        if rng:
            headers["Range"] = rng
        return headers

    @asynccontextmanager
    async def raw(self, offset: int = 0, size: int = -1) -> AsyncIterator[Any]:
        """The streamed response (httpx: an ``httpx.Response``): ``aiter_bytes()``, ``aread()``."""
        headers = self._range_headers(offset, size)
        if size == 0:
            yield _EmptyBody()
            return
        async with self.transport.get_stream(url=self.resource_url, headers=headers) as res:
            yield res

    async def read(self, offset: int = 0, size: int = -1) -> bytes:
        async with self.raw(offset, size) as res:
            return await res.aread()

    async def download(self, file: Any) -> None:
        """Stream into a local path or a writable (sync or async) file object."""
        async with self.raw() as res:
            if isinstance(file, (str, os.PathLike)):
                f = await asyncio.to_thread(open, file, "wb")
                try:
                    async for chunk in res.aiter_bytes(_CHUNK):
                        await asyncio.to_thread(f.write, chunk)
                finally:
                    f.close()
            else:
                async for chunk in res.aiter_bytes(_CHUNK):
                    written = file.write(chunk)
                    if asyncio.iscoroutine(written):
                        await written


class _EmptyBody:
    """The body of a zero-length range: no request is made (PyUNICORE sent an invalid Range)."""

    status_code = 200

    @property
    def headers(self) -> dict[str, str]:
        return {}

    async def aread(self) -> bytes:
        return b""

    async def aiter_bytes(self, chunk_size: int = _CHUNK) -> AsyncIterator[bytes]:
        return
        yield b""  # pragma: no cover


class Transfer(Resource):
    """A server-to-server transfer; ``status``, ``is_running``, ``transferred_bytes`` are
    awaitable."""

    async def _status(self) -> TransferStatus:
        return TransferStatus((await self._get_properties())["status"])

    @property
    def status(self) -> Awaitable[TransferStatus]:
        return self._status()

    async def _is_running(self) -> bool:
        return (await self._status()) not in _FINAL_TRANSFER_STATES

    @property
    def is_running(self) -> Awaitable[bool]:
        return self._is_running()

    async def _transferred(self) -> int:
        return int((await self._get_properties()).get("transferredBytes", 0))

    @property
    def transferred_bytes(self) -> Awaitable[int]:
        return self._transferred()

    async def abort(self) -> None:
        links = await self._get_links()
        if "action:abort" in links:
            await self.transport.post(url=links["action:abort"], json={})
        else:
            await self.delete()
        self._invalidate()

    async def poll(self, state: TransferStatus = TransferStatus.DONE, timeout: float = 0) -> TransferStatus:
        return await _wait_until(lambda: _fresh_status(self, TransferStatus),
                                 lambda status: _transfer_reached(status, state), _Deadline(timeout),
                                 f"Timeout waiting for transfer to become {state.value}")


class WorkflowService(Resource):
    """A workflow service; ``access_info`` is awaitable."""

    def __init__(self, security: Credential | Transport, workflows_url: str, cache_time: float = _DEFAULT_CACHE_TIME,
                 check_authentication: bool = True):
        super().__init__(security, workflows_url, cache_time)
        self.check_authentication = check_authentication

    async def _access_info(self) -> dict[str, Any]:
        return (await self._get_properties())["client"]

    @property
    def access_info(self) -> Awaitable[dict[str, Any]]:
        return self._access_info()

    async def assert_authentication(self) -> None:
        if isinstance(self.transport.credential, Anonymous):
            return
        if (await self._access_info()).get("role", {}).get("selected") == "anonymous":
            raise AuthenticationFailedException(f"Failure to authenticate at {self.resource_url}")

    async def get_workflows(self, offset: int = 0, num: int | None = None,
                            tags: Iterable[str] | None = None) -> list[Workflow]:
        urls = await _collect(self.transport, self.resource_url, "workflows", offset, num, tags)
        return [Workflow(self.transport, u) for u in urls]

    async def new_workflow(self, wf_description: dict[str, Any]) -> Workflow:
        if hasattr(wf_description, "to_dict") and not isinstance(wf_description, dict):
            wf_description = wf_description.to_dict()
        res = await self.transport.post(url=self.resource_url, json=wf_description)
        return Workflow(self.transport, res.headers["Location"])


class Workflow(Resource):
    """A workflow; ``status``, ``parameters``, ``is_running``, ``is_held`` are awaitable."""

    async def _status(self) -> WorkflowStatus:
        return WorkflowStatus((await self._get_properties())["status"])

    @property
    def status(self) -> Awaitable[WorkflowStatus]:
        return self._status()

    async def _parameters(self) -> dict[str, Any]:
        return (await self._get_properties()).get("parameters", {})

    @property
    def parameters(self) -> Awaitable[dict[str, Any]]:
        return self._parameters()

    async def _is_running(self) -> bool:
        return (await self._status()) not in _FINAL_WORKFLOW_STATES

    @property
    def is_running(self) -> Awaitable[bool]:
        return self._is_running()

    async def _is_held(self) -> bool:
        return (await self._status()) == WorkflowStatus.HELD

    @property
    def is_held(self) -> Awaitable[bool]:
        return self._is_held()

    async def poll(self, state: WorkflowStatus = WorkflowStatus.SUCCESSFUL, timeout: float = 0) -> WorkflowStatus:
        if state == WorkflowStatus.UNDEFINED:
            raise ValueError(f"Cannot wait for {state}")
        return await _wait_until(lambda: _fresh_status(self, WorkflowStatus),
                                 lambda status: _workflow_reached(status, state), _Deadline(timeout),
                                 f"Timeout waiting for workflow to become {state.value}")

    async def abort(self) -> None:
        await self.transport.post(url=await self._link("action:abort", "/actions/abort"), json={})
        self._invalidate()

    async def resume(self, params: Mapping[str, Any] | None = None) -> Any:
        res = await self.transport.post(url=await self._link("action:continue", "/actions/continue"),
                                        json=dict(params or {}))
        self._invalidate()
        return res

    async def get_files(self) -> dict[str, str]:
        return await self.transport.get(url=await self._link("files", "/files"))

    async def get_jobs(self, offset: int = 0, num: int | None = None) -> list[Job]:
        urls = await _collect(self.transport, await self._link("jobs", "/jobs"), "jobs", offset, num)
        return [Job(self.transport, u) for u in urls]

    async def stat(self, path: str) -> PathFile | PathDir:
        url = (await self.get_files())[path]
        storage_url, _, file_path = url.partition("/files/")
        return await Storage(self.transport, storage_url).stat(urllib.parse.unquote(file_path))


__all__ = [
    "BACKEND",
    "Allocation",
    "Application",
    "AuthenticationFailedException",
    "Client",
    "Compute",
    "Job",
    "JobStatus",
    "Path",
    "PathDir",
    "PathFile",
    "Registry",
    "Resource",
    "Storage",
    "Transfer",
    "TransferStatus",
    "Transport",
    "UnicoreHTTPError",
    "Workflow",
    "WorkflowService",
    "WorkflowStatus",
    "load_properties",
]

