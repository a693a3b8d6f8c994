"""Blocking client for the UNICORE REST API, name for name compatible with ``pyunicore.client``.

The compatibility target is PyUNICORE 2.0.2's synchronous API; 1.x forms are accepted where
the lines differ (``PathFile.raw()`` is both a file-like stream and a context manager, HTTP
errors are ``requests.HTTPError`` *and*, when httpx is installed, ``httpx.HTTPError``).

Why this module is faster than PyUNICORE while behaving the same:

* one pooled ``requests.Session`` per :class:`Transport`, shared by all its clones, so a
  script makes one TCP/TLS handshake instead of one per call;
* properties are cached for ``cache_time`` seconds as documented, and objects created from a
  reply that already carries their properties (``stat``, ``listdir``) start with a warm cache;
* ``links`` are remembered once seen (they do not change), and action URLs fall back to the
  documented REST paths, which saves a GET before ``start``/``abort``/``rename``;
* ``poll()`` starts checking after 50 ms and backs off to a 2 s cap instead of sleeping 6 s;
* collections are paged through ``next`` links past the server's 200-item pages.

Every request has a timeout, and errors are typed (:class:`UnicoreHTTPError` and
subclasses) and carry the server's ``errorMessage``.
"""

from __future__ import annotations

import concurrent.futures
import io
import logging
import os
import pathlib
import re
import secrets
import socket
import string
import threading
import time
import urllib.parse
import warnings
import weakref
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from contextlib import contextmanager
from enum import Enum
from typing import Any, TypeVar

import requests
import requests.adapters

from pyunicore_fast.credentials import Anonymous, AuthenticationFailedException, Credential

try:  # a single warning filter instead of PyUNICORE's global urllib3.disable_warnings()
    from urllib3.exceptions import InsecureRequestWarning

    warnings.filterwarnings("ignore", category=InsecureRequestWarning)
except ImportError:  # pragma: no cover
    pass

try:  # 2.0.2 raised httpx.HTTPError: let ``except httpx.HTTPError`` keep working
    import httpx as _httpx

    _HTTPX_ERROR_BASES: tuple[type, ...] = (_httpx.HTTPError,)
except ImportError:  # pragma: no cover - httpx is optional
    _httpx = None
    _HTTPX_ERROR_BASES = ()

log = logging.getLogger(__name__)

# ----------------------------------------------------------------------------- constants
_DEFAULT_CACHE_TIME = 5  # in seconds, as PyUNICORE

_HBP_REGISTRY_URL = "https://unicore.fz-juelich.de/HBP/rest/registries/default_registry"

_FACTORY_RE = re.compile(
    r"""
^                                 # start of line
(?P<site_url>\s*https?://.*/      # capture full url
(?P<site_name>.*)                 # capture site name
/rest/core/)
.*                                # ignore the rest
""",
    re.VERBOSE,
)

_WORKFLOWS_RE = re.compile(
    r"""
^                                 # start of line
(?P<site_url>\s*https?://.*/      # capture full url
(?P<site_name>.*)                 # capture site name
/rest/workflows)
""",
    re.VERBOSE,
)

_CORE_URL_RE = re.compile(r"^\s*(?P<base>https?://\S+/(?P<name>[^/\s]+)/rest/core)")
_WORKFLOWS_URL_RE = re.compile(r"^\s*(?P<base>https?://\S+/(?P<name>[^/\s]+)/rest/workflows)")

#: first delay of a poll loop; doubled-ish (x1.5) up to ``_POLL_MAX`` (seconds).
_POLL_INITIAL = 0.05
_POLL_FACTOR = 1.5
_POLL_MAX = 2.0
#: chunk size for streaming downloads and uploads.
_CHUNK = 1 << 20
#: bound on pages followed when collecting a list (guards against a server looping ``next``).
_MAX_PAGES = 10_000

_SESSION_HEADER = "X-UNICORE-SecuritySession"
_PREFERENCES_HEADER = "X-UNICORE-User-Preferences"


def _url_params(offset: int, num: int | None, tags: Iterable[str] | None, filter: str | None = None) -> dict:
    """Query parameters for paging and tag filtering (PyUNICORE's helper, same output)."""
    q_params: dict[str, Any] = {}
    if offset and offset > 0:
        q_params["offset"] = offset
    if num is not None:
        q_params["num"] = num
    tags = list(tags or [])
    if len(tags) > 0:
        q_params["tags"] = ",".join(map(str, tags))
    if filter is not None:
        q_params["filter"] = filter
    return q_params


def poll_delays(initial: float = _POLL_INITIAL, factor: float = _POLL_FACTOR,
                maximum: float = _POLL_MAX) -> Iterator[float]:
    """The back-off schedule of every wait loop: fast first checks, then a bounded interval."""
    delay = initial
    while True:
        yield delay
        delay = min(maximum, delay * factor)


class _Deadline:
    """``timeout`` seconds from now; ``timeout <= 0`` means "never" (PyUNICORE convention)."""

    def __init__(self, timeout: float | None):
        self.end = time.monotonic() + timeout if timeout and timeout > 0 else None

    def expired(self) -> bool:
        return self.end is not None and time.monotonic() >= self.end

    def clamp(self, delay: float) -> float:
        if self.end is None:
            return delay
        return max(0.0, min(delay, self.end - time.monotonic()))


_T = TypeVar("_T")


def _wait_until(fetch: Callable[[], _T], done: Callable[[_T], bool], deadline: _Deadline, what: str) -> _T:
    """The loop behind every ``poll``/``wait_*``: ``fetch`` on the :func:`poll_delays` schedule
    until ``done`` accepts the value; ``TimeoutError(what)`` once ``deadline`` has passed.

    The aio client has the same loop with ``await``; the decisions (``done``) are shared.
    """
    for delay in poll_delays():
        value = fetch()
        if done(value):
            return value
        if deadline.expired():
            raise TimeoutError(what)
        time.sleep(deadline.clamp(delay))
    raise AssertionError("unreachable")  # pragma: no cover


def _timeout_seconds(timeout: Any) -> float:
    """A number for a ``Transport.timeout`` that may be a (connect, read) tuple."""
    if isinstance(timeout, (tuple, list)):
        return float(sum(t for t in timeout if t))
    return float(timeout) if timeout else 0.0


# ----------------------------------------------------------------------------- errors
class UnicoreHTTPError(requests.HTTPError, *_HTTPX_ERROR_BASES):  # type: ignore[misc]
    """A 4xx/5xx reply from a UNICORE server.

    The message is PyUNICORE's ``"<code> Server Error: <errorMessage> for url: <url>"``; the
    parts are also attributes: ``status_code``, ``error_message`` (the server's text),
    ``url``, ``method`` and ``response`` (as ``requests.HTTPError`` in PyUNICORE 1.x).
    """

    def __init__(self, message: str, response: Any = None, *, status_code: int | None = None,
                 error_message: str | None = None, url: str | None = None, method: str | None = None):
        super().__init__(message, response=response)
        self.status_code = status_code
        self.error_message = error_message
        self.url = url
        self.method = method

    # httpx.HTTPError defines ``request`` as a property that raises when unset; requests'
    # constructor reads it.  One plain attribute serves both.
    @property  # type: ignore[override]
    def request(self) -> Any:
        return self.__dict__.get("_unicore_request")

    @request.setter
    def request(self, value: Any) -> None:
        self.__dict__["_unicore_request"] = value


class BadRequestError(UnicoreHTTPError):
    """400: the server could not understand the request (bad JSON, missing parameters)."""


class AccessDeniedError(UnicoreHTTPError, PermissionError):
    """401/403: authentication failed or access is not allowed."""


class ResourceNotFoundError(UnicoreHTTPError, FileNotFoundError):
    """404: no such resource, file or action."""


class ConflictError(UnicoreHTTPError):
    """409: the action does not fit the resource's state (e.g. resuming a running workflow)."""


class ServerError(UnicoreHTTPError):
    """5xx: the server failed to process the request."""


class ServiceUnavailableError(ServerError):
    """503: the service is disabled or a backend (TSI, UFTPD) is down."""


class UnicoreTimeoutError(requests.Timeout, TimeoutError):
    """No reply within ``Transport.timeout`` seconds."""


_ERROR_CLASSES: dict[int, type[UnicoreHTTPError]] = {
    400: BadRequestError,
    401: AccessDeniedError,
    403: AccessDeniedError,
    404: ResourceNotFoundError,
    409: ConflictError,
    503: ServiceUnavailableError,
}


def error_from_response(res: Any, method: str | None = None) -> UnicoreHTTPError:
    """The typed exception for a 4xx/5xx reply (requests or httpx response objects)."""
    status = int(res.status_code)
    reason = getattr(res, "reason", None) or getattr(res, "reason_phrase", None) or ""
    server_message = None
    try:
        body = res.json()
        if isinstance(body, dict):
            server_message = body.get("errorMessage")
    except Exception:  # noqa: BLE001 - no or invalid JSON body: use the reason phrase
        server_message = None
    text = server_message or reason or "n/a"
    url = str(res.url)
    msg = f"{status} Server Error: {text} for url: {url}"
    cls = _ERROR_CLASSES.get(status) or (ServerError if status >= 500 else UnicoreHTTPError)
    return cls(msg, response=res, status_code=status, error_message=server_message or reason, url=url,
               method=method)


# ----------------------------------------------------------------------------- HTTP plumbing
_HAS_QUICKACK = hasattr(socket, "TCP_QUICKACK")


def _quickack_pool_classes() -> dict[str, type] | None:
    """urllib3 pool classes whose connections re-arm TCP_QUICKACK before reading a reply.

    A server that writes headers and body in two segments without TCP_NODELAY (Python's
    http.server, some proxies) otherwise waits for our delayed ACK: ~40 ms per request on a
    kept-alive connection, which would make connection reuse slower than reconnecting.
    """
    if not _HAS_QUICKACK:
        return None
    try:
        from urllib3.connection import HTTPConnection, HTTPSConnection
        from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
    except ImportError:  # pragma: no cover
        return None

    def quickack(base: type) -> type:
        def getresponse(self: Any, *args: Any, **kwargs: Any) -> Any:
            sock = getattr(self, "sock", None)
            if sock is not None:
                try:
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
                except (OSError, AttributeError):
                    pass
            return base.getresponse(self, *args, **kwargs)

        return type("QuickAck" + base.__name__, (base,), {"getresponse": getresponse})

    http_conn = quickack(HTTPConnection)
    https_conn = quickack(HTTPSConnection)
    http_pool = type("QuickAckHTTPConnectionPool", (HTTPConnectionPool,), {"ConnectionCls": http_conn})
    https_pool = type("QuickAckHTTPSConnectionPool", (HTTPSConnectionPool,), {"ConnectionCls": https_conn})
    return {"http": http_pool, "https": https_pool}


class _PooledAdapter(requests.adapters.HTTPAdapter):
    """An adapter with a larger pool, 1 MiB socket writes for uploads (urllib3 2.x) and
    quick ACKs on kept-alive connections."""

    def init_poolmanager(self, connections: int, maxsize: int, block: bool = False, **pool_kwargs: Any) -> None:
        try:
            import urllib3

            if int(urllib3.__version__.split(".")[0]) >= 2:
                pool_kwargs.setdefault("blocksize", _CHUNK)
        except (ImportError, ValueError):  # pragma: no cover
            pass
        super().init_poolmanager(connections, maxsize, block, **pool_kwargs)
        classes = _quickack_pool_classes()
        if classes is not None:
            self.poolmanager.pool_classes_by_scheme = classes


def new_http_session(pool_maxsize: int = 32) -> requests.Session:
    """A pooled ``requests.Session``: keep-alive connections, retries only where safe.

    Connection failures (the request never left) are retried twice for every method; read
    failures only for idempotent methods without a body (a stale pooled connection).
    """
    try:
        from urllib3.util.retry import Retry

        retry: Any = Retry(total=3, connect=2, read=1, status=0, redirect=0,
                           allowed_methods=frozenset({"GET", "HEAD", "DELETE", "OPTIONS"}),
                           backoff_factor=0.05, raise_on_status=False)
    except ImportError:  # pragma: no cover
        retry = 0
    sess = requests.Session()
    adapter = _PooledAdapter(pool_connections=8, pool_maxsize=pool_maxsize, max_retries=retry)
    sess.mount("https://", adapter)
    sess.mount("http://", adapter)
    return sess


_REQUESTS_FUNCTIONS: dict[Any, str] = {
    requests.get: "GET",
    requests.put: "PUT",
    requests.post: "POST",
    requests.delete: "DELETE",
    requests.head: "HEAD",
    requests.patch: "PATCH",
    requests.options: "OPTIONS",
}


class _TransportState:
    """What the sync and the asyncio Transport share: credential, settings, the security
    session id and the request headers derived from them."""

    def __init__(self, credential: Credential | None, verify: bool | str = False, use_security_sessions: bool = True,
                 timeout: float | tuple[float, float] = 120):
        self.credential = credential if credential is not None else Anonymous()
        self.verify = verify
        self.use_security_sessions = use_security_sessions
        self.last_session_id: str | None = None
        self._preferences: str | None = None
        self.timeout = timeout
        self.settings_changed = True
        #: bumped whenever the identity settings change; cached properties remember it
        self._settings_version = 0

    def _copy_state_to(self, other: _TransportState) -> None:
        other._preferences = self._preferences
        other.last_session_id = self.last_session_id
        other._settings_version = self._settings_version

    def _headers(self, kwargs: dict[str, Any]) -> dict[str, str]:
        headers = {"Accept": "application/json", "Content-Type": "application/json"}
        auth = self.credential.get_auth_header()
        if auth:
            headers["Authorization"] = auth
        if self.use_security_sessions and self.last_session_id is not None:
            headers[_SESSION_HEADER] = self.last_session_id
        if self._preferences is not None:
            headers[_PREFERENCES_HEADER] = self._preferences
        extra = kwargs.pop("headers", None)
        if extra:
            headers.update(extra)
        return headers

    @property
    def preferences(self) -> str | None:
        return self._preferences

    @preferences.setter
    def preferences(self, value: str | None) -> None:
        # a security session pins the old attributes (pyunicore issue #40): drop it
        self._preferences = value
        self.last_session_id = None
        self.settings_changed = True
        self._settings_version += 1

    def _session_expired(self, status_code: int, headers: dict[str, str]) -> bool:
        """432 = unknown/expired security session: retry once with credentials only."""
        if self.use_security_sessions and status_code == 432:
            headers.pop(_SESSION_HEADER, None)
            self.last_session_id = None
            return True
        return False

    def _remember_session(self, res: Any) -> None:
        if self.use_security_sessions:
            self.last_session_id = res.headers.get(_SESSION_HEADER)
        self.settings_changed = False

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.credential!r}, verify={self.verify!r}, "
                f"use_security_sessions={self.use_security_sessions}, timeout={self.timeout!r})")


class Transport(_TransportState):
    """Sends requests on behalf of one credential.

    * adds the ``Authorization`` header (the credential caches expensive tokens);
    * handles UNICORE security sessions (resend with credentials once on 432);
    * sends user preferences (``uid:x,group:y,role:z``);
    * applies ``timeout`` to every request and raises typed errors.

    All clones share one pooled HTTP session; ``close()`` (or ``with Transport(...)``)
    releases its connections.
    """

    def __init__(self, credential: Credential | None, verify: bool | str = False, use_security_sessions: bool = True,
                 timeout: float | tuple[float, float] = 120, *, http_session: requests.Session | None = None):
        super().__init__(credential, verify, use_security_sessions, timeout)
        self._http = http_session if http_session is not None else new_http_session()

    def _clone(self) -> Transport:
        """A copy with the same credential, settings and session id, sharing the pool."""
        tr = Transport(self.credential, verify=self.verify, use_security_sessions=self.use_security_sessions,
                       timeout=self.timeout, http_session=self._http)
        self._copy_state_to(tr)
        return tr

    def check_error(self, res: requests.Response, method: str | None = None) -> None:
        """Raise a typed :class:`UnicoreHTTPError` for 4xx/5xx replies."""
        if 400 <= res.status_code < 600:
            exc = error_from_response(res, method or getattr(res.request, "method", None))
            res.close()
            raise exc
        res.raise_for_status()

    def repeat_required(self, res: requests.Response, headers: dict[str, str]) -> bool:
        """432 = unknown/expired security session: retry once with credentials only."""
        return self._session_expired(res.status_code, headers)

    def run_method(self, method: Callable[..., requests.Response] | str, **args: Any) -> requests.Response:
        """Perform one request with headers, timeout, the 432 retry and error checking.

        ``method`` is an HTTP verb (``"GET"``) or, as in PyUNICORE, one of ``requests.get``,
        ``requests.put``, ... (these are sent through the pooled session).
        """
        headers = self._headers(args)
        verb = method.upper() if isinstance(method, str) else _REQUESTS_FUNCTIONS.get(method)
        body = args.get("data")
        rewind = body.tell() if hasattr(body, "seek") and hasattr(body, "tell") else None
        res = self._send(method, verb, headers, args)
        if self.repeat_required(res, headers):
            res.close()
            if rewind is not None:
                body.seek(rewind)
            res = self._send(method, verb, headers, args)
        self.check_error(res, verb)
        self._remember_session(res)
        return res

    def _send(self, method: Any, verb: str | None, headers: dict[str, str], args: dict[str, Any]) -> requests.Response:
        url = args.get("url")
        started = time.perf_counter()
        try:
            if verb is not None:
                res = self._http.request(verb, headers=headers, verify=self.verify, timeout=self.timeout, **args)
            else:
                res = method(headers=headers, verify=self.verify, timeout=self.timeout, **args)
        except requests.Timeout as exc:
            raise UnicoreTimeoutError(f"{verb or 'request'} {url}: no reply within {self.timeout} s",
                                      request=getattr(exc, "request", None)) from exc
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s %s -> %d (%.1f ms)", verb, url, res.status_code, 1000 * (time.perf_counter() - started))
        return res

    def get(self, to_json: bool = True, **kwargs: Any) -> Any:
        """GET; the decoded JSON body, or the response if ``to_json`` is false."""
        res = self.run_method("GET", **kwargs)
        if not to_json:
            return res
        with res:
            return res.json()

    def put(self, **kwargs: Any) -> requests.Response:
        return self.run_method("PUT", **kwargs)

    def post(self, **kwargs: Any) -> requests.Response:
        return self.run_method("POST", **kwargs)

    def delete(self, **kwargs: Any) -> None:
        self.run_method("DELETE", **kwargs).close()

    @contextmanager
    def get_stream(self, **kwargs: Any) -> Iterator[requests.Response]:
        """Streaming GET (2.0.2): no security session header, so the reply is never a 432."""
        headers = self._headers(kwargs)
        headers.pop(_SESSION_HEADER, None)
        kwargs["stream"] = True
        res = self._send(None, "GET", headers, kwargs)
        try:
            self.check_error(res, "GET")
            yield res
        finally:
            res.close()

    # -- extras ----------------------------------------------------------------------------------
    @property
    def properties(self) -> dict[str, Any]:
        """The transport's settings as a JSON-ready dict, without secrets.

        PyUNICORE's README prints ``transport.properties`` although no PyUNICORE Transport has
        it; this makes that example work and is handy when debugging identity selection.
        """
        return {
            "credential": type(self.credential).__name__,
            "verify": self.verify,
            "timeout": self.timeout,
            "use_security_sessions": self.use_security_sessions,
            "security_session": self.last_session_id is not None,
            "preferences": self._preferences,
        }

    def close(self) -> None:
        """Close the pooled connections (shared with every clone)."""
        self._http.close()

    def __enter__(self) -> Transport:  # noqa: PYI034 - typing.Self needs Python 3.11
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _to_transport(security: Any) -> Transport:
    """PyUNICORE's rule: a Credential gets a new Transport, a Transport is cloned."""
    if isinstance(security, Credential):
        return Transport(security)
    if isinstance(security, Transport):
        return security._clone()
    if hasattr(security, "_clone") and hasattr(security, "get"):  # test doubles (FakeTransport)
        return security._clone()
    if hasattr(security, "get_auth_header"):
        return Transport(security)
    raise TypeError("Need Credential or Transport object")


# ----------------------------------------------------------------------------- resources
class _ResourceState:
    """Cache bookkeeping shared by the sync and asyncio resources."""

    transport: Any
    resource_url: str
    cache_time: float

    def _init_state(self, transport: Any, resource_url: str, cache_time: float) -> None:
        self.transport = transport
        self.resource_url = resource_url
        self.cache_time = cache_time
        self._last_properties: dict[str, Any] | None = None
        self._last_retrieved = float("-inf")
        self._known_links: dict[str, str] | None = None
        self._props_version = -1

    def _cache_valid(self) -> bool:
        """Fresh enough, and read with the transport's current identity settings (a changed
        ``preferences`` invalidates; merely being a new clone does not, unlike PyUNICORE,
        so objects created from a listing keep the properties that came with it)."""
        return (self._last_properties is not None
                and self._props_version == getattr(self.transport, "_settings_version", 0)
                and self.cache_time > 0 and time.monotonic() - self._last_retrieved <= self.cache_time)

    def _store_properties(self, props: dict[str, Any]) -> dict[str, Any]:
        self._last_properties = props
        self._last_retrieved = time.monotonic()
        self._props_version = getattr(self.transport, "_settings_version", 0)
        links = props.get("_links") if isinstance(props, dict) else None
        if isinstance(links, dict):
            self._known_links = {k: v["href"] for k, v in links.items() if isinstance(v, dict) and "href" in v}
        return props

    def _invalidate(self) -> None:
        self._last_retrieved = float("-inf")

    def _link_without_fetch(self, rel: str, fallback: str | None) -> str | None:
        """The href if known, or the documented fallback when links were never read."""
        if self._known_links is not None and rel in self._known_links:
            return self._known_links[rel]
        if fallback is not None and self._known_links is None:
            return self.resource_url + fallback
        return None

    def _link_after_fetch(self, rel: str, fallback: str | None) -> str:
        if self._known_links and rel in self._known_links:
            return self._known_links[rel]
        if fallback is not None:
            return self.resource_url + fallback
        raise KeyError(f"{self.resource_url} has no link '{rel}'")


class Resource(_ResourceState):
    """A REST resource with cached properties (``cache_time`` seconds, 0 = always re-read)."""

    def __init__(self, security: Credential | Transport, resource_url: str, cache_time: float = _DEFAULT_CACHE_TIME):
        self._init_state(_to_transport(security), resource_url, cache_time)

    def _refresh_properties(self) -> dict[str, Any]:
        """GET the properties now, whatever the cache says."""
        return self._store_properties(self.transport.get(url=self.resource_url))

    @property
    def properties(self) -> dict[str, Any]:
        """The resource's properties (cached for ``cache_time`` seconds)."""
        if not self._cache_valid():
            self._refresh_properties()
        assert self._last_properties is not None
        return self._last_properties

    @property
    def links(self) -> dict[str, str]:
        """``{rel: href}``; remembered once seen, since a resource's links do not change."""
        if self._known_links is None:
            self._refresh_properties()
            if self._known_links is None:
                self._known_links = {}
        return dict(self._known_links)

    def _link(self, rel: str, fallback: str | None = None) -> str:
        """The href of ``rel``; re-read once if unknown, else ``resource_url + fallback``."""
        href = self._link_without_fetch(rel, fallback)
        if href is not None:
            return href
        self._refresh_properties()
        return self._link_after_fetch(rel, fallback)

    # -- common operations ----------------------------------------------------------------------
    def delete(self) -> None:
        """Delete/destroy this resource."""
        self.transport.delete(url=self.resource_url)

    def set_properties(self, props: dict[str, Any]) -> dict[str, Any]:
        """PUT modified properties (``tags``, ``acl``, ``terminationTime``, ...)."""
        res = self.transport.put(url=self.resource_url, json=props)
        self._invalidate()
        with res:
            return res.json()

    def __repr__(self) -> str:
        return f"Resource: {self.resource_url}"

    __str__ = __repr__


def load_properties(resources: Iterable[Resource], max_workers: int = 8) -> list[Resource]:
    """Fetch the properties of many resources concurrently over the shared connection pool.

    A UNICORE collection lists URLs only; this turns "one slow GET after another" for, e.g.,
    the status of 500 jobs into a few parallel streams.  Returns the resources (cache warm).
    """
    items = list(resources)
    if len(items) <= 1 or max_workers <= 1:
        for r in items:
            r._refresh_properties()
        return items
    with concurrent.futures.ThreadPoolExecutor(max_workers=max_workers) as pool:
        for future in [pool.submit(r._refresh_properties) for r in items]:
            future.result()
    return items


#: A paging conversation without the I/O: it yields the keyword arguments of each GET, is
#: sent the JSON reply, and returns the result.  The sync and the aio client drive the same
#: generators (:func:`_get_pages` here, ``_get_pages`` there), so they page alike.
_Pages = Generator[dict[str, Any], dict[str, Any], Any]


def _get_pages(pages: _Pages, get: Callable[..., Any]) -> Any:
    """Run a paging conversation with a blocking ``get`` (``Transport.get``)."""
    request = next(pages)
    try:
        while True:
            request = pages.send(get(**request))
    except StopIteration as end:
        return end.value


def _collect_pages(url: str, key: str, offset: int = 0, num: int | None = None,
                   tags: Iterable[str] | None = None, filter: str | None = None) -> _Pages:
    """The URLs of a collection; with ``num=None`` every page is followed via ``next`` (a
    ``next`` seen before, or an empty page, ends it)."""
    reply = yield {"url": url, "params": _url_params(offset, num, tags, filter)}
    items = list(reply.get(key) or [])
    if num is not None:
        return items
    seen = {url}
    for _ in range(_MAX_PAGES):
        nxt = ((reply.get("_links") or {}).get("next") or {}).get("href")
        if not nxt or nxt in seen:
            break
        seen.add(nxt)
        reply = yield {"url": nxt}
        page = reply.get(key) or []
        if not page:
            break
        items.extend(page)
    return items


def _collect(transport: Transport, url: str, key: str, offset: int = 0, num: int | None = None,
             tags: Iterable[str] | None = None, filter: str | None = None) -> list[str]:
    """The URLs of a collection; with ``num=None`` every page is followed via ``next``."""
    return _get_pages(_collect_pages(url, key, offset, num, tags, filter), transport.get)


def _directory_pages(url: str) -> _Pages:
    """A directory listing with the ``content`` of all its pages merged into the first."""
    reply = yield {"url": url}
    seen = {url}
    for _ in range(_MAX_PAGES):
        nxt = ((reply.get("_links") or {}).get("next") or {}).get("href")
        if not nxt or nxt in seen or not isinstance(reply.get("content"), dict):
            break
        seen.add(nxt)
        page = yield {"url": nxt}
        more = page.get("content") or {}
        if not more:
            break
        reply["content"].update(more)
        reply["_links"] = page.get("_links", {})
    return reply


# ----------------------------------------------------------------------------- registry
def parse_registry_entries(entries: Iterable[Mapping[str, Any]]) -> tuple[dict[str, str], dict[str, str]]:
    """``(site_urls, workflow_services_urls)`` from registry entries (http or https)."""
    sites: dict[str, str] = {}
    workflows: dict[str, str] = {}
    for entry in entries:
        href = str(entry.get("href", ""))
        kind = entry.get("type")
        if kind == "CoreServices":
            m = _CORE_URL_RE.match(href)
            if m:
                sites[m.group("name")] = m.group("base")
        elif kind == "WorkflowServices":
            m = _WORKFLOWS_URL_RE.match(href)
            if m:
                workflows[m.group("name")] = m.group("base")
    return sites, workflows


def _pick(urls: Mapping[str, str], name: str | None, what: str) -> str:
    if not urls:
        raise KeyError(f"the registry lists no {what}")
    if name is None:
        return next(iter(urls.values()))
    try:
        return urls[name]
    except KeyError:
        raise KeyError(f"no {what} named '{name}' (available: {', '.join(urls)})") from None


class Registry(Resource):
    """A UNICORE service registry: collects the base URLs of the registered sites.

    >>> registry = Registry(credential, "https://host:8080/REGISTRY/rest/registries/default_registry")
    >>> client = registry.site("DEMO-SITE")
    """

    def __init__(self, security: Credential | Transport, url: str, cache_time: float = _DEFAULT_CACHE_TIME):
        super().__init__(security, url, cache_time)
        self.site_urls: dict[str, str] = {}
        self.workflow_services_urls: dict[str, str] = {}
        self.refresh()

    def refresh(self) -> None:
        """Re-read the registry entries."""
        props = self._refresh_properties()
        self.site_urls, self.workflow_services_urls = parse_registry_entries(props.get("entries") or [])

    def site(self, name: str | None = None) -> Client:
        """A :class:`Client` for the named site (the first one if no name is given)."""
        return Client(self.transport, _pick(self.site_urls, name, "site"))

    def workflow_service(self, name: str | None = None) -> WorkflowService:
        """A :class:`WorkflowService` by name (the first one if no name is given)."""
        return WorkflowService(self.transport, _pick(self.workflow_services_urls, name, "workflow service"))


# ----------------------------------------------------------------------------- site
def version_tuple(version: str) -> tuple[int, ...]:
    """``"10.1.2-p1"`` -> ``(10, 1, 2)``; a non-numeric version (``DEVELOPMENT``) -> ``(0, 0, 0)``."""
    parts = []
    for token in str(version).split("-")[0].split("."):
        m = re.match(r"\d+", token)
        if not m:
            break
        parts.append(int(m.group(0)))
    return tuple(parts) if parts else (0, 0, 0)


def prepare_job_description(job_description: Any, inputs: Any) -> dict[str, Any]:
    """Normalise a job description (dicts are updated in place, as PyUNICORE does)."""
    if hasattr(job_description, "to_dict") and not isinstance(job_description, dict):
        job_description = job_description.to_dict()
    if inputs or job_description.get("haveClientStageIn") is True:
        job_description["haveClientStageIn"] = "true"
    return job_description


def needs_start(job_description: Mapping[str, Any]) -> bool:
    """A job waits for ``action:start`` only when the client stages in; otherwise the server
    starts it by itself and PyUNICORE 2.0.2's unconditional start is a wasted round trip."""
    return str(job_description.get("haveClientStageIn", "")).lower() == "true"


def is_allocation(job_description: Mapping[str, Any]) -> bool:
    return str(job_description.get("Job type") or "n/a").upper() == "ALLOCATE"


def _input_pairs(inputs: Any) -> list[tuple[str, str | None]]:
    """``(local_path, remote_name_or_None)`` from a list of paths or a ``{remote: local}`` map."""
    if not inputs:
        return []
    if isinstance(inputs, Mapping):
        return [(os.fspath(local), str(remote)) for remote, local in inputs.items()]
    if isinstance(inputs, (str, os.PathLike)):
        return [(os.fspath(inputs), None)]
    return [(os.fspath(p), None) for p in inputs]


def _upload_inputs(storage: Storage, inputs: Any) -> None:
    pairs = _input_pairs(inputs)
    if len(pairs) <= 1:
        for local, remote in pairs:
            storage.upload(local, destination=remote)
        return
    with concurrent.futures.ThreadPoolExecutor(max_workers=min(4, len(pairs))) as pool:
        for f in [pool.submit(storage.upload, local, remote) for local, remote in pairs]:
            f.result()


class Client(Resource):
    """Entry point to the UNICORE API of one site (``https://.../<SITE>/rest/core``).

    >>> client = Client(UsernamePassword("demouser", "test123"), base_url)
    >>> job = client.new_job({"Executable": "date"})
    """

    def __init__(self, security: Credential | Transport, site_url: str, check_authentication: bool = True,
                 cache_time: float = _DEFAULT_CACHE_TIME):
        super().__init__(security, site_url, cache_time)
        if isinstance(self.transport.credential, Anonymous):
            check_authentication = False
        self.check_authentication = check_authentication
        if self.check_authentication:
            self.assert_authentication()

    def assert_authentication(self) -> None:
        """Raise :class:`AuthenticationFailedException` if the server sees us as anonymous."""
        if self.access_info().get("role", {}).get("selected") == "anonymous":
            raise AuthenticationFailedException(f"Failure to authenticate at {self.resource_url}")

    def access_info(self) -> dict[str, Any]:
        """Authentication and authorisation information about the current user."""
        return self.properties["client"]

    def server_version_info(self) -> tuple[int, ...]:
        """The server version as a tuple, e.g. ``(10, 1, 2)``."""
        return version_tuple(self.properties["server"]["version"])

    def get_storages(self, offset: int = 0, num: int | None = None, tags: Iterable[str] | None = None,
                     all: bool = False) -> list[Storage]:
        """The storages of this site; ``all=True`` includes job working directories.

        With ``num=None`` every page is returned (PyUNICORE stopped at the server's first 200).
        """
        urls = _collect(self.transport, self._link("storages", "/storages"), "storages", offset, num, tags,
                        "all" if all else None)
        return [Storage(self.transport, u) for u in urls]

    def get_transfers(self, offset: int = 0, num: int | None = None,
                      tags: Iterable[str] | None = None) -> list[Transfer]:
        """Server-to-server transfers (all pages with ``num=None``)."""
        urls = _collect(self.transport, self._link("transfers", "/transfers"), "transfers", offset, num, tags)
        return [Transfer(self.transport, u) for u in urls]

    def get_applications(self) -> list[Application]:
        """Applications of every compute resource (one GET for the factory list, one each)."""
        apps = []
        for compute in self.get_compute():
            apps.extend(compute.get_applications())
        return apps

    def get_compute(self) -> list[Compute]:
        """The compute resources (target system factories) of this site."""
        urls = _collect(self.transport, self._link("factories", "/factories"), "factories")
        return [Compute(self.transport, u) for u in urls]

    def get_jobs(self, offset: int = 0, num: int | None = None, tags: Iterable[str] | None = None) -> list[Job]:
        """Jobs as lazy :class:`Job` objects (no GET per job; all pages with ``num=None``).

        Use :func:`load_properties` to fetch their properties concurrently.
        """
        urls = _collect(self.transport, self._link("jobs", "/jobs"), "jobs", offset, num, tags)
        return [Job(self.transport, u) for u in urls]

    def new_job(self, job_description: dict[str, Any], inputs: Any = None, autostart: bool = True) -> Job:
        """Submit a job, upload ``inputs`` (list of local paths, or ``{remote: local}``) into its
        working directory, and start it if it waits for client stage-in.

        Returns an :class:`Allocation` for ``"Job type": "ALLOCATE"``.
        """
        jd = prepare_job_description(job_description, inputs)
        with self.transport.post(url=self._link("jobs", "/jobs"), json=jd) as resp:
            job_url = resp.headers["Location"]
        job: Job = Allocation(self.transport, job_url) if is_allocation(jd) else Job(self.transport, job_url)
        if inputs:
            _upload_inputs(job.working_dir, inputs)
        if autostart and needs_start(jd):
            job.start()
        return job

    def execute(self, cmd: str, login_node: str | None = None) -> Job:
        """Run a command on a login node (``Job type: INTERACTIVE``)."""
        job_description: dict[str, Any] = {"Executable": cmd, "Job type": "INTERACTIVE"}
        if login_node:  # PyUNICORE sent the node only when it was *not* given (inverted test)
            job_description["Login node"] = login_node
        with self.transport.post(url=self._link("jobs", "/jobs"), json=job_description) as resp:
            job_url = resp.headers["Location"]
        return Job(self.transport, job_url)

    def issue_auth_token(self, lifetime: int = -1, renewable: bool = False, limited: bool = False) -> str:
        """A JWT issued by this server (``lifetime`` <= 0: server default)."""
        return _issue_token(self.transport, self.resource_url + "/token", lifetime, renewable, limited)

    def __repr__(self) -> str:
        return f"Client: {self.resource_url}"

    __str__ = __repr__


def _issue_token(transport: Transport, url: str, lifetime: int, renewable: bool, limited: bool) -> str:
    params: dict[str, Any] = {}
    if lifetime > 0:
        params["lifetime"] = lifetime
    if renewable:
        params["renewable"] = "true"
    if limited:
        params["limited"] = "true"
    with transport.get(url=url, headers={"Accept": "text/plain"}, to_json=False, params=params) as resp:
        return resp.text


class Application(Resource):
    """An application installed at a site (from the IDB)."""

    def __init__(self, security: Credential | Transport, app_url: str, submit_url: str | None = None,
                 cache_time: float = _DEFAULT_CACHE_TIME):
        super().__init__(security, app_url, cache_time)
        if submit_url is None:
            submit_url = app_url.split("/rest/core/factories/")[0] + "/rest/core/jobs"
        self.submit_url = submit_url

    @property
    def name(self) -> str:
        return self.properties["ApplicationName"]

    @property
    def version(self) -> str:
        return self.properties["ApplicationVersion"]

    @property
    def options(self) -> dict[str, Any]:
        return self.properties.get("Options", {})

    def __repr__(self) -> str:
        try:
            return f"Application {self.name} {self.version} @ {self.submit_url}"
        except Exception:  # noqa: BLE001 - repr must not fail
            return f"Application {self.resource_url}"

    __str__ = __repr__


class _OrderedStatus(Enum):
    """Status enums compare by declaration order (``ordinal()``)."""

    def ordinal(self) -> int:
        return list(type(self)).index(self)

    def __repr__(self) -> str:
        return self.name

    def __str__(self) -> str:
        return self.name

    @classmethod
    def _missing_(cls, value: object) -> Any:
        if isinstance(value, str) and value.upper() in cls.__members__:
            return cls.__members__[value.upper()]
        fallback = cls.__members__.get("UNDEFINED")
        if fallback is not None:
            log.warning("unknown %s %r from server, treated as UNDEFINED", cls.__name__, value)
            return fallback
        return None


class JobStatus(_OrderedStatus):
    """UNICORE job states, in life-cycle order (unknown server values map to UNDEFINED)."""

    UNDEFINED = "UNDEFINED"
    READY = "READY"
    STAGINGIN = "STAGINGIN"
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    STAGINGOUT = "STAGINGOUT"
    SUCCESSFUL = "SUCCESSFUL"
    FAILED = "FAILED"


_FINAL_JOB_STATES = (JobStatus.SUCCESSFUL, JobStatus.FAILED)


def _job_reached(status: JobStatus, state: JobStatus) -> bool:
    """Whether a job waiting for ``state`` is done: a final state ends any wait."""
    return status in _FINAL_JOB_STATES or status.ordinal() >= state.ordinal()


def _allocation_available(props: Mapping[str, Any]) -> bool:
    """An allocation is usable once it has a real batch id (or can never get one: final)."""
    return (JobStatus(props.get("status")) in _FINAL_JOB_STATES
            or not str(props.get("batchSystemID", "")).startswith("INTERACTIVE_"))


class Job(Resource):
    """A UNICORE job."""

    def __init__(self, security: Credential | Transport, job_url: str, cache_time: float = _DEFAULT_CACHE_TIME):
        super().__init__(security, job_url, cache_time)

    @property
    def working_dir(self) -> Storage:
        """The job's working directory; while the job runs, waits until it is READY."""
        storage = Storage(self.transport, self._link("workingDirectory"))
        if self.is_running():
            storage._wait_until_ready(timeout=_timeout_seconds(self.transport.timeout) or 120)
        return storage

    @property
    def status(self) -> JobStatus:
        return JobStatus(self.properties["status"])

    def bss_details(self) -> dict[str, Any]:
        """Low-level batch system details."""
        return self.transport.get(url=self._link("details", "/details"))

    @property
    def exit_code(self) -> int | None:
        value = self.properties.get("exitCode")
        if value is None or value == "" or value == "N/A":
            return None
        return int(value)

    @property
    def log(self) -> list[str]:
        return self.properties.get("log", [])

    def is_running(self) -> bool:
        """True until the job is SUCCESSFUL or FAILED."""
        return self.status not in _FINAL_JOB_STATES

    def _action(self, name: str) -> None:
        with self.transport.post(url=self._link(f"action:{name}", f"/actions/{name}"), json={}):
            pass
        self._invalidate()

    def abort(self) -> None:
        self._action("abort")

    def restart(self) -> None:
        self._action("restart")

    def start(self) -> None:
        """Start the job (needed only after client stage-in)."""
        self._action("start")

    @property
    def job_id(self) -> str:
        """The last segment of the job URL."""
        return self.resource_url.rstrip("/").rsplit("/", 1)[-1]

    id = job_id  # aio spelling

    def poll(self, state: JobStatus = JobStatus.SUCCESSFUL, timeout: float = 0) -> JobStatus:
        """Wait until the job reaches ``state`` or a later one (FAILED satisfies any state).

        Checks after 50 ms, then backs off to 2 s; ``TimeoutError`` after ``timeout`` seconds
        (0 = wait forever).  Returns the status reached.
        """
        if state == JobStatus.UNDEFINED:
            raise ValueError(f"Cannot wait for {state}")
        deadline = _Deadline(timeout)
        if self._last_properties is not None:
            cached = JobStatus(self._last_properties.get("status", "UNDEFINED"))
            if cached in _FINAL_JOB_STATES and self._cache_valid():
                return cached
        return _wait_until(lambda: JobStatus(self._refresh_properties()["status"]),
                           lambda status: _job_reached(status, state), deadline,
                           f"Timeout waiting for job to become {state.value}")

    def __repr__(self) -> str:
        try:
            return f"Job: {self.resource_url} submitted: {self.properties.get('submissionTime')} status: {self.status}"
        except Exception:  # noqa: BLE001 - repr must not fail
            return f"Job: {self.resource_url}"

    __str__ = __repr__


class Allocation(Job):
    """A batch allocation: tasks submitted with :meth:`new_job` run inside it."""

    def new_job(self, job_description: dict[str, Any], inputs: Any = None, autostart: bool = True) -> Job:
        """Submit a task into this allocation (``inputs`` as for :meth:`Client.new_job`)."""
        jd = prepare_job_description(job_description, inputs)
        with self.transport.post(url=self.resource_url, json=jd) as resp:
            job_url = resp.headers["Location"]
        job = Job(self.transport, job_url)
        if inputs:
            _upload_inputs(job.working_dir, inputs)
        if autostart and needs_start(jd):
            job.start()
        return job

    def is_ready(self) -> bool:
        """RUNNING with a real batch system id (no longer ``INTERACTIVE_...``)."""
        props = self._refresh_properties()
        return (JobStatus(props.get("status")) == JobStatus.RUNNING
                and not str(props.get("batchSystemID", "")).startswith("INTERACTIVE_"))

    def wait_until_available(self, timeout: float = 0) -> None:
        """Wait until the allocation is RUNNING and has its batch system id."""
        deadline = _Deadline(timeout)
        self.poll(JobStatus.RUNNING, timeout)
        _wait_until(self._refresh_properties, _allocation_available, deadline,
                    "Timeout waiting for allocation to become available")

    def __repr__(self) -> str:
        return "Allocation" + super().__repr__()[3:]

    __str__ = __repr__


class Compute(Resource):
    """A compute resource (target system factory: one cluster with its queues)."""

    def get_queues(self) -> dict[str, Any]:
        return self.properties["resources"]

    @property
    def queues(self) -> dict[str, Any]:
        """aio spelling of :meth:`get_queues`."""
        return self.get_queues()

    def get_applications(self) -> list[Application]:
        base_url = self._link("applications", "/applications")
        return [Application(self.transport, base_url + "/" + app) for app in self.properties.get("applications", [])]

    def __repr__(self) -> str:
        return f"Compute: {self.resource_url}"

    __str__ = __repr__


# ----------------------------------------------------------------------------- storages
def file_url(storage_url: str, path: str) -> str:
    """``<storage>/files/<normalised path>`` (POSIX, no trailing slash, URL-quoted)."""
    norm = pathlib.PurePosixPath("/" + str(path).replace("\\", "/").lstrip("/")).as_posix().rstrip("/")
    norm = re.sub(r"/\.(?=/|$)", "", norm)
    return storage_url + "/files" + urllib.parse.quote(norm, safe="/:@!$&'()*+,;=~")


def range_header(offset: int, size: int) -> str | None:
    """``Range`` value for ``offset``/``size`` (-1 = to the end); None = whole file."""
    if offset < 0:
        raise ValueError("offset must not be negative")
    if offset == 0 and size < 0:
        return None
    if size < 0:
        return f"bytes={offset}-"
    return f"bytes={offset}-{offset + size - 1}"


def _client_address(url: str) -> str:
    """The local IP address this host uses to reach the server of ``url`` (for UFTP)."""
    host = urllib.parse.urlsplit(url).hostname or "localhost"
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_DGRAM) as s:
            s.connect((host, 9))
            return s.getsockname()[0]
    except OSError:
        return "127.0.0.1"


def _uftp_secret() -> str:
    return "".join(secrets.choice(string.ascii_lowercase) for _ in range(32))


class Storage(Resource):
    """A UNICORE storage (home, scratch, a job's working directory, ...)."""

    def __init__(self, security: Credential | Transport, storage_url: str, cache_time: float = _DEFAULT_CACHE_TIME):
        super().__init__(security, storage_url, cache_time)
        self._uftp_lock = threading.Lock()
        self._uftp_session: Any = None

    def _wait_until_ready(self, timeout: float = 30) -> None:
        """Wait for ``resourceStatus == READY`` (OSError on ERROR or timeout)."""
        deadline = _Deadline(timeout if timeout and timeout > 0 else 30)
        for delay in poll_delays():
            props = self.properties if self._cache_valid() else self._refresh_properties()
            status = props.get("resourceStatus", "READY")
            if status == "READY":
                return
            if status == "ERROR":
                raise OSError(f"Storage {self.resource_url} is in state ERROR: "
                              f"{props.get('resourceStatusMessage', '')}")
            if deadline.expired():
                raise OSError(f"Storage {self.resource_url} not READY after {timeout} s (status {status})")
            time.sleep(deadline.clamp(delay))
            self._invalidate()

    def _to_file_url(self, path: str) -> str:
        return file_url(self.resource_url, path)

    def contents(self, path: str = "/") -> dict[str, Any]:
        """The JSON listing of a directory; all pages of ``content`` are merged."""
        return _get_pages(_directory_pages(self._to_file_url(path)), self.transport.get)

    def _path_object(self, path_url: str, name: str, props: dict[str, Any]) -> PathFile | PathDir:
        cls = PathDir if props.get("isDirectory") else PathFile
        obj = cls(self, path_url, name, self.cache_time)
        obj._store_properties(props)
        return obj

    def stat(self, path: str) -> PathFile | PathDir:
        """A :class:`PathFile` or :class:`PathDir` for ``path`` (properties already loaded)."""
        path_url = self._to_file_url(path)
        props = self.transport.get(url=path_url, headers={"Accept": "application/json"})
        return self._path_object(path_url, path, props)

    def listdir(self, base: str = "/") -> dict[str, PathFile | PathDir]:
        """``{name: PathFile|PathDir}`` for a directory (keys without the leading ``/``)."""
        ret: dict[str, PathFile | PathDir] = {}
        for path, meta in (self.contents(base).get("content") or {}).items():
            name = path.lstrip("/")
            ret[name] = self._path_object(self._to_file_url(path), name, dict(meta))
        return ret

    def rename(self, source: str, target: str) -> None:
        with self.transport.post(url=self._link("action:rename", "/actions/rename"),
                                 json={"from": source, "to": target}):
            pass

    def copy(self, source: str, target: str) -> None:
        with self.transport.post(url=self._link("action:copy", "/actions/copy"), json={"from": source, "to": target}):
            pass

    def mkdir(self, name: str) -> None:
        """Create a directory (with parents)."""
        with self.transport.post(url=self._to_file_url(name), json={}):
            pass

    def makedirs(self, name: str) -> None:
        self.mkdir(name)

    def rmdir(self, name: str) -> None:
        """Remove a directory and all its content."""
        self.transport.delete(url=self._to_file_url(name))

    def rm(self, name: str) -> None:
        self.transport.delete(url=self._to_file_url(name))

    def upload(self, file_name: str, destination: str | None = None, protocol: str | None = None,
               **uftp_options: Any) -> None:
        """Upload a local file (sub-directories are created).

        Default ``destination``: the base name for absolute paths, the relative path otherwise.
        ``protocol="UFTP"`` sends the data through a UFTP session (see :meth:`uftp_session`).
        """
        file_name = os.fspath(file_name)
        if destination is None:
            destination = os.path.basename(file_name) if os.path.isabs(file_name) else file_name
        if protocol and protocol.upper() == "UFTP":
            session = self.uftp_session(**uftp_options)
            remote = _session_path(destination)
            parent = remote.rpartition("/")[0]
            if parent:
                session.makedirs(parent)
            session.upload(file_name, remote)
            return
        with open(file_name, "rb") as fd:
            self.put(fd, destination)

    def put(self, source: Any, destination: str) -> None:
        """Upload ``source`` (bytes, str, or a binary file-like object) to ``destination``."""
        if isinstance(source, str):
            source = source.encode("utf-8")
        with self.transport.put(url=self._to_file_url(destination),
                                headers={"Content-Type": "application/octet-stream"}, data=source):
            pass

    def download(self, remote_path: str, local_file: Any = None, protocol: str | None = None,
                 **uftp_options: Any) -> None:
        """Download a remote file to a local path or a writable file object.

        ``protocol="UFTP"`` uses a UFTP session instead of HTTPS.
        """
        if local_file is None:
            local_file = os.path.basename(remote_path.rstrip("/"))
        if protocol and protocol.upper() == "UFTP":
            session = self.uftp_session(**uftp_options)
            if isinstance(local_file, (str, os.PathLike)):
                session.download(_session_path(remote_path), local_file)
            else:
                session.download_fileobj(_session_path(remote_path), local_file)
            return
        PathFile(self, self._to_file_url(remote_path), remote_path).download(local_file)

    # -- UFTP through the storage's exports endpoint ---------------------------------------------
    def uftp_session(self, auth_url: str | None = None, client_host: str | None = None, new: bool = False,
                     timeout: float = 30.0) -> Any:
        """A logged-in ``uftpcore.Session`` rooted at this storage (cached and reused).

        Without ``auth_url`` the session is requested from UNICORE/X itself (POST
        ``<storage>/exports`` with protocol UFTP and a client-chosen one-time secret, spec
        "storages as authenticators"); with ``auth_url`` (``.../rest/auth/<SERVER>``) an Auth
        server opens it at the storage's ``mountPoint``.  ``new=True`` returns a fresh session
        the caller must close.
        """
        with self._uftp_lock:
            cached = self._uftp_session
            if cached is not None and not new and not cached.closed:
                return cached
            session = self._open_uftp_session(auth_url, client_host, timeout)
            if not new:
                self._uftp_session = session
                weakref.finalize(self, _close_quietly, session)
            return session

    def _open_uftp_session(self, auth_url: str | None, client_host: str | None, timeout: float) -> Any:
        import uftpcore

        if auth_url:
            from pyunicore_fast.uftp.uftp import UFTP

            base_dir = self.properties.get("mountPoint") or "/"
            host, port, secret = UFTP().authenticate(self.transport, auth_url, base_dir)
            return uftpcore.connect(host, port, secret, timeout=timeout)
        secret = _uftp_secret()
        body = {
            "file": "__uftp_session__",
            "protocol": "UFTP",
            "extraParameters": {
                "uftp.secret": secret,
                "uftp.client.host": client_host or _client_address(self.resource_url),
                "uftp.persistent": "true",
                "uftp.streams": "1",
            },
        }
        with self.transport.post(url=self._link("exports", "/exports"), json=body) as resp:
            reply = resp.json()
        try:
            host = str(reply["uftp.server.host"]).replace(",", " ").split()[0]
            port = int(reply["uftp.server.port"])
        except (KeyError, ValueError, IndexError) as exc:
            raise OSError(f"{self.resource_url}/exports did not return UFTP server data ({exc})") from None
        return uftpcore.connect(host, port, secret, timeout=timeout)

    def close(self) -> None:
        """Close a cached UFTP session (HTTP connections belong to the transport)."""
        with self._uftp_lock:
            if self._uftp_session is not None:
                _close_quietly(self._uftp_session)
                self._uftp_session = None

    # -- server-to-server ---------------------------------------------------------------------------
    def _start_transfer(self, direction: str, file_name: str, remote_url: str, protocol: str | None,
                        scheduled: str | None, additional_parameters: Mapping[str, Any] | None) -> Transfer:
        params = dict(additional_parameters or {})
        if protocol:
            remote_url = protocol + ":" + remote_url
        if scheduled:
            params["scheduledStartTime"] = scheduled
        body = {"file": file_name, direction: remote_url, "extraParameters": params}
        with self.transport.post(url=self.resource_url + "/transfers", json=body) as resp:
            tr_url = resp.headers["Location"]
        return Transfer(self.transport, tr_url)

    def send_file(self, file_name: str, remote_url: str, protocol: str | None = None, scheduled: str | None = None,
                  additional_parameters: Mapping[str, Any] | None = None) -> Transfer:
        """Server-to-server push of ``file_name`` (wildcards allowed) to a remote file URL."""
        return self._start_transfer("target", file_name, remote_url, protocol, scheduled, additional_parameters)

    def receive_file(self, remote_url: str, file_name: str, protocol: str | None = None,
                     scheduled: str | None = None, additional_parameters: Mapping[str, Any] | None = None) -> Transfer:
        """Server-to-server pull of a remote file URL into ``file_name``."""
        return self._start_transfer("source", file_name, remote_url, protocol, scheduled, additional_parameters)

    def __repr__(self) -> str:
        return f"Storage: {self.resource_url}"

    __str__ = __repr__


def _session_path(path: str) -> str:
    """Storage paths are relative to the UFTP session's base directory."""
    return pathlib.PurePosixPath("/" + path.lstrip("/")).as_posix().lstrip("/") or "."


def _close_quietly(session: Any) -> None:
    try:
        session.close()
    except Exception as exc:  # noqa: BLE001 - best effort at cleanup
        log.debug("closing a UFTP session failed: %s", exc)


class Path(Resource):
    """Common base of remote files and directories."""

    def __init__(self, storage: Storage, path_url: str, name: str, cache_time: float = _DEFAULT_CACHE_TIME):
        super().__init__(storage.transport, path_url, cache_time)
        self.name = name
        self.storage = storage

    def isdir(self) -> bool:
        return False

    def isfile(self) -> bool:
        return False

    def size(self) -> int:
        return int(self.properties["size"])

    def get_metadata(self, name: str | None = None) -> Any:
        meta = self.properties.get("metadata", {})
        return meta[name] if name else meta

    def remove(self) -> None:
        """Remove this file or directory."""
        self.storage.rm(self.name)

    def __repr__(self) -> str:
        return f"{type(self).__name__}: {self.name}"

    __str__ = __repr__


class PathDir(Path):
    def isdir(self) -> bool:
        return True


class RawStream(io.RawIOBase):
    """The body of a file download: a readable file object *and* a context manager.

    PyUNICORE 1.x returned a file-like stream from ``PathFile.raw()`` (``.read()``,
    ``.readlines()``), 2.0.2 a context manager yielding an httpx response; this serves both.
    ``with f.raw() as r: r.read()`` and ``f.raw().read()`` work; so do ``iter_bytes()``,
    ``content``, ``status_code`` and ``headers`` of the underlying response.
    """

    def __init__(self, response: requests.Response | None):
        super().__init__()
        self.response = response
        self._raw = response.raw if response is not None else None
        if self._raw is not None:
            self._raw.decode_content = True
        self._buf = b""  # read ahead by readline()

    def readable(self) -> bool:
        return True

    def _fill(self, size: int) -> bytes:
        if self._raw is None:
            return b""
        return self._raw.read(size) or b""

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            data, self._buf = self._buf + (self._raw.read() or b"" if self._raw is not None else b""), b""
            return data
        if self._buf:
            data, self._buf = self._buf[:size], self._buf[size:]
            return data
        return self._fill(size)

    def readinto(self, b: Any) -> int:
        view = memoryview(b).cast("B")
        data = self.read(len(view))
        view[: len(data)] = data
        return len(data)

    def readline(self, size: int | None = -1) -> bytes:
        limit = size if size is not None and size >= 0 else None
        while True:
            nl = self._buf.find(b"\n")
            if nl >= 0 and (limit is None or nl < limit):
                line, self._buf = self._buf[: nl + 1], self._buf[nl + 1:]
                return line
            if limit is not None and len(self._buf) >= limit:
                line, self._buf = self._buf[:limit], self._buf[limit:]
                return line
            chunk = self._fill(65536)
            if not chunk:
                line, self._buf = self._buf, b""
                return line
            self._buf += chunk

    def iter_bytes(self, chunk_size: int = _CHUNK) -> Iterator[bytes]:
        while True:
            chunk = self.read(chunk_size)
            if not chunk:
                return
            yield chunk

    iter_content = iter_bytes

    @property
    def content(self) -> bytes:
        return self.read()

    @property
    def text(self) -> str:
        return self.read().decode("utf-8", "replace")

    @property
    def status_code(self) -> int:
        return self.response.status_code if self.response is not None else 200

    @property
    def headers(self) -> Mapping[str, str]:
        return self.response.headers if self.response is not None else {}

    def close(self) -> None:
        if self.response is not None:
            self.response.close()
        super().close()

    def __enter__(self) -> RawStream:  # noqa: PYI034 - typing.Self needs Python 3.11
        return self


class PathFile(Path):
    def isfile(self) -> bool:
        return True

    def _open(self, offset: int = 0, size: int = -1) -> requests.Response | None:
        rng = range_header(offset, size)
        if size == 0:
            return None  # PyUNICORE sent an invalid range here
        headers = {"Accept": "application/octet-stream"}
        if rng:
            headers["Range"] = rng
        return self.transport.get(url=self.resource_url, headers=headers, stream=True, to_json=False)

    def download(self, file: Any) -> None:
        """Stream the file into a local path (str/PathLike) or a writable file object."""
        res = self._open()
        assert res is not None
        with res:
            if isinstance(file, (str, os.PathLike)):
                with open(file, "wb") as fd:
                    fd.writelines(res.iter_content(_CHUNK))
            else:
                for chunk in res.iter_content(_CHUNK):
                    file.write(chunk)

    def raw(self, offset: int = 0, size: int = -1) -> RawStream:
        """The file content as a stream (see :class:`RawStream`); ``size=-1`` = to the end."""
        return RawStream(self._open(offset, size))

    def read(self, offset: int = 0, size: int = -1) -> bytes:
        """The (ranged) file content in memory."""
        res = self._open(offset, size)
        if res is None:
            return b""
        with res:
            return res.content


# ----------------------------------------------------------------------------- transfers
class TransferStatus(_OrderedStatus):
    """Server-to-server transfer states, in order."""

    CREATED = "CREATED"
    RUNNING = "RUNNING"
    DONE = "DONE"
    FAILED = "FAILED"
    ABORTED = "ABORTED"


_FINAL_TRANSFER_STATES = (TransferStatus.DONE, TransferStatus.FAILED, TransferStatus.ABORTED)


def _transfer_reached(status: TransferStatus, state: TransferStatus) -> bool:
    """Whether a transfer waiting for ``state`` is done: a final state ends any wait."""
    return status in _FINAL_TRANSFER_STATES or status.ordinal() >= state.ordinal()


class Transfer(Resource):
    """A server-to-server file transfer."""

    @property
    def status(self) -> TransferStatus:
        return TransferStatus(self.properties["status"])

    @property
    def transferred_bytes(self) -> int:
        return int(self.properties.get("transferredBytes", 0))

    def is_running(self) -> bool:
        """True until DONE, FAILED or ABORTED (PyUNICORE counted ABORTED as running)."""
        return self.status not in _FINAL_TRANSFER_STATES

    def abort(self) -> None:
        """Abort: ``action:abort`` if the server offers it, else DELETE (the real server's way)."""
        links = self.links
        if "action:abort" in links:
            with self.transport.post(url=links["action:abort"], json={}):
                pass
        else:
            self.delete()
        self._invalidate()

    def poll(self, state: TransferStatus = TransferStatus.DONE, timeout: float = 0) -> TransferStatus:
        """Wait until ``state`` or a final state; ``TimeoutError`` after ``timeout`` s (0 = never)."""
        return _wait_until(lambda: TransferStatus(self._refresh_properties()["status"]),
                           lambda status: _transfer_reached(status, state), _Deadline(timeout),
                           f"Timeout waiting for transfer to become {state.value}")

    def __repr__(self) -> str:
        try:
            return f"Transfer: {self.resource_url} running: {self.is_running()}"
        except Exception:  # noqa: BLE001
            return f"Transfer: {self.resource_url}"

    __str__ = __repr__


# ----------------------------------------------------------------------------- workflows
class WorkflowService(Resource):
    """The workflow service of a site (``.../rest/workflows``)."""

    def __init__(self, security: Credential | Transport, workflows_url: str, check_authentication: bool = True,
                 cache_time: float = _DEFAULT_CACHE_TIME):
        super().__init__(security, workflows_url, cache_time)
        if isinstance(self.transport.credential, Anonymous):
            check_authentication = False
        self.check_authentication = check_authentication
        if check_authentication:
            self.assert_authentication()

    def access_info(self) -> dict[str, Any]:
        return self.properties["client"]

    def assert_authentication(self) -> None:
        if self.access_info().get("role", {}).get("selected") == "anonymous":
            raise AuthenticationFailedException(f"Failure to authenticate at {self.resource_url}")

    def get_workflows(self, offset: int = 0, num: int | None = None,
                      tags: Iterable[str] | None = None) -> list[Workflow]:
        urls = _collect(self.transport, self.resource_url, "workflows", offset, num, tags)
        return [Workflow(self.transport, u) for u in urls]

    def new_workflow(self, wf_description: dict[str, Any]) -> Workflow:
        """Submit a workflow (a dict or a ``helpers.workflows.Description``)."""
        if hasattr(wf_description, "to_dict") and not isinstance(wf_description, dict):
            wf_description = wf_description.to_dict()
        with self.transport.post(url=self.resource_url, json=wf_description) as resp:
            wf_url = resp.headers["Location"]
        return Workflow(self.transport, wf_url)

    def __repr__(self) -> str:
        return f"WorkflowService: {self.resource_url}"

    __str__ = __repr__


class WorkflowStatus(_OrderedStatus):
    UNDEFINED = "UNDEFINED"
    RUNNING = "RUNNING"
    HELD = "HELD"
    SUCCESSFUL = "SUCCESSFUL"
    FAILED = "FAILED"
    ABORTED = "ABORTED"


_FINAL_WORKFLOW_STATES = (WorkflowStatus.SUCCESSFUL, WorkflowStatus.FAILED, WorkflowStatus.ABORTED)


def _workflow_reached(status: WorkflowStatus, state: WorkflowStatus) -> bool:
    """Whether a workflow waiting for ``state`` is done: at ``state``, past it, or final."""
    return status in _FINAL_WORKFLOW_STATES or status == state or (
        status.ordinal() >= state.ordinal() and state != WorkflowStatus.HELD)


class Workflow(Resource):
    """A running or finished workflow."""

    @property
    def status(self) -> WorkflowStatus:
        return WorkflowStatus(self.properties["status"])

    @property
    def parameters(self) -> dict[str, Any]:
        return self.properties.get("parameters", {})

    def is_running(self) -> bool:
        return self.status not in _FINAL_WORKFLOW_STATES

    def is_held(self) -> bool:
        return self.status == WorkflowStatus.HELD

    def poll(self, state: WorkflowStatus = WorkflowStatus.SUCCESSFUL, timeout: float = 0) -> WorkflowStatus:
        """Wait for ``state`` or a final state (a HELD workflow keeps waiting for SUCCESSFUL)."""
        if state == WorkflowStatus.UNDEFINED:
            raise ValueError(f"Cannot wait for {state}")
        return _wait_until(lambda: WorkflowStatus(self._refresh_properties()["status"]),
                           lambda status: _workflow_reached(status, state), _Deadline(timeout),
                           f"Timeout waiting for workflow to become {state.value}")

    def abort(self) -> None:
        with self.transport.post(url=self._link("action:abort", "/actions/abort"), json={}):
            pass
        self._invalidate()

    def resume(self, params: Mapping[str, Any] | None = None) -> requests.Response:
        """Continue a HELD workflow, optionally setting variables."""
        res = self.transport.post(url=self._link("action:continue", "/actions/continue"), json=dict(params or {}))
        res.close()
        self._invalidate()
        return res

    def get_files(self) -> dict[str, str]:
        """``{"wf:name": file URL}`` of the workflow's file catalogue."""
        return self.transport.get(url=self._link("files", "/files"))

    def get_jobs(self, offset: int = 0, num: int | None = None) -> list[Job]:
        urls = _collect(self.transport, self._link("jobs", "/jobs"), "jobs", offset, num)
        return [Job(self.transport, u) for u in urls]

    def stat(self, path: str) -> PathFile | PathDir:
        """A file of the workflow by logical name (``wf:date1/stdout``)."""
        url = self.get_files()[path]
        storage_url, _, file_path = url.partition("/files/")
        return Storage(self.transport, storage_url).stat(urllib.parse.unquote(file_path))

    def __repr__(self) -> str:
        try:
            return (f"Workflow: {self.resource_url} submitted: {self.properties.get('submissionTime')} "
                    f"running: {self.is_running()}")
        except Exception:  # noqa: BLE001
            return f"Workflow: {self.resource_url}"

    __str__ = __repr__


__all__ = [
    "AccessDeniedError",
    "Allocation",
    "Application",
    "AuthenticationFailedException",
    "BadRequestError",
    "Client",
    "Compute",
    "ConflictError",
    "Job",
    "JobStatus",
    "Path",
    "PathDir",
    "PathFile",
    "RawStream",
    "Registry",
    "Resource",
    "ResourceNotFoundError",
    "ServerError",
    "ServiceUnavailableError",
    "Storage",
    "Transfer",
    "TransferStatus",
    "Transport",
    "UnicoreHTTPError",
    "UnicoreTimeoutError",
    "Workflow",
    "WorkflowService",
    "WorkflowStatus",
    "load_properties",
    "new_http_session",
    "poll_delays",
]
