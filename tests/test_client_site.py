"""pyunicore_fast.client against the embedded UNICORE site (HTTPS on loopback).

PyUNICORE's integration tests (auth, basic, storage, registry, workflow) run here unchanged in
substance, plus the behaviour this client adds: typed errors, session recovery, SSH-key JWTs,
paging past 200 items, concurrent property loading, UFTP through the storage exports endpoint
and the UFTP class on uftpcore.
"""

from __future__ import annotations

import io
import os
import time

import pytest

import pyunicore_fast.client as uc
import pyunicore_fast.credentials as cr

testing = pytest.importorskip("pyunicore_fast.testing")

pytestmark = pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")

WORKFLOW1 = {
    "variables": [{"id": "decl1", "name": "COUNTER", "type": "INTEGER", "initial_value": "123"}],
    "activities": [
        {"id": "date1", "job": {"Executable": "date", "Exports": [{"From": "stdout", "To": "wf:date1/stdout"}]}},
        {"id": "hold1", "type": "HOLD"},
        {"id": "date2", "job": {"Executable": "date", "Exports": [{"From": "stdout", "To": "wf:date2/stdout"}]}},
    ],
    "transitions": [{"from": "date1", "to": "hold1"}, {"from": "hold1", "to": "date2"}],
}


def _ssh_key_pair():
    from cryptography.hazmat.primitives import serialization as ser
    from cryptography.hazmat.primitives.asymmetric import ed25519

    key = ed25519.Ed25519PrivateKey.generate()
    private = key.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.OpenSSH, ser.NoEncryption())
    public = key.public_key().public_bytes(ser.Encoding.OpenSSH, ser.PublicFormat.OpenSSH).decode() + " demo@host"
    return private, public


@pytest.fixture(scope="module")
def ssh_key(tmp_path_factory):
    private, public = _ssh_key_pair()
    path = tmp_path_factory.mktemp("keys") / "id_ed25519"
    path.write_bytes(private)
    return str(path), public


@pytest.fixture(scope="module")
def site(ssh_key):
    with testing.EmbeddedSite(tls=True, groups={"demouser": ["users", "proj1", "proj2"]},
                              public_keys={"demouser": [ssh_key[1]]}, allocation_delay=0.2) as s:
        yield s


@pytest.fixture
def cred():
    return cr.UsernamePassword("demouser", "test123")


@pytest.fixture
def client(site, cred):
    return uc.Client(uc.Transport(cred), site.core_url)


@pytest.fixture
def home(site, cred):
    return uc.Storage(uc.Transport(cred), site.core_url + "/storages/HOME")


# -- authentication (PyUNICORE test_auth) ------------------------------------------------------------
def test_username_auth(client):
    assert client.properties["client"]["role"]["selected"] == "user"
    assert client.access_info()["xlogin"]["UID"] == "demouser"
    assert client.server_version_info() >= (9, 0, 0)


def test_transport_preferences_switch_group(client):
    groups = client.access_info()["xlogin"]["availableGroups"]
    assert len(groups) >= 2
    for grp in groups:
        client.transport.preferences = f"group:{grp}"
        assert client.access_info()["xlogin"]["group"] == grp


def test_anonymous_info(site):
    c = uc.Client(uc.Transport(cr.Anonymous()), site.core_url)
    assert c.properties["client"]["role"]["selected"] == "anonymous"


def test_strict_tls_verification_with_the_site_certificate(site, cred):
    c = uc.Client(uc.Transport(cred, verify=site.cert_file), site.core_url)
    assert c.access_info()["role"]["selected"] == "user"
    with pytest.raises(__import__("requests").exceptions.SSLError):
        uc.Client(uc.Transport(cred, verify=True), site.core_url)


def test_wrong_password_is_typed_error(site):
    with pytest.raises(uc.AccessDeniedError) as ei:
        uc.Client(cr.UsernamePassword("demouser", "nope"), site.core_url)
    assert ei.value.status_code == 403 and "for url: " + site.core_url in str(ei.value)


def test_issued_token_authenticates(client, site):
    token = client.issue_auth_token(lifetime=600, limited=True)
    claims = cr.jwt_claims(token)
    assert claims and claims["exp"] - claims["iat"] <= 600
    c2 = uc.Client(cr.OIDCToken(token), site.core_url)
    assert c2.access_info()["role"]["selected"] == "user"


def test_ssh_key_jwt_signed_once(site, ssh_key, monkeypatch):
    cred = cr.create_credential("demouser", identity=ssh_key[0])
    signed = []
    original = cred.create_token
    monkeypatch.setattr(cred, "create_token", lambda: signed.append(1) or original())
    tr = uc.Transport(cred, use_security_sessions=False)  # credentials on every request
    c = uc.Client(tr, site.core_url, cache_time=0)
    for _ in range(10):
        assert c.access_info()["role"]["selected"] == "user"
    assert len(signed) == 1


def test_security_session_expiry_is_transparent(client, site):
    client.cache_time = 0
    _ = client.properties
    assert client.transport.last_session_id
    site.expire_sessions()
    assert client.properties["client"]["role"]["selected"] == "user"  # 432 -> resent with credentials


def test_one_connection_for_many_calls(client):
    client.cache_time = 0
    for _ in range(30):
        _ = client.properties
    manager = client.transport._http.get_adapter(client.resource_url).poolmanager
    pools = [manager.pools[key] for key in manager.pools.keys()]  # noqa: SIM118 - RecentlyUsedContainer
    assert sum(p.num_connections for p in pools) == 1


# -- jobs (PyUNICORE test_basic) ---------------------------------------------------------------
def test_run_date(client):
    job = client.new_job({"Executable": "date"})
    t0 = time.monotonic()
    job.poll()
    assert time.monotonic() - t0 < 3  # PyUNICORE sleeps >= 6 s at least once
    assert int(job.properties["exitCode"]) == 0 and job.exit_code == 0
    stdout = job.working_dir.stat("/stdout").raw().read()
    assert len(stdout) > 0
    assert "Job:" in repr(job) and job.job_id in repr(job)


@pytest.mark.parametrize("as_dict", [False, True])
def test_run_uploaded_script(client, tmp_path, as_dict):
    script = tmp_path / "script.sh"
    script.write_text("#!/bin/bash\n\necho from-script\n")
    if as_dict:
        job = client.new_job({"Executable": "bash", "Arguments": ["myscript.sh"]}, {"myscript.sh": str(script)})
    else:
        job = client.new_job({"Executable": "bash", "Arguments": ["script.sh"]}, [str(script)])
    job.poll()
    assert job.exit_code == 0
    assert job.working_dir.stat("/stdout").raw().read() == b"from-script\n"


def test_execute_and_bss_details(client):
    job = client.execute("echo on-login-node")
    assert job.poll() == uc.JobStatus.SUCCESSFUL
    assert job.working_dir.stat("stdout").read() == b"on-login-node\n"
    assert isinstance(job.bss_details(), dict)


def test_allocation_and_task(client):
    alloc = client.new_job({"Job type": "ALLOCATE", "Resources": {"Runtime": "10min"}})
    assert isinstance(alloc, uc.Allocation)
    try:
        alloc.wait_until_available(timeout=30)
        assert alloc.status == uc.JobStatus.RUNNING and alloc.is_ready()
        task = alloc.new_job({"Executable": "echo in-allocation"})
        task.poll()
        assert task.exit_code == 0
        assert task.working_dir.stat("/stdout").raw().read() == b"in-allocation\n"
        assert repr(alloc).startswith("Allocation: ")
    finally:
        alloc.abort()


def test_abort_and_restart(client):
    job = client.new_job({"Executable": "sleep 30"})
    job.poll(uc.JobStatus.RUNNING, timeout=20)
    job.abort()
    assert job.poll(timeout=20) == uc.JobStatus.FAILED
    job2 = client.new_job({"Executable": "echo again"})
    job2.poll()
    job2.restart()
    assert job2.poll(timeout=20) == uc.JobStatus.SUCCESSFUL
    assert job2.working_dir.stat("stdout").read().startswith(b"again")


def test_failed_job_and_log(client):
    job = client.new_job({"Executable": "exit 3"})
    assert job.poll() == uc.JobStatus.FAILED
    assert job.exit_code == 3 and isinstance(job.log, list) and not job.is_running()


def test_job_listing_pages_and_bulk_properties(client):
    tag = f"bulk{os.getpid()}{time.monotonic_ns()}"
    for _ in range(205):
        client.new_job({"Tags": [tag]}, autostart=False)
    jobs = client.get_jobs(tags=[tag])
    assert len(jobs) == 205  # beyond the server's 200-item page
    assert len(client.get_jobs(tags=[tag], num=10)) == 10
    assert len(client.get_jobs(tags=[tag], offset=200, num=100)) == 5
    t0 = time.monotonic()
    uc.load_properties(jobs, max_workers=8)
    assert all(j._cache_valid() for j in jobs)
    assert all(j.status in (uc.JobStatus.SUCCESSFUL, uc.JobStatus.READY) for j in jobs)
    assert time.monotonic() - t0 < 20


def test_job_submission_disabled_is_503(client, site):
    site.set_job_submission(False, "maintenance")
    try:
        with pytest.raises(uc.ServiceUnavailableError) as ei:
            client.new_job({"Executable": "date"})
        assert ei.value.status_code == 503
    finally:
        site.set_job_submission(True)


def test_compute_and_applications(client):
    computes = client.get_compute()
    assert computes and all(isinstance(c, uc.Compute) for c in computes)
    assert isinstance(computes[0].get_queues(), dict)
    apps = client.get_applications()
    names = {a.name for a in apps}
    assert "Date" in names
    date = next(a for a in apps if a.name == "Date")
    job = client.new_job({"ApplicationName": "Date"})
    assert job.poll() == uc.JobStatus.SUCCESSFUL
    assert "Application Date" in repr(date)


# -- storages (PyUNICORE test_storage) ---------------------------------------------------------------
def test_list_storages(client):
    storages = client.get_storages()
    home = next(s for s in storages if "storages/HOME" in s.resource_url)
    home.listdir()
    home.listdir(".")
    home.listdir("/")
    with_jobs = client.get_storages(all=True)
    assert len(with_jobs) >= len(storages)


def test_upload_download(home, tmp_path):
    src = tmp_path / "script.sh"
    src.write_bytes(b"#!/bin/bash\ndate\n" * 100)
    with open(src, "rb") as f:
        home.put(f, "script.sh")
    remote = home.stat("script.sh")
    assert int(remote.properties["size"]) == src.stat().st_size and remote.size() == src.stat().st_size
    out = io.BytesIO()
    remote.download(out)
    assert out.getvalue() == src.read_bytes()
    remote.download(str(tmp_path / "copy.sh"))
    assert (tmp_path / "copy.sh").read_bytes() == src.read_bytes()


def test_upload_download_data(home):
    data = "this is some test data"
    home.put(data, "test.txt")
    remote = home.stat("test.txt")
    assert int(remote.properties["size"]) == len(data)
    assert remote.read(offset=8, size=4) == b"some"
    with remote.raw(offset=5) as r:
        assert r.read() == b"is some test data"


def test_file_operations(home, tmp_path):
    home.mkdir("ops/sub")
    assert home.stat("ops").isdir()
    home.put(b"abc", "ops/sub/a.txt")
    home.upload(str(tmp_path / "x") if False else __file__, "ops/this_test.py")
    names = set(home.listdir("ops"))
    assert {"ops/sub/", "ops/this_test.py"} <= names
    home.rename("ops/sub/a.txt", "ops/sub/b.txt")
    home.copy("ops/sub/b.txt", "ops/sub/c.txt")
    assert set(home.listdir("ops/sub")) == {"ops/sub/b.txt", "ops/sub/c.txt"}
    home.stat("ops/sub/c.txt").remove()
    home.rm("ops/sub/b.txt")
    home.rmdir("ops")
    with pytest.raises(uc.ResourceNotFoundError) as ei:
        home.stat("ops")
    assert isinstance(ei.value, FileNotFoundError) and ei.value.status_code == 404


def test_names_with_special_characters(home):
    name = "dir with space/file #1 ?%.txt"
    home.put(b"odd", name)
    assert home.stat(name).read() == b"odd"
    assert "dir with space/file #1 ?%.txt" in home.listdir("dir with space")


def test_metadata_and_set_properties(home):
    home.put(b"{}", "meta.json")
    f = home.stat("meta.json")
    assert isinstance(f.get_metadata(), dict)
    reply = home.set_properties({"tags": ["t1"]})
    assert reply.get("tags") == "OK"


def test_server_to_server_transfers(client, home, tmp_path):
    payload = b"#!/bin/bash\ndate\n" * 50
    home.put(payload, "script.sh")
    storage2 = client.new_job({}).working_dir
    transfer = storage2.receive_file(home.resource_url + "/files/script.sh", "script.sh")
    transfer.cache_time = 0  # is_running() reads properties cached for cache_time (5 s) otherwise
    while transfer.is_running():
        time.sleep(0.05)
    assert int(transfer.properties["transferredBytes"]) == len(payload)
    transfer2 = home.send_file("script.sh", storage2.resource_url + "/files/script2.sh")
    assert transfer2.poll() == uc.TransferStatus.DONE
    assert transfer2.transferred_bytes == len(payload)
    assert storage2.stat("script2.sh").read() == payload
    assert any(t.resource_url == transfer2.resource_url for t in client.get_transfers())


# -- UFTP through the storage ---------------------------------------------------------------------
def test_storage_upload_download_via_uftp(home, tmp_path):
    pytest.importorskip("uftpcore.server")
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(3 << 20))
    home.upload(str(src), "uftp/dir/big.bin", protocol="UFTP")
    assert home.stat("uftp/dir/big.bin").size() == 3 << 20
    home.download("uftp/dir/big.bin", str(tmp_path / "back.bin"), protocol="UFTP")
    assert (tmp_path / "back.bin").read_bytes() == src.read_bytes()
    out = io.BytesIO()
    home.download("uftp/dir/big.bin", out, protocol="UFTP")
    assert out.getvalue() == src.read_bytes()
    session = home.uftp_session()
    assert session is home.uftp_session()  # reused
    assert [i.name for i in session.listdir("uftp/dir")] == ["big.bin"]
    home.close()
    assert session.closed


# -- registry (PyUNICORE test_registry) ----------------------------------------------------------
def test_registry(site, cred):
    registry = uc.Registry(uc.Transport(cred), site.registry_url)
    assert site.site_name in registry.site_urls
    site_client = registry.site(site.site_name)
    assert site_client.properties["client"]["role"]["selected"] == "user"
    assert registry.site().resource_url == site_client.resource_url  # 2.0.2: first site
    workflow_client = registry.workflow_service(site.site_name)
    assert workflow_client.properties["client"]["role"]["selected"] == "user"
    with pytest.raises(KeyError):
        registry.site("NO-SUCH-SITE")


# -- workflows (PyUNICORE test_workflow) ----------------------------------------------------------------
def test_run_workflow(site, cred):
    wf_service = uc.WorkflowService(uc.Transport(cred), site.workflows_url)
    workflow1 = wf_service.new_workflow(WORKFLOW1)
    assert workflow1.poll(uc.WorkflowStatus.HELD, timeout=60) == uc.WorkflowStatus.HELD
    assert workflow1.is_held()
    params = workflow1.properties["parameters"]
    params["COUNTER"] = "789"
    workflow1.resume(params)
    assert workflow1.poll(timeout=60) == uc.WorkflowStatus.SUCCESSFUL
    assert workflow1.parameters["COUNTER"] == "789"
    assert len(workflow1.get_files()) == 2
    assert len(workflow1.get_jobs()) == 2
    assert len(workflow1.stat("wf:date1/stdout").raw().read()) > 0
    assert any(w.resource_url == workflow1.resource_url for w in wf_service.get_workflows())


def test_workflow_errors(site, cred):
    wf_service = uc.WorkflowService(uc.Transport(cred), site.workflows_url)
    with pytest.raises(uc.BadRequestError):
        wf_service.new_workflow({"activities": [{"id": "a", "type": "NO_SUCH_TYPE"}], "transitions": [{"from": "a", "to": "b"}]})
    wf = wf_service.new_workflow({"activities": [{"id": "d", "job": {"Executable": "date"}}]})
    wf.poll(timeout=60)
    with pytest.raises(uc.ConflictError):
        wf.resume({})


# -- the UFTP class ------------------------------------------------------------------------------------
@pytest.fixture
def uftp_base(site):
    pytest.importorskip("uftpcore.server")
    base = os.path.join(site.home_dir("demouser"), f"uftp-{time.monotonic_ns()}")
    os.makedirs(base)
    return base


def test_uftp_readme_and_202_forms(site, cred, uftp_base):
    from pyunicore_fast.uftp import UFTP
    from pyunicore_fast.uftp.uftp import UFTP as UFTP2

    assert UFTP is UFTP2
    _host, port, password = UFTP(uc.Transport(cred), site.auth_url, uftp_base).authenticate()  # README form
    assert isinstance(port, int) and len(password) >= 16
    _host2, _port2, password2 = UFTP().authenticate(cred, site.auth_url, uftp_base)  # 2.0.2 form
    assert password2 != password


def test_uftp_file_system_operations(site, cred, uftp_base):
    from pyunicore_fast.uftp.uftp import UFTP

    with open(os.path.join(uftp_base, "a.txt"), "wb") as f:
        f.write(b"0123456789")
    with UFTP() as u:
        u.connect(cred, site.auth_url, uftp_base)
        st = u.stat("/a.txt")
        assert st["st_size"] == 10 and st["st_uid"] == u.uid and st["st_mode"] & 0o100000
        assert u.listdir("/") == ["a.txt"]
        u.mkdir("/d", 0o755)
        assert sorted(u.listdir(".")) == ["a.txt", "d"]
        u.rename("a.txt", "d/b.txt")
        u.set_time("d/b.txt", 1_600_000_000)
        assert u.stat("d/b.txt")["st_mtime"] == 1_600_000_000
        u.chmod("d/b.txt", 0o600)
        assert u.stat("d/b.txt")["st_mode"] & 0o777 == 0o600
        with pytest.raises(FileNotFoundError):
            u.stat("nope")

        sock = u.get_write_socket("d/new.bin", 0)
        sock.sendall(b"hello uftp")
        sock.close()
        assert u.stat("d/new.bin")["st_size"] == 10
        sock = u.get_write_socket("d/new.bin", 6)
        sock.sendall(b"UFTP")
        sock.close()
        rd = u.get_read_socket("d/new.bin", 0).makefile("rb")
        assert rd.read() == b"hello UFTP"
        rd.close()
        sock = u.get_read_socket("d/new.bin", 6)
        assert sock.recv(100) == b"UFTP"
        sock.close()
        u.rm("d/new.bin")
        u.rm("d/b.txt")
        u.rmdir("d")
        assert u.listdir("/") == []


def test_auth_server(site, cred, uftp_base):
    from pyunicore_fast.uftp.uftp import AuthServer

    auth = AuthServer(cred, site.auth_url)
    assert auth.server_name == site.auth_url.rsplit("/", 1)[1]
    assert auth.base_url == site.auth_base_url
    _host, port, secret = auth.authenticate(base_dir=uftp_base)
    assert port > 0 and secret
    assert isinstance(auth.is_sharing_supported(), bool)
    token = auth.issue_auth_token(lifetime=300)
    assert cr.jwt_claims(token) is not None
    with pytest.raises(ValueError):
        AuthServer(cred, "https://host/rest/core")
