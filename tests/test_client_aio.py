"""pyunicore_fast.aio.client (PyUNICORE 2.0.2's asyncio API) against the embedded site, once with
the httpx backend and once with the requests-in-a-thread fallback."""

from __future__ import annotations

import asyncio
import io
import os
import time

import pytest

import pyunicore_fast.aio.client as ac
import pyunicore_fast.credentials as cr

testing = pytest.importorskip("pyunicore_fast.testing")

pytestmark = pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")

BACKENDS = ["thread"] + (["httpx"] if ac.httpx is not None else [])

WORKFLOW = {
    "variables": [{"name": "COUNTER", "type": "INTEGER", "initial_value": "1"}],
    "activities": [{"id": "d1", "job": {"Executable": "date", "Exports": [{"From": "stdout", "To": "wf:d1/out"}]}},
                   {"id": "h", "type": "HOLD"}],
    "transitions": [{"from": "d1", "to": "h"}],
}


@pytest.fixture(scope="module")
def site():
    with testing.EmbeddedSite(tls=True, allocation_delay=0.2) as s:
        yield s


@pytest.fixture(params=BACKENDS)
def transport_factory(request):
    def make(credential=None):
        return ac.Transport(credential or cr.UsernamePassword("demouser", "test123"), backend=request.param)

    make.backend = request.param
    return make


def run(coro):
    return asyncio.run(coro)


def test_client_basics(site, transport_factory):
    async def main():
        async with ac.Client(transport_factory(), site.core_url) as client:
            await client.assert_authentication()
            assert (await client.access_info)["role"]["selected"] == "user"
            assert await client.server_version_info >= (9, 0, 0)
            assert client.transport.backend == transport_factory.backend
            token = await client.issue_auth_token(lifetime=300)
            assert cr.jwt_claims(token)["exp"] > time.time()
            storages = await client.get_storages()
            assert any(s.resource_url.endswith("/HOME") for s in storages)
            computes = await client.get_compute()
            assert isinstance(await computes[0].queues, dict)
            apps = await client.get_applications()
            assert "Date" in [await a.name for a in apps]

    run(main())


def test_anonymous_and_wrong_password(site, transport_factory):
    async def main():
        anon = ac.Client(transport_factory(cr.Anonymous()), site.core_url)
        await anon.assert_authentication()  # no check for Anonymous
        assert (await anon.access_info)["role"]["selected"] == "anonymous"
        bad = ac.Client(transport_factory(cr.UsernamePassword("demouser", "wrong")), site.core_url)
        with pytest.raises(ac.UnicoreHTTPError) as ei:
            await bad.assert_authentication()
        assert ei.value.status_code == 403
        await anon.aclose()
        await bad.aclose()

    run(main())


def test_concurrent_jobs(site, transport_factory, tmp_path):
    script = tmp_path / "s.sh"
    script.write_text("echo $1\n")

    async def main():
        async with ac.Client(transport_factory(), site.core_url) as client:
            jobs = await asyncio.gather(*(client.new_job({"Executable": f"echo job{i}"}) for i in range(10)))
            statuses = await asyncio.gather(*(j.poll() for j in jobs))
            assert statuses == [ac.JobStatus.SUCCESSFUL] * 10
            outputs = []
            for i, j in enumerate(jobs):
                wd = await j.working_dir
                outputs.append(await (await wd.stat("stdout")).read())
                assert await j.exit_code == 0 and not await j.is_running
            assert outputs == [f"job{i}\n".encode() for i in range(10)]
            up = await client.new_job({"Executable": "bash s.sh hi"}, [str(script)])
            assert await up.poll() == ac.JobStatus.SUCCESSFUL
            assert await (await (await up.working_dir).stat("stdout")).read() == b"hi\n"
            assert up.id == up.job_id == up.resource_url.rsplit("/", 1)[1]
            listed = await client.get_jobs()
            assert {j.resource_url for j in jobs} <= {j.resource_url for j in listed}
            await ac.load_properties(listed)
            assert isinstance(await listed[0].log, list)
            assert isinstance(await jobs[0].bss_details, dict)

    run(main())


def test_job_actions_and_allocation(site, transport_factory):
    async def main():
        async with ac.Client(transport_factory(), site.core_url) as client:
            job = await client.new_job({"Executable": "sleep 30"})
            await job.poll(ac.JobStatus.RUNNING, timeout=20)
            await job.abort()
            assert await job.poll(timeout=20) == ac.JobStatus.FAILED
            await job.restart()
            alloc = await client.new_job({"Job type": "ALLOCATE"})
            assert isinstance(alloc, ac.Allocation)
            await alloc.wait_until_available(timeout=30)
            assert await alloc.is_ready
            task = await alloc.new_job({"Executable": "echo task"})
            assert await task.poll() == ac.JobStatus.SUCCESSFUL
            await alloc.abort()
            await job.abort()
            run_job = await client.execute("echo exec")
            assert await run_job.poll() == ac.JobStatus.SUCCESSFUL

    run(main())


def test_storage_operations(site, transport_factory, tmp_path):
    src = tmp_path / "data.bin"
    src.write_bytes(os.urandom(2 << 20))

    async def main():
        home = ac.Storage(transport_factory(), site.core_url + "/storages/HOME")
        base = f"aio-{transport_factory.backend}"
        await home.mkdir(base)
        await home.upload(str(src), f"{base}/data.bin")
        f = await home.stat(f"{base}/data.bin")
        assert f.isfile and f.isfile() and not f.isdir
        assert await f.size == src.stat().st_size
        assert await f.read(offset=10, size=5) == src.read_bytes()[10:15]
        async with f.raw(offset=100) as r:
            data = b"".join([c async for c in r.aiter_bytes(65536)])
        assert data == src.read_bytes()[100:]
        out = io.BytesIO()
        await f.download(out)
        assert out.getvalue() == src.read_bytes()
        await f.download(str(tmp_path / "back.bin"))
        assert (tmp_path / "back.bin").read_bytes() == src.read_bytes()
        await home.put("text", f"{base}/t.txt")
        with open(src, "rb") as fh:  # noqa: ASYNC230 - a sync file object is the case under test
            await home.put(fh, f"{base}/from_file.bin")
        assert await (await home.stat(f"{base}/from_file.bin")).size == src.stat().st_size
        await home.rename(f"{base}/t.txt", f"{base}/u.txt")
        await home.copy(f"{base}/u.txt", f"{base}/v.txt")
        names = set(await home.listdir(base))
        assert names == {f"{base}/data.bin", f"{base}/u.txt", f"{base}/v.txt", f"{base}/from_file.bin"}
        assert await (await home.stat(f"{base}/v.txt")).read() == b"text"
        assert await (await home.stat(f"{base}/v.txt")).read(size=0) == b""
        await (await home.stat(f"{base}/v.txt")).remove()
        await home.rm(f"{base}/u.txt")
        with pytest.raises(ac.UnicoreHTTPError) as ei:
            await home.stat(f"{base}/u.txt")
        assert ei.value.status_code == 404 and isinstance(ei.value, FileNotFoundError)
        await home.rmdir(base)
        await home.aclose()

    run(main())


def test_transfers_and_uftp(site, transport_factory, tmp_path):
    src = tmp_path / "u.bin"
    src.write_bytes(os.urandom(1 << 20))

    async def main():
        async with ac.Client(transport_factory(), site.core_url) as client:
            home = ac.Storage(client.transport, site.core_url + "/storages/HOME")
            await home.put(b"x" * 1000, "tr.bin")
            wd = await (await client.new_job({})).working_dir
            tr = await wd.receive_file(home.resource_url + "/files/tr.bin", "tr.bin")
            assert await tr.poll() == ac.TransferStatus.DONE
            assert await tr.transferred_bytes == 1000 and not await tr.is_running
            assert tr.resource_url in [t.resource_url for t in await client.get_transfers()]
            pytest.importorskip("uftpcore.server")
            await home.upload(str(src), "aio-uftp.bin", protocol="UFTP")
            await home.download("aio-uftp.bin", str(tmp_path / "b.bin"), protocol="UFTP")
            assert (tmp_path / "b.bin").read_bytes() == src.read_bytes()
            home._sync_twin().close()

    run(main())


def test_registry_and_workflows(site, transport_factory):
    async def main():
        registry = ac.Registry(transport_factory(), site.registry_url)
        assert site.site_name in await registry.site_urls
        client = await registry.site(site.site_name)
        await client.assert_authentication()
        wfs = await registry.workflow_service()
        await wfs.assert_authentication()
        assert (await wfs.access_info)["role"]["selected"] == "user"
        wf = await wfs.new_workflow(WORKFLOW)
        assert await wf.poll(ac.WorkflowStatus.HELD, timeout=60) == ac.WorkflowStatus.HELD
        assert await wf.is_held and await wf.is_running
        params = await wf.parameters
        params["COUNTER"] = "5"
        await wf.resume(params)
        assert await wf.poll(timeout=60) == ac.WorkflowStatus.SUCCESSFUL
        assert (await wf.parameters)["COUNTER"] == "5"
        assert len(await wf.get_jobs()) == 1
        out = await wf.stat("wf:d1/out")
        assert len(await out.read()) > 0
        assert wf.resource_url in [w.resource_url for w in await wfs.get_workflows()]
        await registry.aclose()

    run(main())


def test_security_session_expiry(site, transport_factory):
    async def main():
        client = ac.Client(transport_factory(), site.core_url, cache_time=0)
        await client.properties
        assert client.transport.last_session_id
        site.expire_sessions()
        assert (await client.properties)["client"]["role"]["selected"] == "user"
        await client.aclose()

    run(main())
