"""``python -m uftpcore demo``: the offline end-to-end demo of the engine.

Starts the embedded UFTPD-compatible server and its Auth endpoint on loopback, generates a
file, uploads and downloads it through uftpcore (to a file and to memory), prints the
throughput, and verifies the data with local SHA-256 and the server's HASH.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import sys
import tempfile
import time


def _parse_size(text: str) -> int:
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    text = text.strip().upper().rstrip("IB")
    if text and text[-1] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(text)


def _generate(path: str, size: int) -> str:
    import numpy as np

    rng = np.random.default_rng(12345)
    block = rng.integers(0, 256, size=min(size, 8 << 20), dtype=np.uint8)
    h = hashlib.sha256()
    with open(path, "wb") as f:
        left, i = size, 0
        while left > 0:
            n = min(left, len(block))
            block[0] = i & 0xFF  # every block differs, so misplaced blocks are detected
            chunk = memoryview(block)[:n]
            f.write(chunk)
            h.update(chunk)
            left -= n
            i += 1
    return h.hexdigest()


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    buf = bytearray(8 << 20)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(buf):
            h.update(view[:n])
    return h.hexdigest()


def _rate(nbytes: int, seconds: float) -> str:
    return f"{nbytes / seconds / (1 << 20):10.1f} MiB/s"


def demo(size: int, workdir: str | None, implementation: str | None) -> int:
    import numpy as np

    import uftpcore
    from uftpcore.server import UFTPD, AuthServer

    impl = implementation or uftpcore.IMPLEMENTATION
    with tempfile.TemporaryDirectory(dir=workdir, prefix="uftpcore-demo-") as tmp:
        local_dir = os.path.join(tmp, "local")
        remote_dir = os.path.join(tmp, "remote")
        os.makedirs(local_dir)
        os.makedirs(remote_dir)
        src = os.path.join(local_dir, "dataset.bin")
        print(f"uftpcore {uftpcore.__version__} ({impl} implementation)")
        print(f"generating {size / (1 << 20):.0f} MiB test file ...", flush=True)
        digest = _generate(src, size)
        with UFTPD(host="127.0.0.1", port=0, cmd_host="127.0.0.1", cmd_port=0) as uftpd, \
                AuthServer(uftpd, host="127.0.0.1", port=0, users={"demouser": "test123"}, server_name="DEMO") as auth:
            print(f"UFTPD on 127.0.0.1:{uftpd.port}, Auth server at {auth.url}")
            ticket = uftpcore.authenticate(auth.url, username="demouser", password="test123", base_dir=remote_dir)
            results = []
            with uftpcore.connect(ticket, implementation=impl) as s:
                t0 = time.perf_counter()
                s.upload(src, "dataset.bin")
                results.append(("upload from file (sendfile)", time.perf_counter() - t0))
                remote_digest = s.checksum("dataset.bin", "SHA-256")

                dst = os.path.join(local_dir, "dataset.copy")
                t0 = time.perf_counter()
                s.download("dataset.bin", dst)
                results.append(("download to file (pwrite)", time.perf_counter() - t0))

                buf = np.empty(size, dtype=np.uint8)
                t0 = time.perf_counter()
                got = s.read_into("dataset.bin", buf)
                results.append(("download to memory (recv_into)", time.perf_counter() - t0))
                mem_digest = hashlib.sha256(memoryview(buf)[:got]).hexdigest()
                del buf
            copy_digest = _sha256(dst)

        print()
        print(f"{'transfer':34} {'seconds':>9} {'throughput':>16}")
        for name, secs in results:
            print(f"{name:34} {secs:9.3f} {_rate(size, secs):>16}")
        print()
        checks = [("server HASH SHA-256 of the upload", remote_digest),
                  ("SHA-256 of the downloaded file", copy_digest),
                  ("SHA-256 of the in-memory copy", mem_digest)]
        ok = True
        for name, value in checks:
            good = value == digest
            ok &= good
            print(f"{name:38} {'OK' if good else 'MISMATCH'}  {value}")
        print("all checksums verified" if ok else "CHECKSUM MISMATCH")
        return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m uftpcore", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("demo", help="offline end-to-end upload/download demo on loopback")
    d.add_argument("--size", default="1G", help="file size, e.g. 1G, 256M (default 1G)")
    d.add_argument("--dir", default=None, help="where to put temporary files (default: system temp)")
    d.add_argument("--implementation", choices=["cython", "python"], default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    return demo(_parse_size(args.size), args.dir, args.implementation)


if __name__ == "__main__":
    sys.exit(main())
