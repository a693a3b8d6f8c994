"""PyUNICORE's ``unicore`` commands through ``pyunicore-fast``, against ``pyunicore-fast serve``.

Same options and configuration file as PyUNICORE 2.0.2 (``~/.ucc/properties`` or ``-c``).
"""

from __future__ import annotations

import json
import os

import pytest

from .cli_support import assert_fails, ok, run_cli


def read_file(path: str, binary: bool = False) -> str | bytes:
    with open(path, "rb" if binary else "r") as f:
        return f.read()

pytest_plugins = ["tests.cli_fixtures"]  # fixtures: cli_home, cli_site

@pytest.fixture(scope="module")
def props(cli_site, tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("ucc") / "properties"
    path.write_text(f"# written by the test\nregistry={cli_site.info['registry_url']}\n"
                    "username=demouser\npassword=test123\ncontact-registry=true\n")
    return str(path)


def cli(home: str, props: str, *args: str):
    return run_cli(args[0], "-c", props, *args[1:], home=home)


def test_exec_waits_and_prints_output(cli_home, props):
    out = ok(cli(cli_home, props, "exec", "echo", "hello", "from", "exec")).stdout
    assert "*** Command output" in out and "hello from exec" in out and "*** End of error output." in out


def test_exec_dry_run_and_asynchronous(cli_home, props):
    res = ok(cli(cli_home, props, "exec", "-d", "-v", "-T", "a,b", "/bin/true"))
    assert json.loads(res.stdout[res.stdout.index("{"):res.stdout.rindex("}") + 1])["Tags"] == ["a", "b"]
    url = ok(cli(cli_home, props, "exec", "-a", "-T", "async-test", "/bin/true")).stdout.strip().splitlines()[-1]
    assert "/rest/core/jobs/" in url


def test_run_job_files(cli_home, props, tmp_path):
    job = tmp_path / "job.json"
    job.write_text(json.dumps({"Executable": "echo", "Arguments": ["from", "run"]}))
    assert "from run" in ok(cli(cli_home, props, "run", str(job))).stdout
    assert ok(cli(cli_home, props, "run", "-d", str(job))).stdout == ""
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert_fails(cli(cli_home, props, "run", str(bad)), 2, "not valid JSON")


def test_job_lifecycle_commands(cli_home, props, cli_site):
    url = ok(cli(cli_home, props, "exec", "-a", "-T", "lifecycle", "sleep", "0.2")).stdout.strip().splitlines()[-1]
    ok(cli(cli_home, props, "job-status", "-w", "SUCCESSFUL", "-t", "30", url))
    status = ok(cli(cli_home, props, "job-status", "-l", url)).stdout
    assert url in status and "SUCCESSFUL" in status and "exit code: 0" in status and "Working directory" in status
    assert "Log:" in ok(cli(cli_home, props, "job-status", "-a", url)).stdout
    listing = ok(cli(cli_home, props, "list-jobs", "-T", "lifecycle")).stdout.split()
    assert url in listing
    long = ok(cli(cli_home, props, "list-jobs", "-l")).stdout
    assert "Submitted" in long and url in long
    ok(cli(cli_home, props, "cancel-job", url))
    assert_fails(cli(cli_home, props, "list-jobs", "-s", "NO-SUCH-SITE"), 2, "not found in registry")


def test_info_issue_token_and_rest(cli_home, props, cli_site):
    info = ok(cli(cli_home, props, "info")).stdout
    assert cli_site.core_url in info and "UNICORE/X base" in info and "role='user'" in info
    assert "mount point" in ok(cli(cli_home, props, "info", cli_site.core_url + "/storages/HOME")).stdout
    out = ok(cli(cli_home, props, "issue-token", "-I", "-l", "600", cli_site.core_url)).stdout.splitlines()
    assert out[0].startswith("Subject:") and out[-1].count(".") == 2  # a JWT
    assert ok(cli(cli_home, props, "issue-token", "-s", cli_site.info["core_url"].split("/")[-3])).stdout.count(".") == 2
    body = json.loads(ok(cli(cli_home, props, "rest", "GET", cli_site.core_url + "/storages")).stdout)
    assert any(u.endswith("/HOME") for u in body["storages"])
    headers = ok(cli(cli_home, props, "rest", "g", "-i", cli_site.core_url)).stdout
    assert headers.startswith("HTTP/1.1 200")
    assert_fails(cli(cli_home, props, "rest", "PATCH", cli_site.core_url), 2, "Unsupported operation")
    assert_fails(cli(cli_home, props, "rest", "GET", cli_site.core_url + "/no-such-thing"), 1, "404")


def test_rest_storage_ls_cp_cat(cli_home, props, cli_site, tmp_path):
    files = cli_site.core_url + "/storages/HOME/files"
    src = tmp_path / "up.txt"
    src.write_text("uploaded through REST\n")
    ok(cli(cli_home, props, "cp", str(src), files + "/rest-dir/"))  # PyUNICORE 1.3.4+ silently skipped this
    assert read_file(os.path.join(cli_site.home_dir, "rest-dir", "up.txt")) == "uploaded through REST\n"
    assert "up.txt" in ok(cli(cli_home, props, "ls", files + "/rest-dir")).stdout
    long = ok(cli(cli_home, props, "ls", "-l", files + "/rest-dir/up.txt")).stdout
    assert long.startswith("-") and "up.txt" in long
    assert ok(cli(cli_home, props, "cat", files + "/rest-dir/up.txt")).stdout == "uploaded through REST\n"
    assert ok(cli(cli_home, props, "cp", files + "/rest-dir/up.txt", "-")).stdout == "uploaded through REST\n"
    out_dir = tmp_path / "down"
    out_dir.mkdir()
    ok(cli(cli_home, props, "cp", files + "/rest-dir/*.txt", str(out_dir)))
    assert (out_dir / "up.txt").read_text() == "uploaded through REST\n"
    listing = json.loads(ok(cli(cli_home, props, "ls", "--json", files + "/rest-dir")).stdout)
    assert listing["listings"][0]["entries"][0]["name"] == "up.txt"
    assert_fails(cli(cli_home, props, "cp", files + "/rest-dir/nothing-*.bin", str(out_dir)), 1, "no such file")


def test_rest_server_to_server_with_extra_parameters(cli_home, props, cli_site):
    with open(os.path.join(cli_site.home_dir, "s2s.txt"), "w") as f:
        f.write("server to server")
    src = cli_site.core_url + "/storages/HOME/files/s2s.txt"
    target = cli_site.core_url + "/storages/SHARED/files/s2s-copy.txt"
    ok(cli(cli_home, props, "cp", "-E", "a=b,c=d", src, target))  # -E k=v: PyUNICORE's extra parameters
    assert ok(cli(cli_home, props, "cat", target)).stdout == "server to server"
    url = ok(cli(cli_home, props, "cp", "-a", src, target)).stdout.strip()
    assert "/rest/core/transfers/" in url
    assert_fails(cli(cli_home, props, "cp", "-E", "novalue", src, target), 2)
