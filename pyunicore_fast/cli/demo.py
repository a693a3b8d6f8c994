"""``demo``: the whole product in one command, offline.

Starts the embedded site, generates a dataset (1 GiB by default), stages it in through the
UFTP Auth endpoint and out again through the UNICORE/X storage endpoint (progress bars,
checksums verified by the transfer engine), reads it back through fsspec
(``fsspec.open("uftp://...")``) and, where FUSE works, through a mount, then prints the
benchmark table.  Every read-back is compared with the SHA-256 computed while generating;
any mismatch makes the exit code non-zero (3).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Any

from pyunicore_fast.cli import benchcore, common, locations
from pyunicore_fast.cli.base import Base
from pyunicore_fast.cli.errors import EXIT_VERIFY, UsageError
from pyunicore_fast.cli.units import MiB, human_rate, human_size, parse_size


@dataclass
class Check:
    name: str
    status: str  # "passed" | "failed" | "skipped"
    detail: str = ""
    seconds: float | None = None
    bytes: int = 0

    def as_json(self) -> dict[str, Any]:
        rate = round(self.bytes / self.seconds / MiB, 2) if self.seconds and self.bytes else None
        return {"name": self.name, "status": self.status, "detail": self.detail,
                "seconds": None if self.seconds is None else round(self.seconds, 4), "bytes": self.bytes,
                "rate_mib_s": rate}


class Demo(Base):
    """Offline end-to-end demonstration on the embedded site."""

    name = "demo"
    uses_credential = False

    def add_command_args(self) -> None:
        p = self.parser
        p.add_argument("--size", default="1G", help="Size of the generated dataset (default 1G)")
        p.add_argument("-t", "--threads", "--sessions", dest="sessions", type=int, default=2,
                       help="UFTP sessions for staging (default 2)")
        p.add_argument("--dir", default=None, help="Local scratch directory (default: system temp)")
        p.add_argument("--no-fsspec", action="store_true", help="Skip the fsspec read-back")
        p.add_argument("--no-fuse", action="store_true", help="Skip the FUSE read-back")
        p.add_argument("--no-bench", action="store_true", help="Skip the benchmark table")
        p.add_argument("--bench-size", default="64M", help="File size of the benchmark (default 64M)")
        p.add_argument("--json", action="store_true", help="Print a JSON report instead of text")
        p.add_argument("-q", "--quiet", action="store_true", help="No progress bars")

    def get_synopsis(self) -> str:
        return ("Offline demo: embedded site, dataset staged in and out via UFTP with verified\n"
                "checksums, read back through fsspec and FUSE, benchmark table.")

    def get_description(self) -> str:
        return "end-to-end demo on the embedded site"

    def get_group(self) -> str:
        return "Utilities"

    def run(self, args: list[str]) -> int:
        from pyunicore_fast.cli.embedded import embedded_site

        self.setup(args)
        try:
            size = parse_size(self.args.size)
            bench_size = parse_size(self.args.bench_size)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        if size < 1:
            raise UsageError("--size must be at least 1 byte")
        if not 1 <= self.args.sessions <= 16:
            raise UsageError("--sessions must be between 1 and 16")
        self.checks: list[Check] = []
        report: dict[str, Any] | None = None
        scratch = tempfile.mkdtemp(prefix="pyunicore-fast-demo-", dir=self.args.dir)
        try:
            self._say(f"starting the embedded site ({'uftpcore ' + _impl()})")
            with embedded_site() as site:
                self.site = site
                self._say(f"site {site['core_url']}, UFTP auth {site['auth_url']}")
                report = self._steps(site, scratch, size, bench_size)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        ok = all(c.status != "failed" for c in self.checks)
        if self.args.json:
            common.print_json({"schema": common.SCHEMA_VERSION, "command": "demo", "ok": ok, "size": size,
                               "checks": [c.as_json() for c in self.checks], "bench": report})
        else:
            self._print_summary(report, ok)
        return 0 if ok else EXIT_VERIFY

    # -- the steps -------------------------------------------------------------------------------
    def _steps(self, site: dict[str, Any], scratch: str, size: int, bench_size: int) -> dict[str, Any] | None:
        src = os.path.join(scratch, "dataset.bin")
        self._say(f"generating a {human_size(size)} dataset")
        t0 = time.perf_counter()
        digest = benchcore.generate_file(src, size)
        self._check("generate dataset", "passed", f"sha256 {digest[:16]}...", time.perf_counter() - t0, size)
        user, password = "demouser", site["users"]["demouser"]
        home = os.path.join(site["root_dir"], "home", user)
        auth_url = site["auth_url"]
        storage_url = site["core_url"] + "/storages/HOME"
        creds = ["-u", f"{user}:{password}"]
        progress = ["-q"] if self.args.quiet or self.args.json else []  # bars only on a terminal

        # stage in: UFTP through the Auth server, several sessions, engine-verified
        summary = self._cp("stage in (UFTP Auth endpoint)",
                           [*creds, "-t", str(self.args.sessions), *progress, src, f"{auth_url}:dataset.bin"])
        if summary is not None:
            server = self._server_checksum(auth_url, user, password)
            self._check("server-side SHA-256 (HASH)", "passed" if server == digest else "failed",
                        f"{server[:16]}..." if server else "no checksum")
        # stage out: UFTP through the UNICORE/X storage endpoint
        out = os.path.join(scratch, "dataset.out")
        summary = self._cp("stage out (UFTP storage endpoint)",
                           [*creds, "-t", str(self.args.sessions), *progress, f"{storage_url}:/dataset.bin", out])
        if summary is not None:
            t0 = time.perf_counter()
            copy_digest = _sha256_file(out)
            self._check("SHA-256 of the staged-out copy", "passed" if copy_digest == digest else "failed",
                        f"{copy_digest[:16]}...", time.perf_counter() - t0, size)
            os.unlink(out)
        self._fsspec(auth_url, user, password, home, digest, size)
        self._fuse(auth_url, user, password, home, scratch, digest, size)
        if self.args.no_bench:
            return None
        self._say("running the benchmark")
        from pyunicore_fast.cli.bench import run_report
        from pyunicore_fast.credentials import UsernamePassword

        loc = locations.parse(auth_url + ":")
        assert isinstance(loc, locations.UFTPPath)
        target = benchcore.BenchTarget(loc, UsernamePassword(user, password), label=auth_url + " (embedded site)",
                                       embedded=True)
        cfg = benchcore.BenchConfig(size=bench_size, scratch=self.args.dir)
        return run_report(target, cfg, None if self.args.quiet else (lambda m: self._say(m)))

    def _cp(self, name: str, cp_args: list[str]) -> dict[str, Any] | None:
        from pyunicore_fast.cli.copy import UFTPCopy
        from pyunicore_fast.cli.errors import describe
        from pyunicore_fast.cli.io import CP

        self._say(name)
        cmd = CP()
        try:
            cmd.setup(cp_args)
            copier = UFTPCopy(cmd, [locations.parse(s) for s in cmd.args.source], locations.parse(cmd.args.target))
            summary = copier.execute()
        except Exception as exc:  # noqa: BLE001 - reported as a failed check
            self._check(name, "failed", describe(exc)[0])
            return None
        ok = summary["verified"]
        self._check(name, "passed" if ok else "failed",
                    f"{summary['sessions']} sessions, {'verified ' + str(summary['checksum']) if ok else 'NOT verified'}",
                    summary["seconds"], summary["bytes"])
        return summary

    def _server_checksum(self, auth_url: str, user: str, password: str) -> str | None:
        import uftpcore

        try:
            ep = uftpcore.Endpoint(auth_url=auth_url, username=user, password=password, base_dir="")
            with ep.session() as s:
                return s.checksum("dataset.bin", "SHA-256")
        except Exception:  # noqa: BLE001
            return None

    def _fsspec(self, auth_url: str, user: str, password: str, home: str, digest: str, size: int) -> None:
        name = "read back through fsspec (uftp://)"
        if self.args.no_fsspec:
            self._check(name, "skipped", "--no-fsspec")
            return
        try:
            import fsspec

            _load_fsspec_adapter()
            fsspec.get_filesystem_class("uftp")
        except (ImportError, ValueError) as exc:
            self._check(name, "skipped", f"the fsspec adapter is not available ({exc})")
            return
        scheme, rest = auth_url.split("://", 1)
        url = f"uftp+{scheme}://{user}:{password}@{rest}:{home}/dataset.bin"
        self._say(name)
        t0 = time.perf_counter()
        try:
            h = hashlib.sha256()
            n = 0
            with fsspec.open(url, "rb") as f:
                while chunk := f.read(8 * MiB):
                    h.update(chunk)
                    n += len(chunk)
        except Exception as exc:  # noqa: BLE001
            from pyunicore_fast.cli.errors import describe

            self._check(name, "failed", describe(exc)[0].replace(password, "***"))
            return
        ok = h.hexdigest() == digest and n == size
        self._check(name, "passed" if ok else "failed", f"{n} bytes, sha256 {'matches' if ok else 'DIFFERS'}",
                    time.perf_counter() - t0, n)

    def _fuse(self, auth_url: str, user: str, password: str, home: str, scratch: str, digest: str, size: int) -> None:
        from pyunicore_fast.cli.embedded import reap
        from pyunicore_fast.cli.mount import fuse_usable

        name = "read back through a FUSE mount"
        if self.args.no_fuse:
            self._check(name, "skipped", "--no-fuse")
            return
        usable, why = fuse_usable()
        if not usable:
            self._check(name, "skipped", why)
            return
        from pyunicore_fast.uftp import uftpfuse

        mnt = os.path.join(scratch, "mnt")
        os.makedirs(mnt)
        self._say(name)
        env = dict(os.environ, UFTP_USER=user, UFTP_PASSWORD=password)
        log_file = os.path.join(scratch, "mount.log")
        proc = subprocess.Popen([sys.executable, "-m", "pyunicore_fast.cli", "mount", "-f", "-r", "-l", log_file,
                                 f"{auth_url}:{home}/", mnt], env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 30
            while not uftpfuse.is_mounted(mnt):
                if proc.poll() is not None or time.monotonic() > deadline:
                    err = (proc.stderr.read() if proc.poll() is not None and proc.stderr else "").strip()
                    self._check(name, "failed", f"the mount did not come up{': ' + err.splitlines()[-1] if err else ''}")
                    return
                time.sleep(0.1)
            t0 = time.perf_counter()
            try:
                got = _sha256_file(os.path.join(mnt, "dataset.bin"))
            except OSError as exc:
                self._check(name, "failed", f"reading through the mount failed: {exc}")
                return
            ok = got == digest
            self._check(name, "passed" if ok else "failed", f"sha256 {'matches' if ok else 'DIFFERS'}",
                        time.perf_counter() - t0, size)
        finally:
            if uftpfuse.is_mounted(mnt):
                uftpfuse.unmount(mnt) or uftpfuse.unmount(mnt, lazy=True)
            reap(proc)
            if proc.stderr is not None:
                proc.stderr.close()

    # -- output ----------------------------------------------------------------------------------------
    def _check(self, name: str, status: str, detail: str = "", seconds: float | None = None, nbytes: int = 0) -> None:
        self.checks.append(Check(name, status, detail, seconds, nbytes))
        if not self.args.json and not self.args.quiet:
            rate = f", {human_rate(nbytes, seconds)}" if seconds and nbytes else ""
            took = f" ({seconds:.2f} s{rate})" if seconds is not None else ""
            print(f"  [{status.upper():7}] {name}{took}: {detail}", file=sys.stderr, flush=True)

    def _say(self, msg: str) -> None:
        if not self.args.json and not self.args.quiet:
            print(f"demo: {msg}", file=sys.stderr, flush=True)

    def _print_summary(self, report: dict[str, Any] | None, ok: bool) -> None:
        print()
        print(f"{'step':40} {'result':8} {'seconds':>8} {'MiB/s':>9}  detail")
        for c in self.checks:
            j = c.as_json()
            secs = f"{c.seconds:.2f}" if c.seconds is not None else "-"
            rate = f"{j['rate_mib_s']:.1f}" if j["rate_mib_s"] is not None else "-"
            print(f"{c.name[:40]:40} {c.status:8} {secs:>8} {rate:>9}  {c.detail}")
        if report is not None:
            from pyunicore_fast.cli.bench import print_table

            print()
            print_table(report)
        print()
        print("all verifications passed" if ok else "VERIFICATION FAILED")


def _impl() -> str:
    import uftpcore

    return uftpcore.IMPLEMENTATION


def _load_fsspec_adapter() -> None:
    """Import the module that registers the ``uftp`` protocol (if fsspec's entry points did not)."""
    import importlib

    for name in ("pyunicore_fast.uftp.fsspec_impl", "pyunicore_fast.fsspec"):
        try:
            importlib.import_module(name)
            return
        except ImportError:
            continue


def _sha256_file(path: str) -> str:
    from pyunicore_fast.cli.files import local_checksum

    return local_checksum(path, "SHA-256")
