"""Interoperability check of the uftpcore client against a REAL uftpd (not our test server).

    # start uftpd from its sources on loopback first, e.g. (non-root test mode, spec §15.1):
    #   SERVER_HOST=127.0.0.1 SERVER_PORT=54434 CMD_HOST=127.0.0.1 CMD_PORT=54435 DISABLE_IPv6=true \
    #   LOG_SYSLOG=false python3 <wrapper importing Protocol, UFTPD; switch_uid=False> 
    .venv/bin/python benchmarks/interop_real_uftpd.py --port 54434 --cmd-port 54435 --user $(whoami)

Each check registers a fresh job through uftpd's command port (with the stream count,
key and compression the check needs), runs the client and compares the bytes.  Prints one
line per check and exits non-zero if any failed.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import secrets
import shutil
import socket
import sys
import tempfile
import traceback

import uftpcore
from uftpcore.auth import make_key
from uftpcore.errors import NotFoundError


def submit(cmd_port: int, base: str, user: str, *, streams: int = 1, key: bytes | None = None,
           algo: str | None = None, compress: bool = False, persistent: bool = True) -> str:
    secret = "".join(secrets.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(20))
    lines = ["request-type=uftp-transfer-request", "client-ip=127.0.0.1", f"user={user}", f"secret={secret}",
             f"persistent={'true' if persistent else 'false'}", f"file={base.rstrip('/')}/", f"streams={streams}",
             f"compress={'true' if compress else 'false'}"]
    if key is not None:
        lines += [f"key={base64.b64encode(key).decode()}", f"algo={algo}"]
    with socket.create_connection(("127.0.0.1", cmd_port), timeout=10) as s:
        s.sendall(("\n".join(lines) + "\nEND\n").encode())
        reply = s.makefile("rb").read().decode().strip()
    if not reply.startswith("OK::"):
        raise RuntimeError(reply)
    return secret


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=54434)
    ap.add_argument("--cmd-port", type=int, default=54435)
    ap.add_argument("--user", default=os.environ.get("USER", "root"))
    ap.add_argument("--implementation", default=None)
    ap.add_argument("--dir", default=None, help="scratch directory the server user can write")
    args = ap.parse_args()
    base = tempfile.mkdtemp(prefix="uftp-interop-", dir=args.dir)
    os.chmod(base, 0o777)
    failures = 0
    data = os.urandom(3 * 1024 * 1024 + 12345)
    with open(os.path.join(base, "src.bin"), "wb") as f:
        f.write(data)
    os.chmod(os.path.join(base, "src.bin"), 0o666)

    def connect(**kw):
        secret = submit(args.cmd_port, base, args.user, **{k: v for k, v in kw.items() if k in ("streams", "key", "algo", "compress")})
        return uftpcore.connect("127.0.0.1", args.port, secret, timeout=20, implementation=args.implementation, **kw)

    def check(name, fn):
        nonlocal failures
        try:
            fn()
            print(f"ok    {name}")
        except Exception:  # noqa: BLE001 - report every failure and go on
            failures += 1
            print(f"FAIL  {name}")
            traceback.print_exc(limit=4)

    def metadata():
        with connect() as s:
            info = s.stat("src.bin")
            assert info.size == len(data), info
            assert "src.bin" in s.nlst(".")
            s.mkdir("d")
            s.write("d/x y.txt", b"hello")
            assert s.read("d/x y.txt") == b"hello"
            s.rename("d/x y.txt", "d/z.txt")
            s.set_mtime("d/z.txt", 1_600_000_000)
            assert abs(s.stat("d/z.txt").mtime - 1_600_000_000) < 2
            s.chmod("d/z.txt", 0o600)
            assert s.stat("d/z.txt").mode & 0o777 == 0o600
            assert s.size("src.bin") == len(data)
            try:
                s.stat("missing")
                raise AssertionError("no 550")
            except NotFoundError:
                pass
            s.remove("d/z.txt")
            s.rmdir("d")
            for algo, h in (("MD5", "md5"), ("SHA-1", "sha1"), ("SHA-256", "sha256"), ("SHA-512", "sha512")):
                assert s.checksum("src.bin", algo) == hashlib.new(h, data).hexdigest(), algo
            assert s.checksum("src.bin", "MD5", 100, 1000) == hashlib.md5(data[100:1100]).hexdigest()
            assert s.pwd() == base

    def transfers(**kw):
        def run():
            with connect(**kw) as s:
                assert "src.bin" in {i.name for i in s.listdir(".")}
                assert s.stat("src.bin").size == len(data)
                buf = bytearray(len(data))
                assert s.read_into("src.bin", buf) == len(data) and bytes(buf) == data
                assert s.read("src.bin", 5000, 70000) == data[5000:75000]
                out = os.path.join(base, "out.bin")
                assert s.download("src.bin", out) == len(data)
                assert open(out, "rb").read() == data
                assert s.upload(os.path.join(base, "src.bin"), "up.bin") == len(data)
                assert open(os.path.join(base, "up.bin"), "rb").read() == data
                s.write("up.bin", b"PATCH", offset=1000)
                expect = data[:1000] + b"PATCH" + data[1005:]
                assert open(os.path.join(base, "up.bin"), "rb").read() == expect
                for size in (0, 1, 16383, 16384, 100003):
                    s.write("w.bin", data[:size])
                    assert open(os.path.join(base, "w.bin"), "rb").read() == data[:size], size
                    assert s.read("w.bin") == data[:size], size
        return run

    def random_reads():
        import random
        with connect() as s, s.open("src.bin", "rb", buffering=0) as f:
            rng = random.Random(5)
            for _ in range(300):
                off = rng.randrange(0, len(data) - 4096)
                f.seek(off)
                assert f.read(4096) == data[off:off + 4096]

    def writer():
        with connect() as s:
            with s.open("stream.bin", "wb") as w:
                w.write(data[:100000])
                w.write(data[100000:200000])
            assert open(os.path.join(base, "stream.bin"), "rb").read() == data[:200000]

    check("metadata, checksums, paths", metadata)
    check("plain single stream transfers", transfers())
    check("keep-alive random 4 KiB reads", random_reads)
    check("streaming writer", writer)
    for n in (2, 3, 4):
        check(f"plain {n} streams", transfers(streams=n))
    for algo in ("AES", "BLOWFISH"):
        check(f"{algo} single stream", transfers(key=make_key(algo), algo=algo))
        for n in (2, 4):
            check(f"{algo} {n} streams", transfers(streams=n, key=make_key(algo), algo=algo))
    check("gzip single stream", transfers(compress=True))
    check("gzip 2 streams", transfers(streams=2, compress=True))
    check("AES+gzip single stream", transfers(key=make_key("AES"), algo="AES", compress=True))
    check("AES+gzip 2 streams (planned as 1)", transfers(streams=2, key=make_key("AES"), algo="AES", compress=True))
    shutil.rmtree(base, ignore_errors=True)
    print("all interop checks passed" if failures == 0 else f"{failures} interop checks FAILED")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
