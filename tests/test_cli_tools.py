"""``serve``, ``bench``, ``demo`` and ``mount`` through the command line."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time

import pytest

from .cli_support import (
    CLI,
    Served,
    assert_fails,
    check_types,
    clean_env,
    json_out,
    ok,
    run_cli,
    user_env,
)

SMALL_BENCH = ["--size", "1M", "--small-files", "5", "--mlst", "5"]



pytest_plugins = ["tests.cli_fixtures"]  # fixtures: cli_home, cli_site

def _port_open(url: str) -> bool:
    host, port = url.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=1):
            return True
    except OSError:
        return False


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_serve_runs_until_signalled(cli_home, sig):
    served = Served(cli_home).__enter__()
    info = served.info
    check_types(info, {"schema": int, "command": str, "url": str, "core_url": str, "registry_url": str,
                       "workflows_url": str, "auth_url": str, "uftpd": str, "users": dict, "tokens": dict,
                       "root_dir": str})
    assert info["users"]["demouser"] == "test123" and os.path.isdir(info["root_dir"])
    assert _port_open(info["url"])
    assert served.stop(sig) == 0
    assert not _port_open(info["url"]) and not os.path.exists(info["root_dir"])


def test_serve_banner(cli_home):
    proc = subprocess.Popen([*CLI, "serve"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=clean_env(cli_home), stdin=subprocess.DEVNULL)
    try:
        lines = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any("password=" in ln for ln in lines):
            lines.append(proc.stdout.readline())
        text = "".join(lines)
        assert "UFTP auth" in text and "demouser/test123" in text and "registry=" in text
    finally:
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0 and "Traceback" not in err and "stopped" in err
    assert_fails(run_cli("serve", "--user", "nopassword", home=cli_home), 2, "NAME:PASSWORD")


def test_bench_embedded_json_and_chart(cli_home, tmp_path):
    chart = tmp_path / "bench.png"
    doc = json_out(run_cli("bench", *SMALL_BENCH, "-q", "--json", "--chart", str(chart), home=cli_home,
                           timeout=120))
    check_types(doc, {"schema": int, "command": str, "site": str, "embedded": bool, "implementation": str,
                      "size": int, "runs": int, "link": (dict, None), "machine": str, "results": list})
    assert doc["embedded"] and doc["size"] == 1 << 20 and doc["link"] is None
    rows = {r["name"]: r for r in doc["results"]}
    for r in doc["results"]:
        check_types(r, {"name": str, "op": str, "client": str, "sessions": int, "streams": int,
                        "encryption": (str, None), "compression": bool, "bytes": int, "files": int,
                        "seconds": (float, None), "rate": (float, None), "rate_mib_s": (float, None),
                        "latency_ms": (float, None), "skipped": (str, None), "sessions_used": (int, None),
                        "streams_used": (int, None), "files_per_s": (float, None)})
        assert not (r["skipped"] or "").startswith("error"), r
    for name in ("upload", "download", "download, 2 streams", "download, 4 sessions", "download, encrypted (AES)",
                 "download, compressed", "download, byte range (-B)", "upload 5 x 1024 B files",
                 "download 5 x 1024 B files", "MLST round trip (median)"):
        assert name in rows, name
        assert rows[name]["seconds"] or rows[name]["latency_ms"], rows[name]
    assert rows["download"]["rate_mib_s"] > 0 and rows["MLST round trip (median)"]["latency_ms"] > 0
    assert any(r["client"] == "pyunicore" for r in doc["results"])  # PyUNICORE is a dev dependency
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bench_against_a_given_site_through_the_link_emulator(cli_home, cli_site):
    res = ok(run_cli("bench", *SMALL_BENCH, "--streams", "1,2", "--sessions", "1,2", "--no-compare",
                     "--no-compression", "--rtt-ms", "2", "--window-kib", "512", "-u", "demouser:test123",
                     cli_site.uftp(), home=cli_home, timeout=120))
    table = res.stdout
    assert "emulated link: RTT 2.0 ms" in table and "download, 2 sessions" in table and "MiB/s" in table
    assert "PyUNICORE" not in table and "compressed" not in table
    assert os.listdir(cli_site.home_dir) == [] or not any(n.startswith("pyunicore-fast-bench") for n in
                                                      os.listdir(cli_site.home_dir))  # cleaned up


def test_demo_small(cli_home, tmp_path):
    res = run_cli("demo", "--size", "3M", "--bench-size", "1M", "--json", "--dir", str(tmp_path), home=cli_home,
                  timeout=180)
    doc = json_out(res)
    check_types(doc, {"schema": int, "command": str, "ok": bool, "size": int, "checks": list, "bench": (dict, None)})
    checks = {c["name"]: c for c in doc["checks"]}
    assert doc["ok"] is True
    for name in ("stage in (UFTP Auth endpoint)", "stage out (UFTP storage endpoint)", "server-side SHA-256 (HASH)",
                 "SHA-256 of the staged-out copy"):
        assert checks[name]["status"] == "passed", checks[name]
    fsspec_check = checks["read back through fsspec (uftp://)"]
    assert fsspec_check["status"] in ("passed", "skipped"), fsspec_check
    fuse = checks["read back through a FUSE mount"]
    assert fuse["status"] in ("passed", "skipped"), fuse
    assert doc["bench"]["results"] and os.listdir(tmp_path) == []
    text = ok(run_cli("demo", "--size", "1M", "--no-bench", "--no-fuse", "-q", home=cli_home, timeout=120)).stdout
    assert "all verifications passed" in text and "stage in" in text
    assert_fails(run_cli("demo", "--size", "0", home=cli_home), 2, "--size")


def test_mount_errors(cli_home, cli_site, tmp_path):
    assert_fails(run_cli("mount", "-u", "demouser:test123", cli_site.uftp("/"), str(tmp_path / "missing"),
                         home=cli_home), 2, "not a directory")
    assert_fails(run_cli("mount", "-u", "demouser:test123", "/local/path", str(tmp_path), home=cli_home), 2,
                 "not a UFTP URL")
    assert_fails(run_cli("mount", "-u", "demouser:wrong", cli_site.uftp(cli_site.home_dir + "/"), str(tmp_path),
                         home=cli_home), 1, "403")


def test_mount_read_unmount(cli_home, cli_site, tmp_path):
    from pyunicore_fast.cli.mount import fuse_usable

    usable, why = fuse_usable()
    if not usable:
        pytest.skip(why)
    from pyunicore_fast.uftp import uftpfuse

    with open(os.path.join(cli_site.home_dir, "mounted.txt"), "w") as f:
        f.write("through FUSE")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    proc = subprocess.Popen([*CLI, "mount", "-f", "-r", cli_site.uftp(cli_site.home_dir + "/"), str(mnt)],
                            env=user_env(cli_home), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while not uftpfuse.is_mounted(str(mnt)):
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline, "mount did not come up"
            time.sleep(0.1)
        assert (mnt / "mounted.txt").read_text() == "through FUSE"
        ok(run_cli("mount", "-U", str(mnt), home=cli_home))
        proc.wait(20)
        assert proc.returncode == 0
    finally:
        if uftpfuse.is_mounted(str(mnt)):
            uftpfuse.unmount(str(mnt), lazy=True)
        if proc.poll() is None:
            proc.kill()
        _out, err = proc.communicate(timeout=10)
    assert "Traceback" not in err
    assert_fails(run_cli("mount", "-U", str(mnt), home=cli_home), 1, "cannot unmount")
    json.dumps(cli_site.info)  # the site is still alive for the module's other tests
