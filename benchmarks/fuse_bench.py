"""FUSE benchmark (issue 5 §6): our UFTP mount against PyUNICORE 1.3.7's, same server, same run.

    .venv/bin/python benchmarks/fuse_bench.py [--size 1G] [--files 1000] [--random 5000] [--runs 3]
                                              [--pyunicore-python /work/bench-venv/bin/python] [--json out.json]

Against one ``python -m uftpcore.server`` process on loopback (persistent secret per mount):

* ``dd if=<mount>/big of=/dev/null bs=1M``: sequential read throughput of a ``--size`` file;
* ``ls -l`` of a directory with ``--files`` files (seconds, fresh mount: nothing cached);
* random 4 KiB ``pread``s at page-aligned offsets: cold (fresh mount) and warm (same offsets
  again), ops/s, every result compared with the source file;
* ``dd if=/dev/zero of=<mount>/w bs=1M count=256 conv=fsync``: sequential write throughput;
* 8 ``dd`` processes at once, each reading its own file of ``--size``/8: aggregate MB/s.

Every measurement uses a fresh mount (so neither the kernel page cache nor a driver cache
helps), with the server's copy of the file already in the server's page cache.  Each number
is the median of ``--runs``.  PyUNICORE's driver (``unicore-fusedriver`` from
``pip install pyunicore==1.3.7 fusepy`` in a separate venv) is measured when
``--pyunicore-python`` can import it; ratios are ours / theirs.  Absolute numbers on a shared
2-CPU machine are noisy; read the ratios.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

from harness import free_port, make_file, new_secret

MiB = 1 << 20
DEFAULT_PYUNICORE_PYTHON = "/work/bench-venv/bin/python"


def parse_size(text: str) -> int:
    m = re.fullmatch(r"(\d+)([KMG]?)", text.upper())
    if not m:
        raise argparse.ArgumentTypeError(f"bad size {text!r}")
    return int(m.group(1)) * {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}[m.group(2)]


class Server:
    """``python -m uftpcore.server`` with a per-user limit high enough for leaky drivers."""

    def __init__(self, root: str):
        self.root = root
        self.port = free_port()
        self.cmd_port = free_port()
        #: where drivers connect (the link emulator's port when one is in front)
        self.mount_port = self.port
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> Server:  # noqa: PYI034 - typing.Self needs Python 3.11
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "uftpcore.server", "--host", "127.0.0.1", "--port", str(self.port),
             "--cmd-port", str(self.cmd_port), "--root", self.root, "--max-connections", "100000"],
            cwd=ROOT, env=dict(os.environ, PYTHONPATH=ROOT), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("benchmark server did not start")

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)

    def job(self, base_dir: str) -> str:
        secret = new_secret()
        lines = ["request-type=uftp-transfer-request", "client-ip=127.0.0.1", "user=bench", f"secret={secret}",
                 "persistent=true", f"file={base_dir.rstrip('/')}/", "streams=1", "compress=false", "END", ""]
        with socket.create_connection(("127.0.0.1", self.cmd_port), timeout=10) as s:
            s.sendall("\n".join(lines).encode())
            reply = s.makefile("rb").read().decode().strip()
        if not reply.startswith("OK::"):
            raise RuntimeError(f"job refused: {reply}")
        return secret


@dataclass
class Driver:
    name: str
    command: list[str]  # + ["127.0.0.1:PORT", mountpoint]
    env: dict[str, str] = field(default_factory=dict)


def mounted(path: str) -> bool:
    target = os.path.realpath(path)
    with open("/proc/self/mountinfo") as f:
        return any(len(ln.split()) > 4 and ln.split()[4] == target and " - fuse" in ln for ln in f)


def unmount(path: str) -> None:
    tool = shutil.which("fusermount3") or shutil.which("fusermount")
    if tool and mounted(path) and subprocess.run([tool, "-u", path], capture_output=True, check=False).returncode:
        subprocess.run([tool, "-u", "-z", path], capture_output=True, check=False)


class Mount:
    def __init__(self, driver: Driver, server: Server, base_dir: str, mountpoint: str):
        self.driver = driver
        self.server = server
        self.base_dir = base_dir
        self.path = mountpoint
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> str:
        os.makedirs(self.path, exist_ok=True)
        secret = self.server.job(self.base_dir)
        env = dict(os.environ, UFTP_PASSWORD=secret, **self.driver.env)
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(self.driver.command + [f"127.0.0.1:{self.server.mount_port}", self.path], env=env,
                                     stdout=self.log, stderr=subprocess.STDOUT, cwd=ROOT)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if mounted(self.path):
                return self.path
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        self.log.seek(0)
        raise RuntimeError(f"{self.driver.name} did not mount: {self.log.read().decode(errors='replace')}")

    def __exit__(self, *exc: object) -> None:
        unmount(self.path)
        if self.proc is not None:
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        unmount(self.path)


# ----------------------------------------------------------------------------------- measurements
def bench_dd(mnt: str, size: int) -> float:
    """MB/s of ``dd bs=1M`` reading the big file."""
    t0 = time.perf_counter()
    res = subprocess.run(["dd", f"if={mnt}/big.bin", "of=/dev/null", "bs=1M"], capture_output=True, text=True,
                         timeout=600, check=False)
    elapsed = time.perf_counter() - t0
    if res.returncode != 0:
        raise RuntimeError(res.stderr.strip())
    copied = int(res.stderr.split(" bytes", 1)[0].split("\n")[-1])
    if copied != size:
        raise RuntimeError(f"dd read {copied} of {size} bytes")
    return size / elapsed / 1e6


def bench_ls(mnt: str, files: int) -> float:
    """Seconds of ``ls -l`` of the directory of small files."""
    t0 = time.perf_counter()
    out = subprocess.run(["ls", "-l", f"{mnt}/many"], capture_output=True, text=True, timeout=600,
                         check=False).stdout
    elapsed = time.perf_counter() - t0
    count = sum(1 for ln in out.splitlines() if ln.startswith("-"))
    if count != files:
        raise RuntimeError(f"ls -l listed {count} of {files} files")
    return elapsed


def bench_random(mnt: str, src: str, offsets: list[int]) -> dict[str, Any]:
    """Cold then warm 4 KiB preads at ``offsets``; ops/s and how many results were wrong."""
    out: dict[str, Any] = {}
    sfd = os.open(src, os.O_RDONLY)
    fd = os.open(f"{mnt}/big.bin", os.O_RDONLY)
    try:
        expected = [os.pread(sfd, 4096, o) for o in offsets]
        for phase in ("cold", "warm"):
            t0 = time.perf_counter()
            got = []
            try:
                for o in offsets:
                    got.append(os.pread(fd, 4096, o))
            except OSError as exc:
                out[f"{phase}_error"] = str(exc)
            elapsed = time.perf_counter() - t0
            out[f"{phase}_ops"] = len(got) / elapsed if got else 0.0
            out[f"{phase}_wrong"] = sum(1 for g, e in zip(got, expected) if g != e) + len(offsets) - len(got)
    finally:
        os.close(fd)
        os.close(sfd)
    return out


def bench_parallel(mnt: str, size: int, n: int = 8) -> float:
    """Aggregate MB/s of ``n`` concurrent ``dd bs=1M`` readers, one file of ``size // n`` each."""
    t0 = time.perf_counter()
    procs = [subprocess.Popen(["dd", f"if={mnt}/par/p{i}.bin", "of=/dev/null", "bs=1M"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True) for i in range(n)]
    total = 0
    for p in procs:
        _, err = p.communicate(timeout=600)
        if p.returncode != 0:
            raise RuntimeError(err.strip())
        total += int(err.split(" bytes", 1)[0].split("\n")[-1])
    elapsed = time.perf_counter() - t0
    if total != n * (size // n):
        raise RuntimeError(f"parallel readers got {total} of {n * (size // n)} bytes")
    return total / elapsed / 1e6


def bench_write(mnt: str, base_dir: str, mib: int = 256) -> float:
    """MB/s of ``dd if=/dev/zero bs=1M count=N conv=fsync`` into the mount (size checked)."""
    target = f"{mnt}/written.bin"
    t0 = time.perf_counter()
    res = subprocess.run(["dd", "if=/dev/zero", f"of={target}", "bs=1M", f"count={mib}", "conv=fsync"],
                         capture_output=True, text=True, timeout=600, check=False)
    elapsed = time.perf_counter() - t0
    if res.returncode != 0:
        raise RuntimeError(res.stderr.strip().splitlines()[-1])
    on_server = os.path.getsize(os.path.join(base_dir, "written.bin"))
    os.unlink(os.path.join(base_dir, "written.bin"))
    if on_server != mib * MiB:
        raise RuntimeError(f"server file has {on_server} of {mib * MiB} bytes")
    return mib * MiB / elapsed / 1e6


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def run_driver(driver: Driver, server: Server, base: str, args: argparse.Namespace, offsets: list[int],
               scratch: str) -> dict[str, Any]:
    res: dict[str, Any] = {"driver": driver.name}

    def repeat(label: str, fn: Callable[[str], Any]) -> list[Any]:
        values = []
        for i in range(args.runs):
            try:
                with Mount(driver, server, base, os.path.join(scratch, f"{driver.name}-{label}-{i}")) as mnt:
                    values.append(fn(mnt))
            except Exception as exc:  # noqa: BLE001 - a driver that fails a test gets an error entry
                res[f"{label}_error"] = str(exc)[:300]
                break
        return values

    src = os.path.join(base, "big.bin")
    res["dd_MBps"] = median(repeat("dd", lambda m: bench_dd(m, args.size)))
    res["ls_s"] = median(repeat("ls", lambda m: bench_ls(m, args.files)))
    rnd = repeat("random", lambda m: bench_random(m, src, offsets))
    for key in ("cold_ops", "warm_ops"):
        res[f"random_{key}"] = median([r[key] for r in rnd])
    res["random_wrong"] = max((r["cold_wrong"] + r["warm_wrong"] for r in rnd), default=None)
    errors = [r[k] for r in rnd for k in ("cold_error", "warm_error") if k in r]
    if errors:
        res["random_error"] = errors[0]
    res["write_MBps"] = median(repeat("write", lambda m: bench_write(m, base)))
    res["par8_MBps"] = median(repeat("par8", lambda m: bench_parallel(m, args.size)))
    return res


def pyunicore_driver(python: str) -> Driver | None:
    if not os.path.exists(python):
        return None
    probe = subprocess.run([python, "-c", "import pyunicore.uftp.uftpfuse, fuse"], capture_output=True, text=True,
                           check=False)
    if probe.returncode != 0:
        print(f"# PyUNICORE driver not usable with {python}: {probe.stderr.strip()[-200:]}")
        return None
    return Driver("pyunicore-1.3.7", [python, "-m", "pyunicore.uftp.uftpfuse", "-f"])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=parse_size, default=parse_size("1G"))
    ap.add_argument("--files", type=int, default=1000)
    ap.add_argument("--random", type=int, default=5000, help="random 4 KiB reads per phase")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--dir", default=None, help="scratch directory (default: a temporary one)")
    ap.add_argument("--pyunicore-python", default=DEFAULT_PYUNICORE_PYTHON)
    ap.add_argument("--options", default="", help="-o options for our driver")
    ap.add_argument("--json", default=None)
    ap.add_argument("--rtt-ms", type=float, default=0.0,
                    help="put benchmarks/linkemu.py (RTT, window) between drivers and server: a WAN")
    ap.add_argument("--window", type=parse_size, default=parse_size("4M"), help="per-connection window with --rtt-ms")
    args = ap.parse_args()

    if not os.path.exists("/dev/fuse"):
        print("no /dev/fuse: cannot benchmark FUSE")
        return 1
    scratch = tempfile.mkdtemp(prefix="fuse-bench-", dir=args.dir)
    base = os.path.join(scratch, "data")
    os.makedirs(os.path.join(base, "many"))
    try:
        make_file(os.path.join(base, "big.bin"), args.size)
        os.makedirs(os.path.join(base, "par"))
        for i in range(8):
            make_file(os.path.join(base, "par", f"p{i}.bin"), args.size // 8)
        for i in range(args.files):
            with open(os.path.join(base, "many", f"f{i:05d}.dat"), "wb") as f:
                f.write(b"x" * (i % 100))
        with open(os.path.join(base, "big.bin"), "rb") as f:  # into the server's page cache
            while f.read(8 * MiB):
                pass
        rng = random.Random(42)
        offsets = [rng.randrange(0, args.size // 4096) * 4096 for _ in range(args.random)]

        ours_cmd = [sys.executable, "-m", "pyunicore_fast.uftp.uftpfuse", "-f"]
        if args.options:
            ours_cmd += ["-o", args.options]
        drivers = [Driver("pyunicore_fast", ours_cmd, {"PYTHONPATH": ROOT})]
        theirs = pyunicore_driver(args.pyunicore_python)
        if theirs is not None:
            drivers.append(theirs)
        results = []
        with Server(base) as server, contextlib.ExitStack() as stack:
            if args.rtt_ms > 0:
                from linkemu import LinkEmulator

                emu = stack.enter_context(LinkEmulator(server.port, rtt=args.rtt_ms / 1000, window=args.window))
                server.mount_port = emu.port
            for d in drivers:
                print(f"# measuring {d.name} ...", flush=True)
                results.append(run_driver(d, server, base, args, offsets, scratch))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    link = f", link RTT {args.rtt_ms:g} ms window {args.window >> 10} KiB" if args.rtt_ms > 0 else ", loopback"
    print(f"\nFUSE benchmark: {args.size >> 20} MiB file, {args.files} files, {args.random} random 4 KiB reads, "
          f"median of {args.runs} (fresh mount each){link}")
    header = f"{'driver':18} {'dd read MB/s':>13} {'ls -l s':>9} {'rand cold op/s':>15} {'rand warm op/s':>15} " \
             f"{'wrong':>6} {'dd write MB/s':>14} {'8 readers MB/s':>15}"
    print(header)
    for r in results:
        print(f"{r['driver']:18} {r['dd_MBps']:13.0f} {r['ls_s']:9.3f} {r['random_cold_ops']:15.0f} "
              f"{r['random_warm_ops']:15.0f} {r['random_wrong']!s:>6} {r['write_MBps']:14.0f} {r['par8_MBps']:15.0f}")
        for k, v in r.items():
            if k.endswith("_error"):
                print(f"    {k}: {v}")
    if len(results) == 2:
        ours, theirs_r = results
        print("\nratios (pyunicore_fast / pyunicore-1.3.7; ls: theirs / ours, i.e. speed-up):")
        for key, label, invert in (("dd_MBps", "sequential read", False), ("ls_s", "ls -l", True),
                                   ("random_cold_ops", "random 4 KiB cold", False),
                                   ("random_warm_ops", "random 4 KiB warm", False),
                                   ("write_MBps", "sequential write", False), ("par8_MBps", "8 parallel readers", False)):
            a, b = ours.get(key), theirs_r.get(key)
            if a and b and not math.isnan(a) and not math.isnan(b):
                ratio = (b / a) if invert else (a / b)
                print(f"  {label:20} {ratio:8.1f}x")
        if theirs_r.get("random_wrong"):
            print(f"  note: PyUNICORE returned wrong data for {theirs_r['random_wrong']} random reads "
                  "(its file handle streams sequentially and ignores the offset)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "results": results}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
