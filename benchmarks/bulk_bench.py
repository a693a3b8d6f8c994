"""Bulk-engine benchmark (issue 3): streams, sessions, WAN emulation, encryption, compression,
small files and memory, against the test server in its own process.

    .venv/bin/python benchmarks/bulk_bench.py [--size 512M] [--wan-size 16M] [--files 1000]

* multi-stream on loopback vs one stream (download to memory; target >= 0.9x),
* through the link emulator (25 ms RTT, 256 KiB window per connection): 1 vs 4 streams and
  1 vs 4 sessions (target >= 3.5x),
* AES download to memory (target >= 1 GiB/s) and gzip on compressible data (>= 150 MiB/s),
* 1,000 files of 1 KiB with ``transfer.download_many`` over 4 sessions (>= 500 files/s),
* peak RSS of ``transfer.download`` for two file sizes (flat in file size).
"""

from __future__ import annotations

import argparse
import base64
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import ServerProcess, make_file, new_secret  # noqa: E402
from linkemu import LinkEmulator  # noqa: E402

import uftpcore  # noqa: E402
from uftpcore.auth import make_key  # noqa: E402

MiB = 1 << 20


def job(srv: ServerProcess, base: str, *, key: bytes | None = None, algo: str | None = None,
        compress: bool = False) -> str:
    """A persistent session through the command port, with the codec settings given."""
    secret = new_secret()
    lines = ["request-type=uftp-transfer-request", "client-ip=127.0.0.1", "user=bench", f"secret={secret}",
             "persistent=true", f"file={base.rstrip('/')}/", "streams=1", f"compress={str(compress).lower()}"]
    if key is not None:
        lines += [f"key={base64.b64encode(key).decode()}", f"algo={algo}"]
    with socket.create_connection(("127.0.0.1", srv.cmd_port), timeout=10) as s:
        s.sendall(("\n".join(lines) + "\nEND\n").encode())
        reply = s.makefile("rb").read().decode()
    assert reply.startswith("OK::"), reply
    return secret


def best_read(port: int, secret: str, name: str, buf, runs: int, **kw) -> float:
    best = float("inf")
    with uftpcore.connect("127.0.0.1", port, secret, timeout=120, **kw) as s:
        for _ in range(runs):
            t0 = time.perf_counter()
            n = s.read_into(name, buf)
            best = min(best, time.perf_counter() - t0)
            assert n == len(buf)
    return best


def sessions_read(port: int, secret: str, name: str, buf, sessions: int) -> float:
    """``sessions`` sessions, each reading an equal slice of the file into ``buf``."""
    part = len(buf) // sessions
    conns = [uftpcore.connect("127.0.0.1", port, secret, timeout=120) for _ in range(sessions)]
    view = memoryview(buf)

    def work(i: int) -> None:
        end = len(buf) if i == sessions - 1 else (i + 1) * part
        conns[i].read_into(name, view[i * part:end], i * part)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(sessions)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    for c in conns:
        c.close()
    return elapsed


def peak_rss(port: int, secret: str, name: str, out: str) -> float:
    code = ("import uftpcore\n"
            f"ep=uftpcore.Endpoint.from_secret('127.0.0.1',{port},{secret!r})\n"
            f"uftpcore.transfer.download(ep,{name!r},{out!r},sessions=2)\n"
            "print([l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')][0])\n")
    r = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return int(r.stdout.split()[-1]) / 1024


def main() -> int:
    import numpy as np

    from uftpcore.__main__ import _parse_size

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="512M")
    ap.add_argument("--wan-size", default="64M")
    ap.add_argument("--files", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--dir", default="/dev/shm" if os.path.isdir("/dev/shm") else None)
    args = ap.parse_args()
    size, wan = _parse_size(args.size), _parse_size(args.wan_size)
    scratch = tempfile.mkdtemp(prefix="uftp-bulk-", dir=args.dir)
    rows: list[tuple[str, str, str]] = []
    try:
        remote = os.path.join(scratch, "remote")
        os.makedirs(os.path.join(remote, "small"))
        make_file(os.path.join(remote, "data.bin"), size)
        make_file(os.path.join(remote, "wan.bin"), wan)
        with open(os.path.join(remote, "text.txt"), "wb") as f:
            line = b"2026-11-28T03:00:00Z INFO uftpcore transfer of block finished ok\n"
            f.write(line * (size // len(line)))
        for i in range(args.files):
            with open(os.path.join(remote, "small", f"f{i:04d}.bin"), "wb") as f:
                f.write(os.urandom(1024))
        buf = np.zeros(size, dtype=np.uint8)
        with ServerProcess(remote) as srv:
            secret = job(srv, remote)
            # uftpd forgets a persistent job when its last session closes: hold one open
            holder = uftpcore.connect("127.0.0.1", srv.port, secret)
            one = best_read(srv.port, secret, "data.bin", buf, args.runs)
            rows.append(("loopback, 1 stream", f"{size / one / MiB:.0f} MiB/s", "reference"))
            for n in (2, 4):
                t = best_read(srv.port, secret, "data.bin", buf, args.runs, streams=n)
                rows.append((f"loopback, {n} streams", f"{size / t / MiB:.0f} MiB/s", f"{one / t:.2f}x 1 stream (>= 0.9)"))
            for algo in ("AES", "BLOWFISH"):
                key = make_key(algo)
                t = best_read(srv.port, job(srv, remote, key=key, algo=algo), "data.bin", buf, args.runs,
                              key=key, algo=algo)
                target = " (>= 1024)" if algo == "AES" else ""
                rows.append((f"{algo} download, 1 stream", f"{size / t / MiB:.0f} MiB/s{target}", ""))
            text = np.zeros(os.path.getsize(os.path.join(remote, "text.txt")), dtype=np.uint8)
            t = best_read(srv.port, job(srv, remote, compress=True), "text.txt", text, args.runs, compress=True)
            rows.append(("gzip download, compressible text", f"{len(text) / t / MiB:.0f} MiB/s (>= 150)", ""))
            del buf

            endpoint = uftpcore.Endpoint.from_secret("127.0.0.1", srv.port, secret)
            pairs = [(f"small/f{i:04d}.bin", os.path.join(scratch, "out-small", f"f{i:04d}.bin"))
                     for i in range(args.files)]
            os.makedirs(os.path.join(scratch, "out-small"))
            t0 = time.perf_counter()
            res = uftpcore.transfer.download_many(endpoint, pairs, sessions=4)
            t = time.perf_counter() - t0
            rows.append((f"{args.files} x 1 KiB files, 4 sessions", f"{args.files / t:.0f} files/s (>= 500)",
                         f"verified={res.verified}"))

            wbuf = np.zeros(wan, dtype=np.uint8)
            with LinkEmulator(srv.port, rtt=0.025, window=256 * 1024) as emu:
                base1 = best_read(emu.port, secret, "wan.bin", wbuf, 1)
                rows.append(("25 ms RTT, 256 KiB window, 1 stream", f"{wan / base1 / MiB:.1f} MiB/s", "reference"))
                t4 = best_read(emu.port, secret, "wan.bin", wbuf, 1, streams=4)
                rows.append(("25 ms RTT, 256 KiB window, 4 streams", f"{wan / t4 / MiB:.1f} MiB/s",
                             f"{base1 / t4:.2f}x (>= 3.5)"))
                s4 = sessions_read(emu.port, secret, "wan.bin", wbuf, 4)
                rows.append(("25 ms RTT, 256 KiB window, 4 sessions", f"{wan / s4 / MiB:.1f} MiB/s",
                             f"{base1 / s4:.2f}x (>= 3.5)"))
            assert bytes(wbuf[:1024]) == open(os.path.join(remote, "wan.bin"), "rb").read(1024)

            out = os.path.join(scratch, "rss.bin")
            small_rss = peak_rss(srv.port, secret, "wan.bin", out)
            big_rss = peak_rss(srv.port, secret, "data.bin", out)
            rows.append(("peak RSS, transfer.download", f"{small_rss:.0f} MiB ({wan // MiB} MiB file) / "
                         f"{big_rss:.0f} MiB ({size // MiB} MiB file)", "flat in file size"))
            holder.close()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"uftpcore {uftpcore.IMPLEMENTATION}; {os.cpu_count()} cores; files in {args.dir}")
    for name, value, note in rows:
        print(f"{name:40} {value:40} {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
