"""Unit tests of pyunicore_fast.client without a server: a fake requests adapter answers.

They pin down the wire behaviour PyUNICORE users depend on (headers, security sessions,
preferences, error texts, paging, URL building) and the speed levers (one pool per
Transport, cached properties and links, poll back-off).
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable
from typing import Any

import pytest
import requests
import requests.adapters
from requests.structures import CaseInsensitiveDict

import pyunicore_fast.client as uc
import pyunicore_fast.credentials as cr

BASE = "https://gw:8080/DEMO-SITE/rest/core"

Handler = Callable[[requests.PreparedRequest], tuple]


class FakeAdapter(requests.adapters.BaseAdapter):
    """Routes (method, url-without-query) to handlers returning (status, headers, body)."""

    def __init__(self) -> None:
        super().__init__()
        self.routes: dict[tuple[str, str], Handler] = {}
        self.calls: list[dict[str, Any]] = []

    def on(self, method: str, url: str, handler: Handler | tuple | dict) -> None:
        if isinstance(handler, dict):
            body = handler
            handler = lambda req, body=body: (200, {}, body)
        elif isinstance(handler, tuple):
            reply = handler
            handler = lambda req, reply=reply: reply
        self.routes[(method, url)] = handler

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        url = request.url.split("?")[0]
        self.calls.append({"method": request.method, "url": request.url, "headers": dict(request.headers),
                           "timeout": kwargs.get("timeout"), "verify": kwargs.get("verify"), "body": request.body})
        handler = self.routes.get((request.method, url))
        status, headers, body = handler(request) if handler else (404, {}, {"errorMessage": f"no route {url}"})
        res = requests.Response()
        res.status_code = status
        res.headers = CaseInsensitiveDict(headers)
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            res.headers.setdefault("Content-Type", "application/json")
        elif isinstance(body, str):
            body = body.encode()
        res.raw = io.BytesIO(body or b"")
        res.url = request.url
        res.request = request
        res.reason = {200: "OK", 201: "Created", 204: "No Content", 404: "Not Found"}.get(status, "Status")
        if not kwargs.get("stream"):
            res._content = body or b""
        return res

    def close(self) -> None:
        pass


def make_transport(credential: cr.Credential | None = None, **kw: Any) -> tuple[uc.Transport, FakeAdapter]:
    tr = uc.Transport(credential or cr.UsernamePassword("demouser", "test123"), **kw)
    fake = FakeAdapter()
    tr._http.mount("https://", fake)
    return tr, fake


def base_props(role: str = "user") -> dict[str, Any]:
    links = {k: {"href": f"{BASE}/{k}"} for k in ("jobs", "storages", "transfers", "factories")}
    return {"client": {"role": {"selected": role}, "xlogin": {"UID": "demouser"}},
            "server": {"version": "10.1.2-p1"}, "_links": links}


# -- Transport ---------------------------------------------------------------------------------
def test_headers_like_pyunicore():
    tr = uc.Transport(cr.UsernamePassword("demouser", "test123"))
    h = tr._headers({"headers": {"Accept": "text/plain"}})
    assert h["Authorization"] == "Basic ZGVtb3VzZXI6dGVzdDEyMw=="
    assert h["Accept"] == "text/plain" and h["Content-Type"] == "application/json"
    assert "X-UNICORE-SecuritySession" not in h
    tr.last_session_id = "s1"
    tr.preferences = "group:proj1"
    assert tr.last_session_id is None and tr.settings_changed  # issue #40
    tr.last_session_id = "s2"
    h = tr._headers({})
    assert h["X-UNICORE-SecuritySession"] == "s2"
    assert h["X-UNICORE-User-Preferences"] == "group:proj1"


def test_anonymous_sends_no_authorization():
    assert "Authorization" not in uc.Transport(cr.Anonymous())._headers({})
    assert "Authorization" not in uc.Transport(None)._headers({})


def test_every_request_has_timeout_and_verify():
    tr, fake = make_transport(timeout=7, verify=False)
    fake.on("GET", BASE, base_props())
    fake.on("PUT", BASE, {"tags": "OK"})
    tr.get(url=BASE)
    tr.put(url=BASE, json={})
    assert all(c["timeout"] == 7 and c["verify"] is False for c in fake.calls)


def test_security_session_stored_and_retried_once_on_432():
    tr, fake = make_transport()
    state = {"n": 0}

    def handler(req):
        state["n"] += 1
        if req.headers.get("X-UNICORE-SecuritySession") == "stale":
            return 432, {}, b""
        return 200, {"X-UNICORE-SecuritySession": "fresh"}, {"ok": 1}

    fake.on("GET", BASE, handler)
    tr.last_session_id = "stale"
    assert tr.get(url=BASE) == {"ok": 1}
    assert state["n"] == 2 and tr.last_session_id == "fresh"
    assert "Authorization" in fake.calls[-1]["headers"]
    assert "X-UNICORE-SecuritySession" not in fake.calls[-1]["headers"]


def test_432_retry_rewinds_a_file_body():
    tr, fake = make_transport()
    bodies = []

    def handler(req):
        data = req.body.read() if hasattr(req.body, "read") else req.body
        bodies.append(data)
        return (432, {}, b"") if len(bodies) == 1 else (204, {}, b"")

    fake.on("PUT", BASE + "/x", handler)
    tr.last_session_id = "stale"
    tr.put(url=BASE + "/x", data=io.BytesIO(b"payload"))
    assert bodies == [b"payload", b"payload"]


def test_clones_share_one_connection_pool():
    tr = uc.Transport(cr.Anonymous())
    clone = tr._clone()
    assert clone._http is tr._http
    assert clone is not tr and clone.credential is tr.credential
    c = uc.Resource(tr, BASE)
    assert c.transport._http is tr._http and c.transport is not tr


def test_run_method_accepts_requests_functions():
    tr, fake = make_transport()
    fake.on("GET", BASE, {"a": 1})
    res = tr.run_method(requests.get, url=BASE)
    assert res.json() == {"a": 1}
    assert len(fake.calls) == 1  # went through the pooled session (the fake adapter)


@pytest.mark.parametrize("status,cls,base", [
    (400, uc.BadRequestError, None), (403, uc.AccessDeniedError, PermissionError),
    (404, uc.ResourceNotFoundError, FileNotFoundError), (409, uc.ConflictError, None),
    (500, uc.ServerError, None), (503, uc.ServiceUnavailableError, None), (418, uc.UnicoreHTTPError, None)])
def test_errors_are_typed_and_carry_error_message(status, cls, base):
    tr, fake = make_transport()
    fake.on("GET", BASE, (status, {}, {"errorMessage": "it broke", "status": status}))
    with pytest.raises(cls) as ei:
        tr.get(url=BASE)
    err = ei.value
    assert isinstance(err, requests.HTTPError) and isinstance(err, uc.UnicoreHTTPError)
    assert str(err) == f"{status} Server Error: it broke for url: {BASE}"
    assert err.status_code == status and err.error_message == "it broke" and err.response is not None
    if base is not None:
        assert isinstance(err, base)


def test_error_without_body_uses_reason_and_is_httpx_error_too():
    tr, fake = make_transport()
    fake.on("GET", BASE, (404, {}, b""))
    with pytest.raises(uc.ResourceNotFoundError, match="404 Server Error: Not Found for url"):
        tr.get(url=BASE)
    httpx = pytest.importorskip("httpx")
    assert issubclass(uc.UnicoreHTTPError, httpx.HTTPError)


def test_timeout_is_typed():
    tr, fake = make_transport(timeout=0.5)

    def slow(req):
        raise requests.ReadTimeout("read timed out")

    fake.on("GET", BASE, slow)
    with pytest.raises(uc.UnicoreTimeoutError) as ei:
        tr.get(url=BASE)
    assert isinstance(ei.value, TimeoutError) and isinstance(ei.value, requests.Timeout)


def test_repr_hides_secrets():
    tr = uc.Transport(cr.UsernamePassword("demouser", "s3cret"))
    assert "s3cret" not in repr(tr) and "ZGVtb3" not in repr(tr)


# -- Resource caching and links ------------------------------------------------------------------
def test_properties_cached_for_cache_time():
    tr, fake = make_transport()
    fake.on("GET", BASE, base_props())
    c = uc.Client(tr, BASE)  # one GET for the authentication check
    _ = c.properties, c.links, c.access_info(), c.server_version_info()
    assert len(fake.calls) == 1
    c.cache_time = 0
    _ = c.properties
    _ = c.properties
    assert len(fake.calls) == 3


def test_preferences_change_forces_reread():
    tr, fake = make_transport()
    fake.on("GET", BASE, base_props())
    c = uc.Client(tr, BASE)
    c.transport.preferences = "group:x"
    _ = c.properties
    assert len(fake.calls) == 2
    assert fake.calls[-1]["headers"]["X-UNICORE-User-Preferences"] == "group:x"


def test_anonymous_role_fails_authentication():
    tr, fake = make_transport()
    fake.on("GET", BASE, base_props("anonymous"))
    with pytest.raises(cr.AuthenticationFailedException):
        uc.Client(tr, BASE)
    assert uc.AuthenticationFailedException is cr.AuthenticationFailedException
    tr2, fake2 = make_transport(cr.Anonymous())
    uc.Client(tr2, BASE)  # no check for Anonymous
    assert fake2.calls == []


def test_server_version_info():
    assert uc.version_tuple("10.1.2-p1") == (10, 1, 2)
    assert uc.version_tuple("9.3.1") == (9, 3, 1)
    assert uc.version_tuple("DEVELOPMENT") == (0, 0, 0)


def test_url_params_like_pyunicore():
    assert uc._url_params(0, None, []) == {}
    assert uc._url_params(5, 10, ["a", "b"], "all") == {"offset": 5, "num": 10, "tags": "a,b", "filter": "all"}


# -- collections -------------------------------------------------------------------------------
def test_get_jobs_follows_next_links_past_200():
    tr, fake = make_transport()
    fake.on("GET", BASE, base_props())
    pages = {0: [f"{BASE}/jobs/{i}" for i in range(200)], 200: [f"{BASE}/jobs/{i}" for i in range(200, 250)]}

    def jobs(req):
        offset = int(req.url.split("offset=")[1].split("&")[0]) if "offset=" in req.url else 0
        links = {"self": {"href": req.url}}
        if offset == 0:
            links["next"] = {"href": f"{BASE}/jobs?offset=200&num=200"}
        return 200, {}, {"jobs": pages[offset], "_links": links}

    fake.on("GET", BASE + "/jobs", jobs)
    c = uc.Client(tr, BASE)
    all_jobs = c.get_jobs()
    assert len(all_jobs) == 250 and all_jobs[-1].job_id == "249"
    assert len(fake.calls) == 3  # base + 2 pages, no GET per job
    assert len(c.get_jobs(num=200)) == 200  # an explicit page size is respected


def test_load_properties_concurrently():
    tr, fake = make_transport()
    for i in range(20):
        fake.on("GET", f"{BASE}/jobs/{i}", {"status": "SUCCESSFUL", "_links": {}})
    jobs = [uc.Job(tr, f"{BASE}/jobs/{i}") for i in range(20)]
    uc.load_properties(jobs, max_workers=4)
    n = len(fake.calls)
    assert all(j.status == uc.JobStatus.SUCCESSFUL for j in jobs)
    assert len(fake.calls) == n == 20


def test_registry_parsing_accepts_http_and_https():
    sites, wfs = uc.parse_registry_entries([
        {"href": "https://gw:8080/DEMO-SITE/rest/core", "type": "CoreServices"},
        {"href": "http://127.0.0.1:1234/OTHER/rest/core/", "type": "CoreServices"},
        {"href": "https://gw/WF/rest/workflows", "type": "WorkflowServices"},
        {"href": "https://gw/X/rest/core/factories/default", "type": "TargetSystemFactory"},
    ])
    assert sites == {"DEMO-SITE": "https://gw:8080/DEMO-SITE/rest/core", "OTHER": "http://127.0.0.1:1234/OTHER/rest/core"}
    assert wfs == {"WF": "https://gw/WF/rest/workflows"}


# -- jobs -------------------------------------------------------------------------------------
def test_new_job_start_only_when_client_stages_in(tmp_path):
    tr, fake = make_transport()
    fake.on("GET", BASE, base_props())
    fake.on("POST", BASE + "/jobs", (201, {"Location": BASE + "/jobs/j1"}, b""))
    fake.on("POST", BASE + "/jobs/j1/actions/start", (204, {}, b""))
    c = uc.Client(tr, BASE)
    jd: dict[str, Any] = {"Executable": "date"}
    job = c.new_job(jd)
    assert job.resource_url == BASE + "/jobs/j1" and type(job) is uc.Job
    assert [x["method"] for x in fake.calls] == ["GET", "POST"]  # no wasted start
    job = c.new_job({"Executable": "date", "haveClientStageIn": True})
    assert fake.calls[-1]["url"] == BASE + "/jobs/j1/actions/start"
    alloc = c.new_job({"Job type": "allocate"})
    assert isinstance(alloc, uc.Allocation)


def test_new_job_uploads_inputs_then_starts(tmp_path):
    tr, fake = make_transport()
    fake.on("GET", BASE, base_props())
    fake.on("POST", BASE + "/jobs", (201, {"Location": BASE + "/jobs/j1"}, b""))
    wd = BASE + "/storages/j1-uspace"
    fake.on("GET", BASE + "/jobs/j1", {"status": "READY", "_links": {"workingDirectory": {"href": wd},
                                                                       "action:start": {"href": BASE + "/jobs/j1/actions/start"}}})
    fake.on("GET", wd, {"resourceStatus": "READY", "_links": {}})
    uploads = {}

    def put(req):
        uploads[req.url] = req.body.read() if hasattr(req.body, "read") else req.body
        return 204, {}, b""

    fake.on("PUT", wd + "/files/a.txt", put)
    fake.on("PUT", wd + "/files/in/b.txt", put)
    fake.on("POST", BASE + "/jobs/j1/actions/start", (204, {}, b""))
    (tmp_path / "a.txt").write_bytes(b"A")
    (tmp_path / "b.txt").write_bytes(b"B")
    jd: dict[str, Any] = {"Executable": "cat a.txt"}
    c = uc.Client(tr, BASE)
    c.new_job(jd, inputs=[str(tmp_path / "a.txt")])
    assert jd["haveClientStageIn"] == "true"  # mutated in place, as PyUNICORE does
    c.new_job({"Executable": "x"}, inputs={"in/b.txt": str(tmp_path / "b.txt")})
    assert uploads == {wd + "/files/a.txt": b"A", wd + "/files/in/b.txt": b"B"}
    assert fake.calls[-1]["url"].endswith("/actions/start")


def test_execute_sends_login_node_only_when_given():
    tr, fake = make_transport()
    fake.on("GET", BASE, base_props())
    fake.on("POST", BASE + "/jobs", (201, {"Location": BASE + "/jobs/j2"}, b""))
    c = uc.Client(tr, BASE)
    c.execute("date")
    assert "Login node" not in json.loads(fake.calls[-1]["body"])
    c.execute("date", login_node="ln1")
    assert json.loads(fake.calls[-1]["body"])["Login node"] == "ln1"


def test_job_status_enum():
    assert [s.ordinal() for s in uc.JobStatus] == list(range(8))
    assert uc.JobStatus("UNKNOWN") is uc.JobStatus.UNDEFINED
    assert repr(uc.JobStatus.RUNNING) == "RUNNING" and str(uc.JobStatus.FAILED) == "FAILED"
    assert uc.TransferStatus.ABORTED.ordinal() == 4
    assert uc.WorkflowStatus.HELD.ordinal() == 2


def test_poll_starts_fast_and_backs_off():
    tr, fake = make_transport()
    times: list[float] = []
    states = iter(["QUEUED", "RUNNING", "RUNNING", "RUNNING", "SUCCESSFUL"])

    def job(req):
        times.append(time.monotonic())
        return 200, {}, {"status": next(states), "_links": {}}

    fake.on("GET", BASE + "/jobs/j", job)
    j = uc.Job(tr, BASE + "/jobs/j")
    t0 = time.monotonic()
    assert j.poll() == uc.JobStatus.SUCCESSFUL
    elapsed = time.monotonic() - t0
    assert elapsed < 1.0  # PyUNICORE: 4 x 6 s
    gaps = [b - a for a, b in zip(times, times[1:])]  # noqa: RUF007 - pairwise needs Python 3.10
    assert gaps[0] >= 0.04 and gaps[-1] > gaps[0]


def test_poll_timeout_and_undefined():
    tr, fake = make_transport()
    fake.on("GET", BASE + "/jobs/j", {"status": "QUEUED", "_links": {}})
    j = uc.Job(tr, BASE + "/jobs/j")
    with pytest.raises(ValueError):
        j.poll(uc.JobStatus.UNDEFINED)
    t0 = time.monotonic()
    with pytest.raises(TimeoutError):
        j.poll(timeout=0.3)
    assert time.monotonic() - t0 < 1.5


def test_failed_satisfies_any_state_and_exit_code():
    tr, fake = make_transport()
    fake.on("GET", BASE + "/jobs/j", {"status": "FAILED", "exitCode": "0", "log": ["a"], "_links": {}})
    j = uc.Job(tr, BASE + "/jobs/j")
    assert j.poll(uc.JobStatus.RUNNING) == uc.JobStatus.FAILED
    assert j.exit_code == 0 and j.log == ["a"] and not j.is_running()
    assert j.job_id == "j" and j.id == "j"


def test_actions_use_documented_paths_without_extra_get():
    tr, fake = make_transport()
    for a in ("start", "abort", "restart"):
        fake.on("POST", f"{BASE}/jobs/j/actions/{a}", (204, {}, b""))
    j = uc.Job(tr, BASE + "/jobs/j")
    j.start()
    j.abort()
    j.restart()
    assert [c["method"] for c in fake.calls] == ["POST"] * 3


# -- storages and files ---------------------------------------------------------------------------
def test_file_url_normalisation():
    s = BASE + "/storages/HOME"
    assert uc.file_url(s, "/") == s + "/files"
    assert uc.file_url(s, ".") == s + "/files"
    assert uc.file_url(s, "a/b/") == s + "/files/a/b"
    assert uc.file_url(s, "a\\b.txt") == s + "/files/a/b.txt"  # issue #29 (Windows paths)
    assert uc.file_url(s, "/with space#1?.txt") == s + "/files/with%20space%231%3F.txt"


def test_range_header():
    assert uc.range_header(0, -1) is None
    assert uc.range_header(10, -1) == "bytes=10-"
    assert uc.range_header(10, 5) == "bytes=10-14"
    with pytest.raises(ValueError):
        uc.range_header(-1, 5)


def test_listdir_and_stat_seed_properties():
    tr, fake = make_transport()
    s = BASE + "/storages/HOME"
    fake.on("GET", s + "/files", {"isDirectory": True, "content": {
        "/a.txt": {"isDirectory": False, "size": 3}, "/sub/": {"isDirectory": True, "size": 0}}, "_links": {}})
    fake.on("GET", s + "/files/a.txt", {"isDirectory": False, "size": 3, "_links": {}})
    st = uc.Storage(tr, s)
    ls = st.listdir()
    assert set(ls) == {"a.txt", "sub/"} and ls["sub/"].isdir() and ls["a.txt"].isfile()
    assert ls["a.txt"].size() == 3
    f = st.stat("a.txt")
    assert isinstance(f, uc.PathFile) and f.properties["size"] == 3 and f.name == "a.txt"
    assert len(fake.calls) == 2  # no GET per listed file
    assert repr(f) == "PathFile: a.txt" and repr(ls["sub/"]) == "PathDir: sub/"


def test_listing_pages_are_merged():
    tr, fake = make_transport()
    s = BASE + "/storages/HOME"

    def files(req):
        if "offset=2" in req.url:
            return 200, {}, {"isDirectory": True, "content": {"/c": {"isDirectory": False}}, "_links": {}}
        return 200, {}, {"isDirectory": True, "content": {"/a": {}, "/b": {}},
                         "_links": {"next": {"href": s + "/files?offset=2&num=2"}}}

    fake.on("GET", s + "/files", files)
    assert set(uc.Storage(tr, s).listdir()) == {"a", "b", "c"}


def test_raw_is_file_like_and_context_manager():
    tr, fake = make_transport()
    url = BASE + "/storages/HOME/files/f.txt"
    seen = []

    def data(req):
        seen.append(req.headers.get("Range"))
        return 200, {}, b"line1\nline2\nline3\n"

    fake.on("GET", url, data)
    f = uc.PathFile(uc.Storage(tr, BASE + "/storages/HOME"), url, "f.txt")
    assert f.raw().read() == b"line1\nline2\nline3\n"  # 1.x style
    assert f.raw().readlines() == [b"line1\n", b"line2\n", b"line3\n"]
    with f.raw(offset=6, size=5) as r:  # 2.0.2 style
        assert r.status_code == 200 and b"".join(r.iter_bytes(4)) == b"line1\nline2\nline3\n"
    assert seen[-1] == "bytes=6-10"
    assert f.raw(size=0).read() == b"" and len(seen) == 3  # no request with an invalid range
    assert f.read() == b"line1\nline2\nline3\n"


def test_transfer_is_running_and_abort_fallback():
    tr, fake = make_transport()
    url = BASE + "/transfers/t1"
    fake.on("GET", url, {"status": "ABORTED", "transferredBytes": 12, "_links": {"self": {"href": url}}})
    fake.on("DELETE", url, (204, {}, b""))
    t = uc.Transfer(tr, url)
    assert not t.is_running() and t.transferred_bytes == 12
    t.abort()
    assert fake.calls[-1]["method"] == "DELETE"


def test_workflow_stat_splits_file_url():
    tr, fake = make_transport()
    wf = "https://gw/DEMO-SITE/rest/workflows/w1"
    fake.on("GET", wf + "/files", {"wf:date1/stdout": BASE + "/storages/S1/files/date1/stdout"})
    fake.on("GET", BASE + "/storages/S1/files/date1/stdout", {"isDirectory": False, "size": 5})
    p = uc.Workflow(tr, wf).stat("wf:date1/stdout")
    assert isinstance(p, uc.PathFile) and p.name == "date1/stdout" and p.storage.resource_url == BASE + "/storages/S1"
