"""Every code example of PyUNICORE's README, run against the embedded site with ``pyunicore``
replaced by ``pyunicore_fast``.

The examples are kept here *verbatim* (``README_*`` strings); ``adapt()`` then applies only
(a) the package rename, (b) the emulator's URLs instead of ``localhost:8080``/``:9000`` and
(c) the README's typos, each listed in ``TYPO_FIXES`` with the reason.  When the shared
README is available, the test also checks that the strings below really are its text.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import time

import pytest

testing = pytest.importorskip("pyunicore_fast.testing")

pytestmark = pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")

README_PATH = "/work/shared/docs/pyunicore-readme.md"

# -- the README's examples, verbatim ------------------------------------------------------------------
README_CLIENT = '''\
import pyunicore.client as uc_client
import pyunicore.credentials as uc_credentials
import json

base_url = "https://localhost:8080/DEMO-SITE/rest/core"

# authenticate with username/password
credential = uc_credentials.UsernamePassword("demouser", "test123")
transport  = uc_client.Transport(credential)

client = uc_client.Client(transport, base_url)
print(json.dumps(client.properties, indent = 2))'''

README_JOB = '''\
my_job = {'Executable': 'date'}

job = uc_client.new_job(job_description=my_job, inputs=[])
print(json.dumps(job.properties, indent = 2))

job.poll() # wait for job to finish

work_dir = job.working_dir
print(json.dumps(work_dir.properties, indent = 2))

stdout = work_dir.stat("/stdout")
print(json.dumps(stdout.properties, indent = 2))

content = stdout.raw().read()
print(content)'''

README_REGISTRY = '''\
registry_url = "https://localhost:8080/REGISTRY/rest/registries/default_registry"

# authenticate with username/password
credential = uc_credentials.UsernamePassword("demouser", "test123")
transport = uc_client.Transport(credential)

r = uc_client.Registry(tr, registry_url)
print(r.site_urls)'''

README_PYFILESYSTEM = '''\
from fs import open_fs
fs_url = "uftp://demouser:test123@localhost:9000/rest/auth/TEST:/data"
uftp_fs = open_fs(fs_url)'''

README_FUSE = '''\
import pyunicore.client as uc_client
import pyunicore.credentials as uc_credentials
import pyunicore.uftp as uc_uftp
import pyunicore.uftpfuse as uc_fuse

_auth = "https://localhost:9000/rest/auth/TEST"
_base_dir = "/opt/shared-data"
_local_mount_dir = "/tmp/mount"

# auhenticate
cred = uc_credentials.UsernamePassword("demouser", "test123")
uftp = uc_uftp.UFTP(uc_client.Transport(cred), _auth, _base_dir)
_host, _port, _password  = uftp.authenticate()

# run the fuse driver
fuse = uc_fuse.FUSE(
    uc_fuse.UFTPDriver(_host, _port, _password), _local_mount_dir,
    foreground=False, nothreads=True)'''

README_HELPERS_TRANSPORT = '''\
import json
from pyunicore import helpers

authentication = helpers.UserAuthentication(user="demouser", password="test123")

transport = helpers.create_transport(authentication )
print(json.dumps(transport.properties, indent=2))
'''

README_HELPERS_REGISTRY = '''\
import json
from pyunicore import helpers


registry_url = "https://localhost:8080/REGISTRY/rest/registries/default_registry"

authentication = helpers.UserAuthentication(user="demouser", password="test123")

client = helpers.connect_to_registry(
    registry_url=registry_url,
    authentication=authentication,
)
print(json.dumps(client.properties, indent=2))
'''

README_HELPERS_SITE_FROM_REGISTRY = '''\
import json
from pyunicore import helpers

registry_url = "https://localhost:8080/REGISTRY/rest/registries/default_registry"
site = "DEMO-SITE"

authentication = helpers.UserAuthentication(user="demouser", password="test123")

client = helpers.connect_to_site_from_registry(
    registry_url=registry_url,
    site_name=site,
    authentication=authentication,
)
print(json.dumps(client.properties, indent=2))
'''

README_HELPERS_SITE = '''\
import json
from pyunicore import helpers

site_url = "https://localhost:8080/DEMO-SITE/rest/core"

authentication = helpers.UserAuthentication(user="demouser", password="test123")

client = helpers.connect_to_site(
    site_api_url=site_url ,
    authentication=authentication,
)
print(json.dumps(client.properties, indent=2))
'''

README_HELPERS_JOB = '''\
from pyunicore import helpers

client = ...

resources = helpers.Resources(nodes=4)
job = helpers.JobDescription(
    executable="ls",
    project="demoproject",
    resources=resources,
)

client.new_job(job.to_dict())'''

ALL_FORMS = [README_CLIENT, README_JOB, README_REGISTRY, README_PYFILESYSTEM, README_FUSE,
             README_HELPERS_TRANSPORT, README_HELPERS_REGISTRY, README_HELPERS_SITE_FROM_REGISTRY,
             README_HELPERS_SITE, README_HELPERS_JOB]

#: (wrong, right, why) - the only edits besides the package rename and the URLs.
TYPO_FIXES = [
    ("job = uc_client.new_job(", "job = client.new_job(", "new_job is a Client method, not a module function"),
    ("uc_client.Registry(tr, ", "uc_client.Registry(transport, ", "'tr' is never defined; 'transport' is"),
    ("import pyunicore_fast.uftpfuse as", "import pyunicore_fast.uftp.uftpfuse as",
     "the FUSE driver lives in the uftp package"),
    ("client = ...\n", "", "placeholder: the test provides a connected client"),
]


def adapt(code: str, urls: dict[str, str]) -> str:
    """Rename the package, point URLs at the emulator, fix the listed typos."""
    code = re.sub(r"\bpyunicore\b", "pyunicore_fast", code)
    for old, new in urls.items():
        code = code.replace(old, new)
    for wrong, right, _why in TYPO_FIXES:
        code = code.replace(wrong, right)
    return code


def run_form(code: str, namespace: dict, urls: dict[str, str]) -> dict:
    exec(compile(adapt(code, urls), "<README example>", "exec"), namespace)  # noqa: S102 - the point of the test
    return namespace


def _normalise(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def test_forms_are_the_readme_text():
    if not os.path.exists(README_PATH):
        pytest.skip("shared README not available")
    with open(README_PATH, encoding="utf-8") as f:
        readme = f.read()
    dedented = _normalise(readme + "\n" + "\n".join(textwrap.dedent(b) for b in re.split(r"\n(?=\S)", readme)))
    for form in ALL_FORMS:
        assert _normalise(form) in dedented, form[:60]


# -- the emulator and the URL map -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def site():
    with testing.EmbeddedSite(tls=True) as s:
        yield s


@pytest.fixture
def urls(site, tmp_path):
    data_dir = os.path.join(site.home_dir("demouser"), "shared-data")
    os.makedirs(data_dir, exist_ok=True)
    host_port = site.url.split("://", 1)[1]
    return {
        "https://localhost:8080/DEMO-SITE/rest/core": site.core_url,
        "https://localhost:8080/REGISTRY/rest/registries/default_registry": site.registry_url,
        "https://localhost:9000/rest/auth/TEST": site.auth_url,
        "localhost:9000/rest/auth/TEST:/data": f"{host_port}/{site.site_name}/rest/auth/TEST:{data_dir}",
        "/opt/shared-data": data_dir,
        "/tmp/mount": str(tmp_path / "mount"),
    }


# -- the examples ----------------------------------------------------------------------------------------
def test_creating_a_client(urls, capsys):
    ns = run_form(README_CLIENT, {}, urls)
    out = json.loads(capsys.readouterr().out)
    assert out["client"]["role"]["selected"] == "user"
    assert type(ns["client"]).__module__ == "pyunicore_fast.client"


def test_run_a_job_and_read_result_files(urls, capsys):
    ns = run_form(README_CLIENT, {}, urls)
    capsys.readouterr()
    t0 = time.monotonic()
    run_form(README_JOB, ns, urls)
    assert time.monotonic() - t0 < 10
    printed = capsys.readouterr().out
    assert ns["job"].properties["status"] == "SUCCESSFUL"
    assert isinstance(ns["content"], bytes) and len(ns["content"]) > 0
    assert str(ns["content"]) in printed


def test_registry(urls, capsys, site):
    ns = run_form(README_CLIENT, {}, urls)
    capsys.readouterr()
    run_form(README_REGISTRY, ns, urls)
    assert site.site_name in ns["r"].site_urls
    assert site.core_url in capsys.readouterr().out


def test_uftp_pyfilesystem_url(urls):
    fs = pytest.importorskip("fs", reason="PyFilesystem2 ('fs' extra) is not installed")
    try:
        import fs.opener

        fs.opener.registry.get_opener("uftp")
    except Exception as exc:  # noqa: BLE001 - opener missing or not registered
        pytest.skip(f"no 'uftp' PyFilesystem opener registered: {exc}")
    ns = run_form(README_PYFILESYSTEM, {}, urls)
    assert ns["uftp_fs"].listdir("/") is not None


def test_uftp_fuse_authentication_part(urls):
    """The README's FUSE example up to the mount: authenticate with the README UFTP form."""
    code = README_FUSE.split("# run the fuse driver")[0].replace("import pyunicore.uftpfuse as uc_fuse\n", "")
    ns = run_form(code, {}, urls)
    host, port, password = ns["_host"], ns["_port"], ns["_password"]
    import uftpcore

    with uftpcore.connect(host, port, password) as session:
        session.listdir(".")


def test_uftp_fuse_mount(urls, tmp_path):
    """The whole FUSE example, in a child process (foreground=False daemonises)."""
    try:
        import pyunicore_fast.uftp.uftpfuse  # noqa: F401
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"pyunicore_fast.uftp.uftpfuse not usable here: {exc}")
    if not os.path.exists("/dev/fuse") or not shutil.which("fusermount") and not shutil.which("fusermount3"):
        pytest.skip("no FUSE on this machine")
    mount = urls["/tmp/mount"]
    os.makedirs(mount, exist_ok=True)
    with open(os.path.join(urls["/opt/shared-data"], "readme-fuse.txt"), "w") as f:
        f.write("mounted")
    code = adapt(README_FUSE, urls)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    proc = subprocess.run([sys.executable, "-c", code], env=env, timeout=60, capture_output=True, text=True,
                          check=False)
    try:
        assert proc.returncode == 0, proc.stderr
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not os.path.exists(os.path.join(mount, "readme-fuse.txt")):
            time.sleep(0.1)
        with open(os.path.join(mount, "readme-fuse.txt")) as f:
            assert f.read() == "mounted"
    finally:
        tool = shutil.which("fusermount3") or shutil.which("fusermount")
        subprocess.run([tool, "-u", mount], capture_output=True, timeout=30, check=False)


def test_helpers_create_transport(urls, capsys):
    ns = run_form(README_HELPERS_TRANSPORT, {}, urls)
    out = json.loads(capsys.readouterr().out)
    assert out["credential"] == "UsernamePassword" and "test123" not in json.dumps(out)
    assert type(ns["transport"]).__name__ == "Transport"


def test_helpers_connect_to_registry(urls, capsys):
    ns = run_form(README_HELPERS_REGISTRY, {}, urls)
    out = json.loads(capsys.readouterr().out)
    assert any(e["type"] == "CoreServices" for e in out["entries"])
    assert type(ns["client"]).__name__ == "Registry"


def test_helpers_connect_to_site_from_registry(urls, capsys):
    run_form(README_HELPERS_SITE_FROM_REGISTRY, {}, urls)
    assert json.loads(capsys.readouterr().out)["client"]["xlogin"]["UID"] == "demouser"


def test_helpers_connect_to_site(urls, capsys):
    run_form(README_HELPERS_SITE, {}, urls)
    assert json.loads(capsys.readouterr().out)["client"]["role"]["selected"] == "user"


def test_helpers_defining_a_job(urls, capsys):
    ns = run_form(README_HELPERS_SITE, {}, urls)
    capsys.readouterr()
    run_form(README_HELPERS_JOB, ns, urls)
    jobs = ns["client"].get_jobs()
    assert jobs
    newest = jobs[-1]
    newest.poll(timeout=30)
    assert newest.properties["status"] == "SUCCESSFUL"
