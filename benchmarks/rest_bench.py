"""REST client benchmark: pyunicore_fast against PyUNICORE 2.0.2 on the same embedded site.

    .venv/bin/python benchmarks/rest_bench.py [--jobs 100] [--files 1000] [--size 1G] [--tls]

In one run, against one ``EmbeddedSite``:
  * submit N jobs ({"Executable": "true"}) and poll every one to completion,
  * list a storage directory of M files (best of 3),
  * download a file of SIZE bytes over HTTP (both clients) and over UFTP (pyunicore_fast;
    PyUNICORE has no storage UFTP download), compared with uftpcore's own rate on the same file.
Prints seconds and ratios (PyUNICORE time / pyunicore_fast time: > 1 means we are faster).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import make_file  # noqa: E402

import pyunicore_fast.client as fast_client  # noqa: E402
import pyunicore_fast.credentials as fast_credentials  # noqa: E402
import uftpcore  # noqa: E402
from pyunicore_fast.testing import EmbeddedSite  # noqa: E402


def _clients(site):
    out = {"pyunicore_fast": fast_client.Client(
        fast_client.Transport(fast_credentials.UsernamePassword("demouser", "test123")), site.core_url)}
    try:
        import pyunicore.client as pu_client
        import pyunicore.credentials as pu_credentials

        out["pyunicore"] = pu_client.Client(
            pu_client.Transport(pu_credentials.UsernamePassword("demouser", "test123")), site.core_url)
    except ImportError:
        print("PyUNICORE is not installed: pip install pyunicore==2.0.2", file=sys.stderr)
    return out


def jobs_bench(client, n: int) -> float:
    t0 = time.perf_counter()
    jobs = [client.new_job({"Executable": "true"}) for _ in range(n)]
    for job in jobs:
        job.poll()
    return time.perf_counter() - t0


def home_storage(client):
    for s in client.get_storages():
        if s.resource_url.rstrip("/").endswith("HOME"):
            return s
    return client.get_storages()[0]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=100)
    ap.add_argument("--files", type=int, default=1000)
    ap.add_argument("--size", default="1G")
    ap.add_argument("--tls", action="store_true", help="HTTPS site (PyUNICORE then pays a TLS handshake per call)")
    args = ap.parse_args()
    from uftpcore.__main__ import _parse_size

    size = _parse_size(args.size)
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(dir="/dev/shm" if os.path.isdir("/dev/shm") else None) as tmp, \
            EmbeddedSite(tls=args.tls) as site:
        home = site.home_dir("demouser")
        os.makedirs(os.path.join(home, "listing"))
        for i in range(args.files):
            with open(os.path.join(home, "listing", f"file{i:05d}.dat"), "wb") as f:
                f.write(b"x")
        make_file(os.path.join(home, "big.bin"), size)
        for name, client in _clients(site).items():
            r = results.setdefault(name, {})
            r["jobs_s"] = jobs_bench(client, args.jobs)
            t0 = time.perf_counter()
            listed = client.get_jobs()
            statuses = [j.properties["status"] for j in listed]
            r["job_props_s"] = time.perf_counter() - t0
            assert len(statuses) >= args.jobs, len(statuses)
            storage = home_storage(client)
            best = float("inf")
            for _ in range(3):
                t0 = time.perf_counter()
                entries = storage.listdir("listing")
                best = min(best, time.perf_counter() - t0)
            assert len(entries) == args.files, len(entries)
            r["listing_s"] = best
            out = os.path.join(tmp, f"{name}.bin")
            t0 = time.perf_counter()
            storage.stat("big.bin").download(out)
            r["http_download_s"] = time.perf_counter() - t0
            assert os.path.getsize(out) == size
            os.unlink(out)
            if name == "pyunicore_fast":
                t0 = time.perf_counter()
                storage.download("big.bin", out, protocol="UFTP")
                r["uftp_download_s"] = time.perf_counter() - t0
                assert os.path.getsize(out) == size
                os.unlink(out)
        ticket = uftpcore.authenticate(site.auth_url, username="demouser", password="test123", base_dir=home,
                                       verify=site.cert_file if args.tls else None)
        with uftpcore.connect(ticket) as s:
            out = os.path.join(tmp, "direct.bin")
            t0 = time.perf_counter()
            s.download("big.bin", out)
            results["uftpcore"] = {"uftp_download_s": time.perf_counter() - t0}
    mib = size / (1 << 20)
    f = results["pyunicore_fast"]
    print(f"site: {'https' if args.tls else 'http'}; {args.jobs} jobs, {args.files}-file listing, {mib:.0f} MiB download")
    print(f"{'':32}{'pyunicore_fast':>16}{'PyUNICORE 2.0.2':>18}{'ratio':>8}")
    p = results.get("pyunicore", {})
    for key, label in (("jobs_s", f"{args.jobs} jobs submit+poll (s)"),
                       ("job_props_s", f"list {args.jobs} jobs + properties (s)"),
                       ("listing_s", f"listdir {args.files} files (s)"),
                       ("http_download_s", "HTTP download (s)")):
        pv = p.get(key)
        ratio = f"{pv / f[key]:.1f}x" if pv else "-"
        print(f"{label:32}{f[key]:16.3f}{(f'{pv:.3f}' if pv else '-'):>18}{ratio:>8}")
    print(f"{'UFTP storage download (s)':32}{f['uftp_download_s']:16.3f}{'-':>18}")
    print(f"UFTP storage download {mib / f['uftp_download_s']:.0f} MiB/s vs uftpcore direct "
          f"{mib / results['uftpcore']['uftp_download_s']:.0f} MiB/s "
          f"({results['uftpcore']['uftp_download_s'] / f['uftp_download_s']:.2f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
