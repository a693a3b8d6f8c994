"""fsspec/PyFilesystem drivers vs PyUNICORE 2.0.2's UFTPFS, on the same server in one run.

    .venv/bin/python benchmarks/fsspec_bench.py [--size-mib 1024] [--files 1000] [--runs 5]
        [--pyunicore-python /work/bench-venv/bin/python] [--json out.json]

One UFTPD + Auth server process (``python -m uftpcore.server``) on loopback serves every client:

* **seq read**: a 1 GiB file read front to back in 1 MiB chunks (``f.read(1 MiB)``; for ours also
  ``readinto`` into one reused buffer), plus the ceiling: one raw uftpcore ``RETR`` into a reused
  buffer (what server and loopback allow before any file-object layer);
* **random 4 KiB**: seek + read of 4 KiB at random offsets, ops/s (ours: ``cache_type="none"``,
  the setting for random access);
* **listdir**: names of a directory with 1,000 files.

PyUNICORE (``pyunicore==2.0.2`` + ``fs``) runs in a *separate* interpreter -- by default
``/work/bench-venv/bin/python`` -- so its ``fs`` dependency and ``setuptools`` pin never touch the
project venv; it takes commands over a pipe, so its runs are *interleaved* with ours round by
round and both see the same machine load.  The server is a third process (no shared GIL).  The
table shows the median of ``--runs`` rounds (best in brackets); ratios use medians.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any, Self

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import free_port, make_file

MiB = 1 << 20
HERE = os.path.dirname(os.path.abspath(__file__))
USER, PASSWORD = "demouser", "test123"


class AuthServerProcess:
    """UFTPD + Auth endpoint in one child process; ``url`` is the Auth URL."""

    def __init__(self, root: str):
        self.root = root
        self.url = ""
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> Self:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "uftpcore.server", "--host", "127.0.0.1", "--port", str(free_port()),
             "--cmd-port", str(free_port()), "--auth-port", str(free_port()), "--user", f"{USER}:{PASSWORD}",
             "--root", self.root, "--max-connections", "100000"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        deadline = time.monotonic() + 20
        assert self.proc.stdout is not None
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            m = re.search(r"Auth endpoint: (\S+)", line or "")
            if m:
                self.url = m.group(1)
                return self
            if not line and self.proc.poll() is not None:
                break
        raise RuntimeError("benchmark server did not start")

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)


def timed(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def random_reads(opener: Callable[[], Any], cfg: dict, rng: random.Random) -> dict:
    size, block = cfg["size"], cfg["rand_block"]
    ops = 0
    t0 = time.perf_counter()
    with opener() as f:
        while ops < cfg["rand_ops"] and time.perf_counter() - t0 < cfg["rand_budget"]:
            off = rng.randrange(0, size - block)
            f.seek(off)
            if len(f.read(block)) != block:
                raise RuntimeError("short random read")
            ops += 1
    return {"ops": ops, "seconds": time.perf_counter() - t0}


class Ceiling:
    """One raw uftpcore RETR of the whole file, ``recv_into`` a reused buffer."""

    name = "ceiling (raw RETR)"

    def __init__(self, cfg: dict):
        import uftpcore

        self.cfg = cfg
        self.session = uftpcore.Endpoint(auth_url=cfg["auth_url"], username=USER, password=PASSWORD).session()
        self.buf = memoryview(bytearray(cfg["chunk"]))

    def seq(self) -> float:
        s, size = self.session, self.cfg["size"]

        def stream() -> None:
            sock = s.start_transfer("RETR", self.cfg["big_abs"], 0, size)
            n = 0
            while n < size:
                got = s._fp.recv_into(sock, self.buf[:min(len(self.buf), size - n)], s.timeout)
                if got == 0:
                    break
                n += got
            s.finish_transfer()
            assert n == size, n

        return timed(stream)

    def close(self) -> None:
        self.session.close()


class OursFsspec:
    name = "ours fsspec"

    def __init__(self, cfg: dict):
        from pyunicore_fast.uftp.fsspec_impl import UFTPFileSystem

        self.cfg = cfg
        self.fs = UFTPFileSystem(cfg["auth_url"], username=USER, password=PASSWORD, skip_instance_cache=True)
        self.rng = random.Random(1)
        self.buf = bytearray(cfg["chunk"])

    def seq(self) -> float:
        def run() -> None:
            n = 0
            with self.fs.open(self.cfg["big_abs"], "rb") as f:
                while data := f.read(self.cfg["chunk"]):
                    n += len(data)
            assert n == self.cfg["size"], n

        return timed(run)

    def seq_readinto(self) -> float:
        def run() -> None:
            n = 0
            with self.fs.open(self.cfg["big_abs"], "rb") as f:
                while got := f.readinto(self.buf):
                    n += got
            assert n == self.cfg["size"], n

        return timed(run)

    def rand(self) -> dict:
        return random_reads(lambda: self.fs.open(self.cfg["big_abs"], "rb", cache_type="none"), self.cfg, self.rng)

    def ls(self) -> float:
        return timed(lambda: self.fs.ls(self.cfg["dir_abs"], detail=False))

    def close(self) -> None:
        self.fs.close()


class OursPyFS:
    name = "ours UFTPFS (fs)"

    def __init__(self, cfg: dict):
        from pyunicore_fast.uftp.uftpfs import UFTPFS

        self.cfg = cfg
        self.fs = UFTPFS(cfg["auth_url"], (USER, PASSWORD), cfg["base"])
        self.rng = random.Random(1)

    def seq(self) -> float:
        def run() -> None:
            n = 0
            with self.fs.openbin(self.cfg["big"], "r") as f:
                while data := f.read(self.cfg["chunk"]):
                    n += len(data)
            assert n == self.cfg["size"], n

        return timed(run)

    def rand(self) -> dict:
        return random_reads(lambda: self.fs.openbin(self.cfg["big"], "r", buffering=0), self.cfg, self.rng)

    def ls(self) -> float:
        return timed(lambda: self.fs.listdir(self.cfg["dir"]))

    def close(self) -> None:
        self.fs.close()


class PyUnicore:
    """PyUNICORE's UFTPFS in the bench venv, driven over a pipe."""

    name = "PyUNICORE UFTPFS"

    def __init__(self, cfg: dict, python: str):
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        self.proc = subprocess.Popen([python, os.path.join(HERE, "_pyunicore_side.py"), json.dumps(cfg)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, env=env)
        ready = self._answer()
        if not ready.get("ready"):
            raise RuntimeError(f"PyUNICORE side did not start: {ready}")
        self.seek = self.call("seek_check")

    def _answer(self) -> dict:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            err = self.proc.stderr.read() if self.proc.stderr else ""
            raise RuntimeError(f"PyUNICORE side ended:\n{err[-3000:]}")
        return json.loads(line)

    def call(self, cmd: str) -> dict:
        assert self.proc.stdin is not None
        self.proc.stdin.write(cmd + "\n")
        self.proc.stdin.flush()
        answer = self._answer()
        if "error" in answer:
            raise RuntimeError(f"PyUNICORE {cmd}: {answer['error']}")
        return answer

    def seq(self) -> float:
        return self.call("seq")["seconds"]

    def rand(self) -> dict:
        return self.call("rand")

    def ls(self) -> float:
        return self.call("ls")["seconds"]

    def close(self) -> None:
        try:
            self.call("quit")
        except (RuntimeError, OSError, ValueError):
            pass
        self.proc.wait(30)


def summarise(samples: list[float]) -> dict:
    return {"median": statistics.median(samples), "best": min(samples), "samples": samples}


def run_rounds(clients: list[Any], cfg: dict, runs: int) -> dict:
    """Every measurement round by round across clients (interleaved: equal machine load)."""
    res: dict[str, dict[str, Any]] = {c.name: {} for c in clients}
    seq: dict[str, list[float]] = {c.name: [] for c in clients}
    seq_into: list[float] = []
    ls: dict[str, list[float]] = {c.name: [] for c in clients if hasattr(c, "ls")}
    rand: dict[str, list[dict]] = {c.name: [] for c in clients if hasattr(c, "rand")}
    for _ in range(runs):
        for c in clients:
            seq[c.name].append(c.seq())
            if isinstance(c, OursFsspec):
                seq_into.append(c.seq_readinto())
    for _ in range(runs):
        for c in clients:
            if hasattr(c, "ls"):
                ls[c.name].append(c.ls())
    for _ in range(3):
        for c in clients:
            if hasattr(c, "rand"):
                rand[c.name].append(c.rand())
    for c in clients:
        res[c.name]["seq"] = summarise(seq[c.name])
        if c.name in ls:
            res[c.name]["ls"] = summarise(ls[c.name])
        if c.name in rand:
            res[c.name]["rand_ops_per_s"] = summarise([r["ops"] / r["seconds"] for r in rand[c.name]])
        if isinstance(c, OursFsspec):
            res[c.name]["seq_readinto"] = summarise(seq_into)
        if isinstance(c, PyUnicore):
            res[c.name].update(c.seek)
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--chunk-kib", type=int, default=1024)
    ap.add_argument("--files", type=int, default=1000)
    ap.add_argument("--rand-ops", type=int, default=3000)
    ap.add_argument("--rand-budget", type=float, default=4.0, help="seconds per client and round")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--pyunicore-python", default="/work/bench-venv/bin/python")
    ap.add_argument("--workdir", default=None, help="directory for the data (default: a temporary one)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)

    root = args.workdir or tempfile.mkdtemp(prefix="fsspec-bench-")
    base = os.path.join(root, "data")
    os.makedirs(os.path.join(base, "many"), exist_ok=True)
    size = args.size_mib * MiB
    make_file(os.path.join(base, "big.bin"), size)
    for i in range(args.files):
        p = os.path.join(base, "many", f"file-{i:05d}.dat")
        if not os.path.exists(p):
            with open(p, "wb") as f:
                f.write(b"x" * 100)

    import uftpcore

    results: dict = {"machine": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version(),
                     "uftpcore": uftpcore.IMPLEMENTATION, "size_mib": args.size_mib, "files": args.files,
                     "runs": args.runs}
    clients: list[Any] = []
    try:
        with AuthServerProcess(root) as server:
            cfg = {"auth_url": server.url, "user": USER, "password": PASSWORD, "base": base,
                   "big": "big.bin", "big_abs": os.path.join(base, "big.bin"), "dir": "many",
                   "dir_abs": os.path.join(base, "many"), "size": size, "chunk": args.chunk_kib * 1024,
                   "rand_block": 4096, "rand_ops": args.rand_ops, "rand_budget": args.rand_budget}
            clients = [Ceiling(cfg), OursFsspec(cfg), OursPyFS(cfg)]
            if os.path.exists(args.pyunicore_python):
                clients.append(PyUnicore(cfg, args.pyunicore_python))
            else:
                print(f"!! {args.pyunicore_python} not found: PyUNICORE side skipped", file=sys.stderr)
            results["clients"] = run_rounds(clients, cfg, args.runs)
    finally:
        for c in clients:
            c.close()
        if args.workdir is None:
            shutil.rmtree(root, ignore_errors=True)
    report(results, size)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return 0


def report(r: dict, size: int) -> None:
    c = r["clients"]

    def mbps(s: dict) -> str:
        return f"{size / MiB / s['median']:7.0f} ({size / MiB / s['best']:5.0f}) MiB/s"

    print(f"\n{r['size_mib']} MiB file read in {1024} KiB chunks; random 4 KiB reads; listdir of {r['files']} files")
    print(f"uftpcore {r['uftpcore']}, Python {r['python']}, {r['cpus']} CPUs; median of {r['runs']} interleaved "
          "rounds (best)")
    print(f"{'client':<22} {'seq read':>24} {'random 4 KiB':>16} {'listdir':>18}")
    for name, d in c.items():
        rand = f"{d['rand_ops_per_s']['median']:9.0f} op/s" if "rand_ops_per_s" in d else ""
        ls = f"{d['ls']['median'] * 1000:7.2f} ({d['ls']['best'] * 1000:5.2f}) ms" if "ls" in d else ""
        print(f"{name:<22} {mbps(d['seq'])} {rand:>16} {ls:>18}")
        if "seq_readinto" in d:
            print(f"{'  ... with readinto':<22} {mbps(d['seq_readinto'])}")
    ref = c.get(PyUnicore.name)
    if ref:
        print("\nratios, ours / PyUNICORE (medians; > 1 = ours faster):")
        for name in (OursFsspec.name, OursPyFS.name):
            d = c[name]
            print(f"  {name:<20} seq read x{ref['seq']['median'] / d['seq']['median']:.2f}   "
                  f"random 4 KiB x{d['rand_ops_per_s']['median'] / ref['rand_ops_per_s']['median']:.1f}   "
                  f"listdir x{ref['ls']['median'] / d['ls']['median']:.2f}")
        if not ref.get("seek_works", True):
            print(f"\nPyUNICORE UFTPFS cannot seek on uftpd ({ref.get('seek_error')}): FTPFS.seek() sends QUIT, "
                  "which uftpd answers by closing.\nIts random reads were measured with a new file object per read "
                  "(a new FTP login), the position set directly.")


if __name__ == "__main__":
    sys.exit(main())
