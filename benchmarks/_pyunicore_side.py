"""PyUNICORE 2.0.2 side of ``fsspec_bench.py``; runs in its own venv (``/work/bench-venv``).

    python _pyunicore_side.py '{"auth_url": ..., "user": ..., "password": ..., "base": ..., ...}'

A small command loop: it reads one command per line on stdin (``seq``, ``rand``, ``ls``,
``quit``) and answers each with one JSON line, so the benchmark can interleave PyUNICORE's runs
with ours (the same machine load for both).  Free of pyunicore_fast/uftpcore imports: it measures
PyUNICORE (``pyunicore.uftp.uftpfs.UFTPFS``, an ``fs.ftpfs.FTPFS``) alone.
"""

from __future__ import annotations

import json
import random
import sys
import time
import warnings

warnings.simplefilter("ignore")


def main() -> None:
    cfg = json.loads(sys.argv[1])
    from pyunicore.credentials import UsernamePassword
    from pyunicore.uftp.uftpfs import UFTPFS

    fs = UFTPFS(cfg["auth_url"], UsernamePassword(cfg["user"], cfg["password"]), cfg["base"])
    size, chunk, block = cfg["size"], cfg["chunk"], cfg["rand_block"]
    rng = random.Random(1)

    def seq() -> dict:
        t0 = time.perf_counter()
        n = 0
        with fs.openbin(cfg["big"], "r") as f:
            while True:
                data = f.read(chunk)
                if not data:
                    break
                n += len(data)
        if n != size:
            raise RuntimeError(f"read {n} of {size} bytes")
        return {"seconds": time.perf_counter() - t0}

    def seek_check() -> dict:
        # FTPFile.seek() cannot work on uftpd: it calls ftp.quit(), uftpd closes without a reply
        # to QUIT, ftplib raises EOFError (protocol spec, quirk 14).
        try:
            with fs.openbin(cfg["big"], "r") as f:
                f.seek(block)
                f.read(block)
            return {"seek_works": True}
        except Exception as exc:  # noqa: BLE001 - recorded, not hidden
            return {"seek_works": False, "seek_error": f"{type(exc).__name__}: {exc}"}

    def rand() -> dict:
        # The closest thing to seek + read that works: a new file object per read (a new FTP
        # login), its position set directly, REST + RETR, close.
        ops = 0
        t0 = time.perf_counter()
        while ops < cfg["rand_ops"] and time.perf_counter() - t0 < cfg["rand_budget"]:
            off = rng.randrange(0, size - block)
            f = fs.openbin(cfg["big"], "r")
            f.pos = off
            data = f.read(block)
            try:
                f.close()  # QUIT after an unfinished RETR: uftpd replies 500 (broken pipe) or nothing
            except Exception:  # noqa: BLE001
                f.ftp.close()
            if len(data) != block:
                raise RuntimeError(f"short random read {len(data)}")
            ops += 1
        return {"ops": ops, "seconds": time.perf_counter() - t0}

    def ls() -> dict:
        t0 = time.perf_counter()
        names = fs.listdir(cfg["dir"])
        return {"seconds": time.perf_counter() - t0, "n": len(names)}

    commands = {"seq": seq, "rand": rand, "ls": ls, "seek_check": seek_check}
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        cmd = line.strip()
        if cmd == "quit":
            break
        try:
            print(json.dumps(commands[cmd]()), flush=True)
        except Exception as exc:  # noqa: BLE001 - reported to the driver
            print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}), flush=True)
    fs.close()


if __name__ == "__main__":
    main()
