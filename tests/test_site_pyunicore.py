"""Proof of faithfulness: the REAL PyUNICORE package driving the EmbeddedSite emulator.

Everything here goes through ``pyunicore`` (2.0.2 on PyPI: httpx, no connection reuse,
``verify=False`` by default) exactly as a user script would, against a TLS site so that
``Registry`` accepts the https hrefs.  Skipped as a whole if ``pyunicore`` is not installed.
"""

from __future__ import annotations

import io
import json
import time

import pytest

uc = pytest.importorskip("pyunicore.client", reason="the real PyUNICORE package is not installed "
                                                     "(pip install pyunicore==2.0.2)")
creds = pytest.importorskip("pyunicore.credentials")
httpx = pytest.importorskip("httpx")

from pyunicore_fast.testing import EmbeddedSite


def _uftp_available() -> bool:
    try:
        from uftpcore.server import UFTPD  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    with EmbeddedSite(tls=True, allocation_delay=0.2) as s:
        yield s


@pytest.fixture
def cred(site):
    return creds.UsernamePassword("demouser", site.users["demouser"])


@pytest.fixture
def client(site, cred):
    return uc.Client(cred, site.core_url, cache_time=0)


def _fast(resource):
    """PyUNICORE sleeps max(2, cache_time + 1) s between polls; cache_time=0 gives 2 s."""
    resource.cache_time = 0
    return resource


# -- base resource and authentication -----------------------------------------------------
def test_client_sees_user_role_xlogin_and_version(client):
    info = client.access_info()
    assert info["role"]["selected"] == "user"
    assert info["xlogin"]["UID"] == "demouser"
    assert client.server_version_info() == (10, 2, 0)
    assert {"jobs", "storages", "transfers", "factories"} <= set(client.links)


def test_wrong_password_is_rejected(site):
    with pytest.raises(httpx.HTTPError, match="403"):
        uc.Client(creds.UsernamePassword("demouser", "wrong"), site.core_url)


def test_anonymous_access_and_auth_check(site):
    anon = uc.Client(creds.Anonymous(), site.core_url)
    assert anon.access_info()["role"]["selected"] == "anonymous"
    assert "xlogin" not in anon.access_info()
    with pytest.raises(creds.AuthenticationFailedException):
        anon.assert_authentication()


def test_user_preferences_switch_group(site, cred):
    transport = uc.Transport(cred)
    transport.preferences = "group:demouser-project"
    c = uc.Client(transport, site.core_url)
    assert c.access_info()["xlogin"]["group"] == "demouser-project"
    transport.preferences = "group:nosuchgroup"
    with pytest.raises(httpx.HTTPError, match="403"):
        uc.Client(transport, site.core_url)


def test_security_session_reuse_and_expiry(site, cred):
    c = uc.Client(cred, site.core_url, cache_time=0)
    first = c.transport.last_session_id
    assert first
    assert c.properties  # the second call sends the session id
    assert c.transport.last_session_id == first
    site.expire_sessions()
    assert c.access_info()["role"]["selected"] == "user"  # 432 → retried with credentials
    assert c.transport.last_session_id not in (None, first)


def test_issued_token_works_as_bearer(client, site):
    token = client.issue_auth_token(lifetime=120, renewable=True)
    assert token.count(".") == 2
    c2 = uc.Client(creds.BearerToken(token), site.core_url)
    assert c2.access_info()["xlogin"]["UID"] == "demouser"
    assert c2.access_info()["authenticationMethod"] == "ETD"


# -- jobs ---------------------------------------------------------------------------------
def test_job_runs_and_stdout_is_readable(client):
    job = _fast(client.new_job({"Executable": "echo", "Arguments": ["hello", "unicore"],
                                "Environment": ["GREETING=hi"]}))
    job.poll(timeout=30)
    assert job.status == uc.JobStatus.SUCCESSFUL
    assert job.exit_code == 0
    assert isinstance(job.log, list) and job.log
    wd = job.working_dir
    assert {"stdout", "stderr"} <= set(wd.listdir())
    out = wd.stat("stdout")
    assert out.read() == b"hello unicore\n"
    with out.raw(offset=6, size=7) as resp:
        assert resp.status_code == 206
        assert resp.read() == b"unicore"
    assert "Job:" in repr(job) and "SUCCESSFUL" in repr(job)


def test_job_with_client_stage_in_list_and_dict(client, tmp_path):
    script = tmp_path / "script.sh"
    script.write_text("echo from-script $1\n")
    data = tmp_path / "data.txt"
    data.write_text("payload\n")
    job = _fast(client.new_job({"Executable": "bash script.sh A; cat in/d.txt"},
                               inputs={"script.sh": str(script), "in/d.txt": str(data)}))
    job.poll(timeout=30)
    assert job.status == uc.JobStatus.SUCCESSFUL, job.properties["statusMessage"]
    assert job.working_dir.stat("stdout").read() == b"from-script A\npayload\n"
    job2 = _fast(client.new_job({"Executable": "cat data.txt"}, inputs=[str(data)]))
    job2.poll(timeout=30)
    assert job2.working_dir.stat("stdout").read() == b"payload\n"


def test_failing_job_reports_exit_code(client):
    job = _fast(client.new_job({"Executable": "exit 3"}))
    job.poll(timeout=30)
    assert job.status == uc.JobStatus.FAILED
    assert job.exit_code == 3
    assert "3" in job.properties["statusMessage"]


def test_abort_and_restart(client):
    job = _fast(client.new_job({"Executable": "sleep 30"}))
    job.poll(uc.JobStatus.RUNNING, timeout=30)
    job.abort()
    job.poll(timeout=30)
    assert job.status == uc.JobStatus.FAILED
    job2 = _fast(client.new_job({"Executable": "date +%s%N"}))
    job2.poll(timeout=30)
    first = job2.working_dir.stat("stdout").read()
    job2.restart()
    deadline = time.time() + 20
    while time.time() < deadline:
        if job2.status == uc.JobStatus.SUCCESSFUL and job2.working_dir.stat("stdout").read() != first:
            break
        time.sleep(0.1)
    assert job2.working_dir.stat("stdout").read() != first


def test_execute_application_and_listing(client):
    names = {a.name for a in client.get_applications()}
    assert "Date" in names
    assert "batch" in client.get_compute()[0].get_queues()
    job = _fast(client.new_job({"ApplicationName": "Date"}))
    job.poll(timeout=30)
    assert job.status == uc.JobStatus.SUCCESSFUL
    login = _fast(client.execute("echo login-node"))
    login.poll(timeout=30)
    assert login.properties["jobType"] == "ON_LOGIN_NODE"
    assert login.properties["batchSystemID"].startswith("INTERACTIVE_")
    urls = [j.resource_url for j in client.get_jobs()]
    assert job.resource_url in urls and login.resource_url in urls
    tagged = _fast(client.new_job({"Executable": "true", "Tags": ["mytag"]}))
    assert [j.resource_url for j in client.get_jobs(tags=["mytag"])] == [tagged.resource_url]


def test_allocation_and_task(client):
    alloc = _fast(client.new_job({"Job type": "ALLOCATE", "Resources": {"Runtime": "60"}}))
    assert isinstance(alloc, uc.Allocation)
    alloc.wait_until_available(timeout=30)
    bss_id = alloc.properties["batchSystemID"]
    assert not bss_id.startswith("INTERACTIVE_")
    task = _fast(alloc.new_job({"Executable": "echo $SLURM_JOB_ID"}))
    task.poll(timeout=30)
    assert task.working_dir.stat("stdout").read().decode().strip() == bss_id
    alloc.abort()


def test_users_do_not_see_each_other(site, client):
    job = _fast(client.new_job({"Executable": "true"}))
    other = uc.Client(creds.UsernamePassword("otheruser", site.users["otheruser"]), site.core_url)
    assert job.resource_url not in [j.resource_url for j in other.get_jobs()]
    with pytest.raises(httpx.HTTPError, match="403"):
        _ = uc.Job(other.transport, job.resource_url).status


# -- storages -----------------------------------------------------------------------------
def test_storage_upload_download_listing(site, client, tmp_path):
    storages = client.get_storages()
    home = next(s for s in storages if s.resource_url.endswith("/storages/HOME"))
    local = tmp_path / "script.sh"
    local.write_bytes(b"#!/bin/sh\necho hello\n" * 100)
    home.upload(str(local), "script.sh")
    home.put("some text", "sub/dir/note.txt")
    f = home.stat("script.sh")
    assert f.isfile() and int(f.properties["size"]) == local.stat().st_size
    buf = io.BytesIO()
    f.download(buf)
    assert buf.getvalue() == local.read_bytes()
    target = tmp_path / "copy.sh"
    f.download(str(target))
    assert target.read_bytes() == local.read_bytes()
    listing = home.listdir()
    assert "script.sh" in listing and "sub/" in listing and listing["sub/"].isdir()
    assert set(home.listdir(".")) == set(home.listdir("/")) == set(listing)
    assert list(home.listdir("sub/dir")) == ["sub/dir/note.txt"]
    home.mkdir("made/here")
    home.copy("script.sh", "made/here/copy.sh")
    home.rename("made/here/copy.sh", "made/moved.sh")
    assert home.stat("made/moved.sh").read() == local.read_bytes()
    home.rm("made/moved.sh")
    home.rmdir("made")
    assert "made/" not in home.listdir()
    # the other user's HOME is a different folder
    other = uc.Storage(creds.UsernamePassword("otheruser", site.users["otheruser"]), home.resource_url)
    assert "script.sh" not in other.listdir()


def test_job_dirs_hidden_unless_all(client):
    job = client.new_job({})
    wd_url = job.links["workingDirectory"]
    assert wd_url not in [s.resource_url for s in client.get_storages()]
    assert wd_url in [s.resource_url for s in client.get_storages(all=True)]


def test_server_to_server_transfers(client):
    home = uc.Storage(client.transport, client.links["storages"] + "/HOME")
    home.put(b"x" * 12345, "transfer-src.bin")
    scratch = client.new_job({}).working_dir
    t1 = _fast(scratch.receive_file(home.resource_url + "/files/transfer-src.bin", "pulled.bin"))
    t1.poll(timeout=30)
    assert t1.status == uc.TransferStatus.DONE
    assert int(t1.properties["transferredBytes"]) == 12345
    t2 = _fast(home.send_file("transfer-src.bin", scratch.resource_url + "/files/pushed.bin"))
    t2.poll(timeout=30)
    assert int(t2.properties["transferredBytes"]) == 12345
    assert {"pulled.bin", "pushed.bin"} <= set(scratch.listdir())
    assert [t.resource_url for t in client.get_transfers()][-2:] == [t1.resource_url, t2.resource_url]


@pytest.mark.skipif(not _uftp_available(), reason="uftpcore.server.UFTPD not available yet")
def test_server_to_server_transfer_over_uftp(client):
    home = uc.Storage(client.transport, client.links["storages"] + "/HOME")
    home.put(b"u" * 54321, "uftp-src.bin")
    scratch = client.new_job({}).working_dir
    t = _fast(scratch.receive_file(home.resource_url + "/files/uftp-src.bin", "via-uftp.bin",
                                   protocol="UFTP"))
    t.poll(timeout=30)
    assert t.status == uc.TransferStatus.DONE, t.properties["statusMessage"]
    assert t.properties["protocol"] == "UFTP"
    assert scratch.stat("via-uftp.bin").read() == b"u" * 54321


# -- registry and workflows -----------------------------------------------------------------
def test_registry_lists_site_and_workflow_service(site, cred):
    reg = uc.Registry(cred, site.registry_url)
    assert reg.site_urls == {"DEMO-SITE": site.core_url}
    assert reg.workflow_services_urls == {"DEMO-SITE": site.workflows_url}
    c = reg.site("DEMO-SITE")
    assert c.access_info()["role"]["selected"] == "user"
    assert reg.workflow_service().access_info()["role"]["selected"] == "user"


WORKFLOW1 = {
    "variables": [{"id": "decl1", "name": "COUNTER", "type": "INTEGER", "initial_value": "123"}],
    "activities": [
        {"id": "date1", "job": {"Executable": "date",
                                "Exports": [{"From": "stdout", "To": "wf:date1/stdout"}]}},
        {"id": "hold1", "type": "HOLD"},
        {"id": "date2", "job": {"Executable": "date",
                                "Exports": [{"From": "stdout", "To": "wf:date2/stdout"}]}},
    ],
    "transitions": [{"from": "date1", "to": "hold1"}, {"from": "hold1", "to": "date2"}],
}


def test_workflow_hold_continue_files_jobs(site, cred):
    service = uc.WorkflowService(cred, site.workflows_url)
    wf = _fast(service.new_workflow(json.loads(json.dumps(WORKFLOW1))))
    deadline = time.time() + 30
    while not wf.is_held():
        assert time.time() < deadline
        time.sleep(0.05)
    params = wf.properties["parameters"]
    assert params == {"COUNTER": "123"}
    params["COUNTER"] = "789"
    wf.resume(params)
    wf.poll(timeout=30)
    assert wf.status == uc.WorkflowStatus.SUCCESSFUL
    assert wf.properties["parameters"]["COUNTER"] == "789"
    assert len(wf.get_files()) == 2
    assert len(wf.get_jobs()) == 2
    assert wf.stat("wf:date1/stdout").read().strip()
    assert wf.resource_url in [w.resource_url for w in service.get_workflows()]


# -- UFTP ---------------------------------------------------------------------------------
@pytest.mark.skipif(not _uftp_available(), reason="uftpcore.server.UFTPD not available yet")
def test_uftp_authenticate_and_session(site, cred):
    from pyunicore.uftp.uftp import UFTP, AuthServer

    home = site.home_dir("demouser")
    with open(f"{home}/uftp-hello.txt", "w") as f:
        f.write("hello via uftp\n")
    u = UFTP()
    host, port, secret = u.authenticate(cred, site.auth_url, home)
    assert host == "127.0.0.1" and int(port) > 0 and len(secret) >= 8
    u.connect(cred, site.auth_url, home)
    try:
        assert "uftp-hello.txt" in u.listdir(".")
        assert u.stat("uftp-hello.txt")["st_size"] == len("hello via uftp\n")
    finally:
        u.close()
    auth = AuthServer(cred, site.auth_url)
    assert auth.info["TEST"]["status"] == "OK"
    assert len(auth.authenticate(home)) == 3
    assert auth.issue_auth_token().count(".") == 2


# -- port forwarding and the asyncio client ------------------------------------------------
def test_forwarder_tunnel_through_upgrade(client):
    import socket
    import threading

    from pyunicore.forwarder import open_tunnel

    backend = socket.socket()
    backend.bind(("127.0.0.1", 0))
    backend.listen(1)
    port = backend.getsockname()[1]

    def echo() -> None:
        conn, _ = backend.accept()
        with conn:
            while data := conn.recv(1024):
                conn.sendall(data[::-1])

    threading.Thread(target=echo, daemon=True).start()
    job = _fast(client.new_job({"Executable": "sleep 20", "Job type": "ON_LOGIN_NODE"}))
    job.poll(uc.JobStatus.RUNNING, timeout=30)
    tunnel = open_tunnel(job, service_port=port)
    try:
        tunnel.sendall(b"abc")
        got = b""
        while len(got) < 3:
            got += tunnel.recv(16)
        assert got == b"cba"
    finally:
        tunnel.close()
        backend.close()
        job.abort()


def test_async_client(site):
    import asyncio

    aio = pytest.importorskip("pyunicore.aio.client")

    async def run() -> tuple[str, bytes, list[str]]:
        cred = creds.UsernamePassword("demouser", site.users["demouser"])
        async with aio.Client(cred, site.core_url) as c:
            await c.assert_authentication()
            job = await c.new_job({"Executable": "echo async"})
            job.cache_time = 0
            for _ in range(200):
                if not await job.is_running:
                    break
                await asyncio.sleep(0.05)
            wd = await job.working_dir
            out = await (await wd.stat("stdout")).read()
            storages = [s.resource_url for s in await c.get_storages()]
            return (await job.status).value, out, storages

    status, out, storages = asyncio.run(run())
    assert status == "SUCCESSFUL" and out == b"async\n"
    assert site.core_url + "/storages/HOME" in storages


@pytest.mark.skipif(not _uftp_available(), reason="uftpcore.server.UFTPD not available yet")
def test_uftpcore_authenticate_over_verified_tls(site):
    import uftpcore

    home = site.home_dir("demouser")
    with open(f"{home}/tls-check.txt", "wb") as f:
        f.write(b"verified")
    ticket = uftpcore.authenticate(site.auth_url, username="demouser", password=site.users["demouser"],
                                   base_dir=home, verify=site.cert_file)
    with uftpcore.connect(ticket) as s:
        assert s.read("tls-check.txt") == b"verified"


def test_cli_against_the_registry(site, tmp_path, capsys):
    from pyunicore.cli import main as cli

    cfg = tmp_path / "preferences"
    cfg.write_text(f"registry={site.registry_url}\nusername=demouser\npassword={site.users['demouser']}\n")
    home = uc.Storage(creds.UsernamePassword("demouser", site.users["demouser"]),
                      site.core_url + "/storages/HOME")
    home.put(b"cli", "cli-file.txt")
    capsys.readouterr()
    cli.run(["ls", "-c", str(cfg), "-l", site.core_url + "/storages/HOME/files"])
    assert "/cli-file.txt" in capsys.readouterr().out
    cli.run(["issue-token", "-c", str(cfg), "-s", "DEMO-SITE", "--inspect"])
    assert "demouser" in capsys.readouterr().out
    cli.run(["rest", "-c", str(cfg), "GET", site.core_url])
    assert '"selected": "user"' in capsys.readouterr().out
    cli.run(["exec", "-c", str(cfg), "echo", "hello-cli"])  # waits with PyUNICORE's 6 s poll
    assert "hello-cli" in capsys.readouterr().out
