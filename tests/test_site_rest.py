"""The EmbeddedSite's wire behaviour with raw ``requests``: status codes, headers, error bodies.

These pin the details the REST doc (§4, §14) says clients depend on: 403 for bad
credentials, 432 for stale sessions, empty-bodied 403/404 from access control, JSON
``errorMessage`` for 400/401/500, paging links, Range replies, absolute Locations.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import threading
import time

import pytest
import requests

from pyunicore_fast.testing import EmbeddedSite

DEMO = ("demouser", "test123")
OTHER = ("otheruser", "test456")


@pytest.fixture(scope="module")
def site():
    users = {"demouser": "test123", "otheruser": "test456", "nologin": "nologin1"}
    with EmbeddedSite(users, no_login_users=["nologin"], session_lifetime=60) as s:
        yield s


@pytest.fixture(scope="module")
def http():
    with requests.Session() as s:  # keep-alive, as a pooling client would
        yield s


def wait_final(http, url, auth=DEMO, timeout=20.0):
    deadline = time.time() + timeout
    while True:
        props = http.get(url, auth=auth).json()
        if props["status"] in ("SUCCESSFUL", "FAILED"):
            return props
        assert time.time() < deadline, props
        time.sleep(0.03)


def submit(http, site, desc, auth=DEMO):
    r = http.post(site.core_url + "/jobs", json=desc, auth=auth)
    assert r.status_code == 201, r.text
    return r.headers["Location"]


def octet(http, url, auth=DEMO, **headers):
    return http.get(url, auth=auth, headers={"Accept": "application/octet-stream", **headers})


# -- base, authentication, sessions, preferences ------------------------------------------
def test_base_anonymous_vs_user(http, site):
    anon = http.get(site.core_url).json()
    assert anon["client"]["role"]["selected"] == "anonymous"
    assert "xlogin" not in anon["client"]
    user = http.get(site.core_url, auth=DEMO)
    info = user.json()
    assert info["client"]["role"]["selected"] == "user"
    assert info["client"]["xlogin"]["UID"] == "demouser"
    assert info["client"]["authenticationMethod"] == "PASSWORD_FILE"
    assert info["server"]["version"] == "10.2.0"
    for rel in ("jobs", "storages", "transfers", "factories"):
        assert info["_links"][rel]["href"] == f"{site.core_url}/{rel}"
    assert user.headers["X-UNICORE-SecuritySession"]
    assert int(user.headers["X-UNICORE-SecuritySession-Lifetime"]) == 60000


def test_wrong_credentials_are_403_with_error_message(http, site):
    r = http.get(site.core_url, auth=("demouser", "nope"))
    assert r.status_code == 403
    assert "errorMessage" in r.json() and r.json()["status"] == 403
    r = http.get(site.core_url, headers={"Authorization": "Bearer not-a-token"})
    assert r.status_code == 403
    r = http.get(site.core_url, auth=("nobody", "x"))
    assert r.status_code == 403


def test_anonymous_is_denied_on_resources_with_empty_403(http, site):
    for url in (site.core_url + "/jobs", site.core_url + "/storages/HOME",
                site.core_url + "/storages/HOME/files"):
        r = http.get(url)
        assert r.status_code == 403 and r.content == b""
    assert http.post(site.core_url + "/jobs", json={}).status_code == 403


def test_static_bearer_token(http, site):
    token = site.token_for("otheruser")
    r = http.get(site.core_url, headers={"Authorization": f"Bearer {token}"})
    assert r.json()["client"]["xlogin"]["UID"] == "otheruser"


def test_security_session_accept_and_432(http, site):
    sid = http.get(site.core_url, auth=DEMO).headers["X-UNICORE-SecuritySession"]
    r = http.get(site.core_url, headers={"X-UNICORE-SecuritySession": sid})
    assert r.json()["client"]["role"]["selected"] == "user"
    assert r.headers["X-UNICORE-SecuritySession"] == sid
    bad = http.get(site.core_url, auth=DEMO, headers={"X-UNICORE-SecuritySession": "unknown-id"})
    assert bad.status_code == 432 and bad.content == b""
    site.expire_sessions()
    r = http.get(site.core_url, headers={"X-UNICORE-SecuritySession": sid})
    assert r.status_code == 432


def test_user_preferences(http, site):
    hdr = "X-UNICORE-User-Preferences"
    r = http.get(site.core_url, auth=DEMO, headers={hdr: "group:demouser-project"})
    assert r.json()["client"]["xlogin"]["group"] == "demouser-project"
    assert http.get(site.core_url, auth=DEMO, headers={hdr: "group:wheel"}).status_code == 403
    assert http.get(site.core_url, auth=DEMO, headers={hdr: "uid:root"}).status_code == 403
    assert http.get(site.core_url, auth=DEMO, headers={hdr: "garbage"}).status_code == 403
    assert http.get(site.core_url, auth=DEMO, headers={hdr: "role:user"}).status_code == 200


def test_token_endpoint_issues_verifiable_jwt(http, site):
    r = http.get(site.core_url + "/token", auth=DEMO, headers={"Accept": "text/plain"},
                 params={"lifetime": "100", "renewable": "true", "limited": "true"})
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/plain")
    token = r.text
    claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    assert claims["etd"] == "true" and claims["renewable"] == "true"
    assert claims["exp"] - claims["iat"] == 100 and claims["aud"] == claims["iss"]
    assert claims["sub"].startswith("CN=demouser")
    me = http.get(site.core_url, headers={"Authorization": f"Bearer {token}"}).json()
    assert me["client"]["authenticationMethod"] == "ETD"
    # a token made with a non-renewable token cannot be used to get another one
    plain = http.get(site.core_url + "/token", auth=DEMO).text
    r = http.get(site.core_url + "/token", headers={"Authorization": f"Bearer {plain}"})
    assert r.status_code == 403


def test_user_without_login_gets_401_on_submission(http, site):
    info = http.get(site.core_url, auth=("nologin", "nologin1")).json()
    assert info["client"]["role"]["selected"] == "user" and "xlogin" not in info["client"]
    r = http.post(site.core_url + "/jobs", json={"Executable": "true"}, auth=("nologin", "nologin1"))
    assert r.status_code == 401 and "errorMessage" in r.json()


# -- errors ---------------------------------------------------------------------------------
def test_not_found_and_method_errors(http, site):
    r = http.get(site.core_url + "/jobs/does-not-exist", auth=DEMO)
    assert r.status_code == 404 and r.content == b""
    assert http.get(site.url + "/NOSITE/rest/core", auth=DEMO).status_code == 404
    assert http.get(site.core_url + "/storages/NOPE", auth=DEMO).status_code == 404
    r = http.get(site.core_url + "/storages/HOME/files/missing.txt", auth=DEMO)
    assert r.status_code == 404 and "errorMessage" in r.json()
    job = submit(http, site, {})
    assert http.post(job + "/actions/frobnicate", json={}, auth=DEMO).status_code == 404


def test_500_with_error_message_for_bad_jobs(http, site):
    for desc in ({"Executable": "true", "Resources": {"Queue": "nosuchqueue"}},
                 {"Executable": "true", "Resources": {"Nodes": "many"}},
                 {"ApplicationName": "NoSuchApp"},
                 {"Executable": "true", "Job type": "weird"}):
        r = http.post(site.core_url + "/jobs", json=desc, auth=DEMO)
        assert r.status_code == 500, desc
        body = r.json()
        assert body["status"] == 500 and body["errorMessage"]


def test_400_for_malformed_requests(http, site):
    r = http.post(site.core_url + "/jobs", data=b"{not json", auth=DEMO,
                  headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and "errorMessage" in r.json()
    r = http.post(site.core_url + "/storages/HOME/actions/rename", json={"from": "x"}, auth=DEMO)
    assert r.status_code == 400
    r = http.post(site.core_url + "/storages/HOME/actions/rename",
                  json={"from": "no-such-file", "to": "y"}, auth=DEMO)
    assert r.status_code == 500 and "not found" in r.json()["errorMessage"]


def test_job_submission_disabled_is_503(http, site):
    site.set_job_submission(False, "maintenance")
    try:
        r = http.post(site.core_url + "/jobs", json={}, auth=DEMO)
        assert r.status_code == 503 and "maintenance" in r.json()["errorMessage"]
    finally:
        site.set_job_submission(True)


# -- jobs -------------------------------------------------------------------------------------
def test_job_properties_and_lifecycle(http, site):
    url = submit(http, site, {"Executable": "echo $FOO; exit 2", "Environment": {"FOO": "bar"},
                              "Name": "myjob", "Tags": ["a", "b"]})
    assert url.startswith(site.core_url + "/jobs/")
    props = wait_final(http, url)
    assert props["status"] == "FAILED" and props["exitCode"] == "2"
    assert props["name"] == "myjob" and props["queue"] == "batch" and props["jobType"] == "BATCH"
    assert props["batchSystemID"].isdigit()
    assert isinstance(props["log"], list)
    for rel in ("workingDirectory", "action:start", "action:abort", "action:restart", "details",
                "forwarding", "parentTSS"):
        assert rel in props["_links"]
    wd = props["_links"]["workingDirectory"]["href"]
    assert wd.endswith("-uspace")
    assert http.get(wd, auth=DEMO).json()["resourceStatus"] == "READY"
    assert octet(http, wd + "/files/stdout").content == b"bar\n"
    assert http.get(url + "/details", auth=DEMO).json()["JobState"] == "FAILED"
    only = http.get(url, auth=DEMO, params={"fields": "status,exitCode"}).json()
    assert set(only) == {"status", "exitCode"}
    assert http.put(url, json={"tags": ["c"], "foo": 1}, auth=DEMO).json() == {
        "tags": "OK", "foo": "Property not found or cannot be modified!"}


def test_client_stage_in_waits_for_start(http, site):
    url = submit(http, site, {"Executable": "cat input.txt", "haveClientStageIn": "true"})
    time.sleep(0.2)
    props = http.get(url, auth=DEMO).json()
    assert props["status"] == "READY"
    wd = props["_links"]["workingDirectory"]["href"]
    r = http.put(wd + "/files/input.txt", data=b"uploaded\n", auth=DEMO,
                 headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 204
    for _ in range(2):  # start is idempotent
        assert http.post(url + "/actions/start", json={}, auth=DEMO).status_code == 204
    assert wait_final(http, url)["status"] == "SUCCESSFUL"
    assert octet(http, wd + "/files/stdout").content == b"uploaded\n"


def test_empty_job_gets_working_directory_and_succeeds(http, site):
    url = submit(http, site, {})
    props = wait_final(http, url)
    assert props["status"] == "SUCCESSFUL" and "exitCode" not in props
    assert http.get(props["_links"]["workingDirectory"]["href"], auth=DEMO).status_code == 200


def test_imports_and_exports(http, site, tmp_path):
    http.put(site.core_url + "/storages/HOME/files/imports/src.txt", data=b"from-home",
             auth=DEMO, headers={"Content-Type": "application/octet-stream"})
    local = tmp_path / "local.txt"
    local.write_text("from-local")
    url = submit(http, site, {
        "Executable": "cat inline.txt a.txt sub/b.txt > out.txt",
        "Imports": [{"To": "inline.txt", "Data": "inline-data\n"},
                    {"From": f"{site.core_url}/storages/HOME/files/imports/src.txt", "To": "a.txt"},
                    {"From": f"file://{local}", "To": "sub/b.txt"}],
        "Exports": [{"From": "out.txt", "To": f"{site.core_url}/storages/HOME/files/exports/out.txt"}],
    })
    props = wait_final(http, url)
    assert props["status"] == "SUCCESSFUL", props["statusMessage"]
    r = octet(http, site.core_url + "/storages/HOME/files/exports/out.txt")
    assert r.content == b"inline-data\nfrom-homefrom-local"
    submitted = http.get(url + "/submitted", auth=DEMO).json()
    assert submitted["Imports"][0]["Data"] == "n/a"


def test_import_from_other_users_home_fails(http, site):
    http.put(site.core_url + "/storages/HOME/files/secret.txt", data=b"s3cret", auth=OTHER,
             headers={"Content-Type": "application/octet-stream"})
    other_home = site.home_dir("otheruser")
    url = submit(http, site, {"Executable": "cat x", "Imports": [
        {"From": f"file://{other_home}/secret.txt", "To": "x"}]})
    props = wait_final(http, url)
    assert props["status"] == "FAILED" and "denied" in props["statusMessage"].lower()


def test_abort_restart_delete(http, site):
    url = submit(http, site, {"Executable": "sleep 30"})
    deadline = time.time() + 10
    while http.get(url, auth=DEMO).json()["status"] != "RUNNING":
        assert time.time() < deadline
        time.sleep(0.02)
    assert http.post(url + "/actions/abort", json={}, auth=DEMO).status_code == 204
    props = wait_final(http, url)
    assert props["status"] == "FAILED" and "abort" in props["statusMessage"].lower()
    wd = props["_links"]["workingDirectory"]["href"]
    assert http.delete(url, auth=DEMO).status_code == 204
    assert http.get(url, auth=DEMO).status_code == 404
    assert http.get(wd, auth=DEMO).status_code == 404


def test_job_list_paging_and_tags(http, site):
    urls = [submit(http, site, {"Tags": ["paging-test"]}, auth=OTHER) for _ in range(5)]
    listing = http.get(site.core_url + "/jobs", auth=OTHER, params={"tags": "paging-test"}).json()
    assert listing["jobs"] == urls
    p1 = http.get(site.core_url + "/jobs", auth=OTHER,
                  params={"tags": "paging-test", "num": 2, "offset": 2}).json()
    assert p1["jobs"] == urls[2:4]
    assert "next" in p1["_links"] and "previous" in p1["_links"]
    nxt = http.get(p1["_links"]["next"]["href"], auth=OTHER).json()
    assert nxt["jobs"] == urls[4:] and "next" not in nxt["_links"]
    assert http.get(site.core_url + "/jobs", auth=OTHER, params={"offset": -1}).status_code == 500


def test_isolation_between_users(http, site):
    url = submit(http, site, {"Executable": "echo mine"})
    props = wait_final(http, url)
    assert url not in http.get(site.core_url + "/jobs", auth=OTHER).json()["jobs"]
    assert http.get(url, auth=OTHER).status_code == 403
    wd = props["_links"]["workingDirectory"]["href"]
    assert http.get(wd + "/files/stdout", auth=OTHER).status_code == 403
    assert http.delete(url, auth=OTHER).status_code == 403
    storages = http.get(site.core_url + "/storages", auth=OTHER, params={"filter": "all"}).json()
    assert wd not in storages["storages"]


# -- storages and files -------------------------------------------------------------------------
def test_storage_listing_properties(http, site):
    listing = http.get(site.core_url + "/storages", auth=DEMO).json()["storages"]
    assert f"{site.core_url}/storages/HOME" in listing
    assert not any(s.endswith("-uspace") for s in listing)
    props = http.get(site.core_url + "/storages/HOME", auth=DEMO).json()
    assert props["resourceStatus"] == "READY" and "BFT" in props["protocols"]
    assert props["_links"]["files"]["href"] == f"{site.core_url}/storages/HOME/files"


def test_file_api_range_and_errors(http, site):
    base = site.core_url + "/storages/HOME/files"
    data = bytes(range(256)) * 40
    r = http.put(base + "/rng/data.bin", data=data, auth=DEMO,
                 headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 204
    full = octet(http, base + "/rng/data.bin")
    assert full.status_code == 200 and full.content == data
    part = octet(http, base + "/rng/data.bin", Range="bytes=10-19")
    assert part.status_code == 206 and part.content == data[10:20]
    assert part.headers["Content-Range"] == f"bytes 10-19/{len(data)}"
    assert octet(http, base + "/rng/data.bin", Range="bytes=100-").content == data[100:]
    assert octet(http, base + "/rng/data.bin", Range="bytes=-5").content == data[-5:]
    assert octet(http, base + "/rng/data.bin", Range="lines=1-2").status_code == 416
    assert octet(http, base + "/rng/data.bin", Range=f"bytes={len(data)}-").status_code == 416
    assert octet(http, base + "/rng").status_code == 406
    props = http.get(base + "/rng/data.bin", auth=DEMO)
    assert props.headers["Accept-Ranges"] == "bytes"
    assert props.json()["size"] == len(data) and props.json()["isDirectory"] is False
    listing = http.get(base + "/rng", auth=DEMO).json()
    assert listing["isDirectory"] and list(listing["content"]) == ["/rng/data.bin"]
    root = http.get(base, auth=DEMO).json()["content"]
    assert "/rng/" in root and root["/rng/"]["isDirectory"]


def test_chunked_upload_mkdir_rename_copy_delete_chmod(http, site):
    base = site.core_url + "/storages/SHARED/files"

    def gen():
        yield b"part1-"
        yield b"part2"

    r = http.put(base + "/chunked/up.txt", data=gen(), auth=DEMO,
                 headers={"Content-Type": "text/plain"})
    assert r.status_code == 204
    assert octet(http, base + "/chunked/up.txt").content == b"part1-part2"
    meta = http.get(base + "/chunked/up.txt", auth=DEMO).json()["metadata"]
    assert meta["Content-Type"].startswith("text/plain")
    r = http.post(base + "/newdir/a/b", json={}, auth=DEMO)
    assert r.status_code == 201 and r.headers["Location"] == base + "/newdir/a/b"
    act = site.core_url + "/storages/SHARED/actions"
    assert http.post(act + "/copy", json={"from": "chunked/up.txt", "to": "newdir/c.txt"},
                     auth=DEMO).status_code == 204
    assert http.post(act + "/rename", json={"from": "newdir/c.txt", "to": "newdir/d.txt"},
                     auth=DEMO).status_code == 204
    assert octet(http, base + "/newdir/d.txt").content == b"part1-part2"
    r = http.put(base + "/newdir/d.txt", json={"permissions": "rwx------"}, auth=DEMO)
    assert r.json() == {"permissions": "OK"}
    assert http.get(base + "/newdir/d.txt", auth=DEMO).json()["permissions"] == "rwx------"
    assert http.put(base + "/newdir/d.txt", json={"permissions": "bogus"},
                    auth=DEMO).json()["permissions"].startswith("FAILED")
    assert http.delete(base + "/newdir", auth=DEMO).status_code == 204
    assert http.get(base + "/newdir", auth=DEMO).status_code == 404
    # SHARED is shared: the other user sees the file
    assert octet(http, base + "/chunked/up.txt", auth=OTHER).content == b"part1-part2"


def test_directory_listing_paging_beyond_200(http, site):
    folder = os.path.join(site.home_dir("otheruser"), "many")
    os.makedirs(folder)
    for i in range(250):
        with open(os.path.join(folder, f"f{i:03d}.txt"), "w") as f:
            f.write(str(i))
    url = site.core_url + "/storages/HOME/files/many"
    everything = http.get(url, auth=OTHER).json()
    assert len(everything["content"]) == 250
    page1 = http.get(url, auth=OTHER, params={"num": 200}).json()
    assert len(page1["content"]) == 200 and "next" in page1["_links"]
    page2 = http.get(page1["_links"]["next"]["href"], auth=OTHER).json()
    assert len(page2["content"]) == 50 and "next" not in page2["_links"]
    assert "/many/f249.txt" in page2["content"] and page2["content"]["/many/f249.txt"]["size"] == 3


def test_client_server_bft_transfers(http, site):
    store = site.core_url + "/storages/HOME"
    r = http.post(store + "/imports", json={"file": "bft/in.bin", "protocol": "BFT"}, auth=DEMO)
    assert r.status_code == 200 and r.headers["Location"].startswith(site.core_url + "/client-server-transfers/")
    assert http.put(r.json()["accessURL"], data=b"bft-data", auth=DEMO).status_code == 204
    r = http.post(store + "/exports", json={"file": "bft/in.bin", "protocol": "BFT"}, auth=DEMO)
    assert r.json()["isExport"] is True
    assert http.get(r.json()["accessURL"], auth=DEMO).content == b"bft-data"
    assert http.get(r.headers["Location"], auth=DEMO).json()["transferredBytes"] == 8
    r = http.post(store + "/exports", json={"file": "x", "protocol": "GRIDFTP"}, auth=DEMO)
    assert r.status_code == 500 and "BFT" in r.json()["errorMessage"]


def test_transfer_failure_is_reported(http, site):
    r = http.post(site.core_url + "/storages/HOME/transfers", auth=DEMO, json={
        "file": "nothing-here.txt", "target": f"{site.core_url}/storages/SHARED/files/x.txt"})
    assert r.status_code == 201
    deadline = time.time() + 10
    while (props := http.get(r.headers["Location"], auth=DEMO).json())["status"] in ("CREATED", "RUNNING"):
        assert time.time() < deadline
        time.sleep(0.02)
    assert props["status"] == "FAILED" and props["statusMessage"]
    r = http.post(site.core_url + "/storages/HOME/transfers", auth=DEMO,
                  json={"file": "a", "target": "https://example.org/bucket/a"})
    assert r.status_code == 500


# -- factories, sites, workflows, registry ---------------------------------------------------------
def test_factories_applications_sites(http, site):
    factories = http.get(site.core_url + "/factories", auth=DEMO).json()["factories"]
    f = http.get(factories[0], auth=DEMO).json()
    assert "Date---v1.0" in f["applications"] and "batch" in f["resources"]
    app = http.get(factories[0] + "/applications/Date---v1.0", auth=DEMO).json()
    assert app["ApplicationName"] == "Date" and app["ApplicationVersion"] == "1.0"
    r = http.post(site.core_url + "/sites", json={}, auth=DEMO)
    assert r.status_code == 201
    job = http.post(r.headers["Location"], json={"ApplicationName": "Date"}, auth=DEMO)
    assert job.status_code == 201
    assert wait_final(http, job.headers["Location"])["status"] == "SUCCESSFUL"
    jobs = http.get(r.headers["Location"] + "/jobs", auth=DEMO).json()["jobs"]
    assert jobs == [job.headers["Location"]]


def test_workflow_errors_and_conditions(http, site):
    r = http.post(site.workflows_url, json={"activities": [{"id": "a", "type": "NOPE"}],
                                            "transitions": [{"from": "a", "to": "b"}]}, auth=DEMO)
    assert r.status_code == 400 and "[1]" in r.json()["errorMessage"]
    wf = {
        "variables": [{"name": "N", "type": "INTEGER", "initial_value": "1"}],
        "activities": {
            "start": {"type": "START"},
            "inc": {"type": "ModifyVariable", "variableName": "N", "expression": "N += 41;"},
            "branch": {"type": "BRANCH"},
            "yes": {"job": {"Executable": "echo ${N}"}},
            "no": {"job": {"Executable": "exit 1"}},
        },
        "transitions": [{"from": "start", "to": "inc"}, {"from": "inc", "to": "branch"},
                        {"from": "branch", "to": "yes", "condition": "eval(N == 42)"},
                        {"from": "branch", "to": "no"}],
    }
    r = http.post(site.workflows_url, json=wf, auth=DEMO)
    assert r.status_code == 201
    url = r.headers["Location"]
    assert http.post(url + "/actions/continue", json={}, auth=DEMO).status_code in (204, 409)
    deadline = time.time() + 20
    while (props := http.get(url, auth=DEMO).json())["status"] == "RUNNING":
        assert time.time() < deadline
        time.sleep(0.03)
    assert props["status"] == "SUCCESSFUL" and props["parameters"]["N"] == "42"
    assert http.post(url + "/actions/continue", json={}, auth=DEMO).status_code == 409
    jobs = http.get(url + "/jobs", auth=DEMO).json()["jobs"]
    assert len(jobs) == 1
    out = octet(http, http.get(jobs[0], auth=DEMO).json()["_links"]["workingDirectory"]["href"]
                + "/files/stdout")
    assert out.content == b"42\n"
    assert http.get(url, auth=OTHER).status_code == 403
    listing = http.get(site.workflows_url).json()
    assert listing["client"]["role"]["selected"] == "anonymous" and listing["workflows"] == []


def test_registry(http, site):
    reg = http.get(site.registry_url).json()
    types = {e["type"]: e["href"] for e in reg["entries"]}
    assert types["CoreServices"] == site.core_url
    assert types["WorkflowServices"] == site.workflows_url
    assert site.core_url.startswith("http://")  # no TLS here: hrefs follow the scheme
    r = http.post(site.registry_url, json={"Endpoint": "https://x/y/rest/core"}, auth=DEMO)
    assert r.status_code == 403
    site.add_registry_entry("https://other.example/OTHER/rest/core", "CoreServices")
    hrefs = [e["href"] for e in http.get(site.registry_url).json()["entries"]]
    assert "https://other.example/OTHER/rest/core" in hrefs


# -- port forwarding ------------------------------------------------------------------------------
def test_port_forwarding_upgrade(http, site):
    backend = socket.socket()
    backend.bind(("127.0.0.1", 0))
    backend.listen(1)
    port = backend.getsockname()[1]

    def echo():
        conn, _ = backend.accept()
        with conn:
            while data := conn.recv(1024):
                conn.sendall(data.upper())

    threading.Thread(target=echo, daemon=True).start()
    url = submit(http, site, {"Executable": "sleep 20", "Job type": "ON_LOGIN_NODE"})
    deadline = time.time() + 10
    while http.get(url, auth=DEMO).json()["status"] != "RUNNING":
        assert time.time() < deadline
        time.sleep(0.02)
    assert http.get(url + "/forward-port", auth=DEMO).json() == {"status": "Nothing to see here yet."}
    path = url[len(site.url):] + f"/forward-port?port={port}"
    auth = base64.b64encode(b"demouser:test123").decode()
    s = socket.create_connection(("127.0.0.1", site.port))
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\n"
              f"Upgrade: UNICORE-Socket-Forwarding\r\nAuthorization: Basic {auth}\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(1)
    assert head.split(b" ")[1] == b"101"
    s.sendall(b"ping")
    got = b""
    while len(got) < 4:
        got += s.recv(16)
    assert got == b"PING"
    s.close()
    backend.close()
    http.post(url + "/actions/abort", json={}, auth=DEMO)


# -- UFTP through the storage (uftp spec §1.7) and the Auth endpoint ---------------------------------
def _uftp_site_or_skip(site):
    if site.uftpd is None:
        pytest.skip("uftpcore.server.UFTPD not available yet")


def test_storage_uftp_export_session(http, site):
    _uftp_site_or_skip(site)
    import uftpcore

    http.put(site.core_url + "/storages/HOME/files/uftpdir/file.txt", data=b"uftp-bytes",
             auth=DEMO, headers={"Content-Type": "application/octet-stream"})
    r = http.post(site.core_url + "/storages/HOME/exports", auth=DEMO, json={
        "file": "uftpdir/", "protocol": "UFTP",
        "extraParameters": {"uftp.secret": "abcdefghijklmnopqrst", "uftp.client.host": "127.0.0.1"}})
    assert r.status_code == 200, r.text
    info = r.json()
    with uftpcore.connect(info["uftp.server.host"], int(info["uftp.server.port"]),
                          "abcdefghijklmnopqrst") as s:
        assert s.read("file.txt") == b"uftp-bytes"


def test_auth_endpoint_with_uftpcore_client(http, site):
    _uftp_site_or_skip(site)
    import uftpcore

    info = http.get(site.auth_base_url, auth=DEMO).json()
    assert info["TEST"]["href"] == site.auth_url and info["client"]["role"]["selected"] == "user"
    home = site.home_dir("demouser")
    with open(os.path.join(home, "via-auth.txt"), "wb") as f:
        f.write(b"auth-ok")
    ticket = uftpcore.authenticate(site.auth_url, username="demouser", password="test123",
                                   base_dir=home)
    with uftpcore.connect(ticket) as s:
        assert s.read("via-auth.txt") == b"auth-ok"
    r = http.post(site.auth_url, json={"serverPath": home + "/"})
    assert r.status_code == 401
    r = http.post(site.auth_base_url + "/NOSUCH", json={"serverPath": "/"}, auth=DEMO)
    assert r.status_code == 404
    r = http.post(site.auth_url, json={"serverPath": site.home_dir("otheruser") + "/"}, auth=DEMO)
    assert r.status_code >= 400


def test_uftp_session_outside_the_tree_cannot_enter_it(http, site):
    _uftp_site_or_skip(site)
    import uftpcore

    other_home = site.home_dir("otheruser")
    with open(os.path.join(other_home, "private.txt"), "wb") as f:
        f.write(b"private")
    ticket = uftpcore.authenticate(site.auth_url, username="demouser", password="test123", base_dir="/")
    with uftpcore.connect(ticket) as s, pytest.raises(uftpcore.UFTPError):
        s.read(os.path.join(other_home, "private.txt"))


def test_import_from_plain_http_url_on_loopback(http, site):
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            body = b"served over plain http"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = submit(http, site, {"Executable": "cat web.txt", "Imports": [
            {"From": f"http://127.0.0.1:{server.server_address[1]}/x.txt", "To": "web.txt"}]})
        props = wait_final(http, url)
        assert props["status"] == "SUCCESSFUL", props["statusMessage"]
        wd = props["_links"]["workingDirectory"]["href"]
        assert octet(http, wd + "/files/stdout").content == b"served over plain http"
    finally:
        server.shutdown()
        server.server_close()


def test_transfer_between_two_emulated_sites(http, site):
    with EmbeddedSite(site_name="OTHER-SITE", uftp=False) as other:
        http.put(site.core_url + "/storages/HOME/files/cross.txt", data=b"cross-site",
                 auth=DEMO, headers={"Content-Type": "application/octet-stream"})
        r = http.post(other.core_url + "/storages/HOME/transfers", auth=DEMO, json={
            "file": "pulled.txt", "source": f"{site.core_url}/storages/HOME/files/cross.txt"})
        assert r.status_code == 201
        deadline = time.time() + 10
        while (props := http.get(r.headers["Location"], auth=DEMO).json())["status"] in ("CREATED",
                                                                                         "RUNNING"):
            assert time.time() < deadline
            time.sleep(0.02)
        assert props["status"] == "DONE", props["statusMessage"]
        assert octet(http, other.core_url + "/storages/HOME/files/pulled.txt").content == b"cross-site"


def test_names_with_spaces_and_unicode(http, site):
    url = site.core_url + "/storages/HOME/files/odd%20dir/f%C3%BCr%20x.txt"
    assert http.put(url, data=b"odd", auth=DEMO,
                    headers={"Content-Type": "application/octet-stream"}).status_code == 204
    listing = http.get(site.core_url + "/storages/HOME/files/odd%20dir", auth=DEMO).json()
    assert list(listing["content"]) == ["/odd dir/für x.txt"]
    assert octet(http, url).content == b"odd"
