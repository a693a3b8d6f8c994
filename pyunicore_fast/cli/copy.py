"""``cp`` for UFTP locations, in the style of the Java ``uftp`` client.

    pyunicore-fast cp [-r] [-t SESSIONS] [-n STREAMS] [-B START-END] [-E] [-C] [-R]
                      [--no-verify] [--dry-run] [--json] SOURCE... TARGET

One side is local (a path, or ``-`` for stdin/stdout), the other a UFTP URL.  Whole files and
trees go through uftpcore's bulk engine (sessions x streams, ranged parallel chunks, resume,
checksum verification — on by default, as Globus does); byte ranges (``-B``) and stdin/stdout
use one session directly.  Every run can end with a JSON summary (``--json``, see
``docs/CLI.md``).

``-E`` is the Java client's "encrypt" flag; PyUNICORE's ``cp -E key=value,...`` (extra
parameters for server-to-server transfers) is recognised by its ``key=value`` argument.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import posixpath
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pyunicore_fast.cli import common, engine, locations
from pyunicore_fast.cli import progress as progress_mod
from pyunicore_fast.cli.errors import UsageError, VerificationError
from pyunicore_fast.cli.locations import LocalPath, UFTPPath
from pyunicore_fast.cli.remote import encryption_algorithm, make_endpoint
from pyunicore_fast.cli.units import MiB, human_rate, human_size, parse_byte_range, parse_size

SYNOPSIS = """Copies files between local paths and UNICORE storages.

UFTP (options of the Java 'uftp' client), one side local ('-' = stdin/stdout):
  pyunicore-fast cp [-r] [-t N] [-n N] [-B START-END] [-E] [-C] [-R] SOURCE... TARGET
  remote: https://HOST:PORT/rest/auth/NAME:/path   or   https://HOST:PORT/SITE/rest/core/storages/ID:/path
  checksums are verified after every transfer unless --no-verify.

REST (PyUNICORE's 'unicore cp'): .../rest/core/storages/ID/files/PATH, downloads with
wildcards, uploads, and server-to-server transfers (-E key=value,... extra parameters, -a)."""

_KV_RE = re.compile(r"^[A-Za-z0-9_.\-]+=[^,]*(,[A-Za-z0-9_.\-]+=[^,]*)*$")
_V = TypeVar("_V")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", nargs="+", help="Source(s)")
    p.add_argument("target", help="Target")
    u = p.add_argument_group("UFTP transfers")
    u.add_argument("-r", "--recursive", action="store_true", help="Copy directories recursively")
    u.add_argument("-t", "--threads", "--sessions", dest="sessions", type=int, default=1, metavar="N",
                   help="Parallel UFTP sessions; big files are split into ranges (default 1)")
    u.add_argument("-n", "--streams", type=int, default=1, metavar="N", help="TCP streams per session (default 1)")
    u.add_argument("-B", "--bytes", metavar="RANGE", dest="byte_range",
                   help="Byte range START-END (inclusive, K/M/G suffixes), START- or N; "
                        "a trailing -p writes it at the same offset of the target")
    u.add_argument("-E", "--encrypt", action="store_true",
                   help="Encrypt data (AES; UFTP_ENCRYPTION_ALGORITHM=BLOWFISH to change)")
    u.add_argument("-C", "--compress", action="store_true", help="Compress data (gzip)")
    u.add_argument("-R", "--resume", action="store_true", help="Resume an interrupted download/upload")
    u.add_argument("--no-verify", dest="verify", action="store_false",
                   help="Do not compare checksums after the transfer")
    u.add_argument("--checksum", dest="checksum_algorithm", default=None, type=str.upper,
                   choices=("MD5", "SHA-1", "SHA-256", "SHA-512"), help="Checksum algorithm for verification")
    u.add_argument("-T", "--split-threshold", metavar="SIZE",
                   help="With -t: split files of at least SIZE into ranges (default 64M)")
    u.add_argument("-K", "--bwlimit", metavar="RATE", help="Bandwidth limit per transfer, bytes/s (K/M/G suffixes)")
    u.add_argument("--archive", action="store_true",
                   help="Upload trees as tar streams the server unpacks (needs ARCHIVE support)")
    u.add_argument("-d", "--dry-run", action="store_true", help="Show what would be copied, copy nothing")
    common.add_output_args(p, progress=True)
    r = p.add_argument_group("REST storages (PyUNICORE)")
    r.add_argument("--extra-parameters", metavar="k=v,...",
                   help="Additional settings for server-to-server transfers (PyUNICORE: -E k=v,...)")
    r.add_argument("-a", "--asynchronous", required=False, action="store_true",
                   help="(server-server only) Asynchronous mode, don't wait for transfer to finish")


def preprocess(args: list[str]) -> list[str]:
    """``-E key=value,...`` (PyUNICORE) becomes ``--extra-parameters``; a bare ``-E`` stays the
    encryption flag (Java uftp)."""
    out: list[str] = []
    i = 0
    while i < len(args):
        tok = args[i]
        if tok == "--":
            out.extend(args[i:])
            break
        if tok == "-E" and i + 1 < len(args) and _KV_RE.match(args[i + 1]):
            out += ["--extra-parameters", args[i + 1]]
            i += 2
            continue
        if tok.startswith("-E") and len(tok) > 2 and _KV_RE.match(tok[2:]):
            out.append("--extra-parameters=" + tok[2:])
        else:
            out.append(tok)
        i += 1
    return out


def reject_uftp_only_options(args: argparse.Namespace) -> None:
    """UFTP options make no sense for REST copies: say so instead of ignoring them."""
    used = [flag for flag, on in (("-t", args.sessions != 1), ("-n", args.streams != 1), ("-B", args.byte_range),
                                   ("-E/--encrypt", args.encrypt), ("-C", args.compress), ("-R", args.resume),
                                   ("-r", args.recursive), ("-K", args.bwlimit), ("-T", args.split_threshold),
                                   ("--archive", args.archive), ("--dry-run", args.dry_run),
                                   ("--json", args.json)) if on]
    if used:
        raise UsageError(f"{', '.join(used)}: only for UFTP locations (https://HOST:PORT/rest/auth/NAME:/path)")


@dataclass
class Job:
    """One unit of work: a file, a tree, a byte range, or a stream."""

    kind: str  # "file" | "tree" | "range" | "stream"
    direction: str  # "download" | "upload"
    loc: UFTPPath
    remote: str  # session path
    local: str  # local path or "-"
    size: int | None = None
    files: int = 1
    #: the source's base name (where it lands inside a target directory)
    name: str = ""
    result: dict[str, Any] = field(default_factory=dict)

    @property
    def source(self) -> str:
        return self.loc.url_of(self.remote) if self.direction == "download" else self.local

    @property
    def target(self) -> str:
        return self.local if self.direction == "download" else self.loc.url_of(self.remote)


class UFTPCopy:
    """Plans and runs one ``cp`` invocation with a UFTP side."""

    def __init__(self, cmd: Any, sources: list[locations.Location], target: locations.Location):
        self.cmd = cmd
        self.args = cmd.args
        self.sources = sources
        self.target = target
        self._endpoints: dict[tuple[str, str], Any] = {}
        self.algo = self.args.checksum_algorithm or "SHA-256"

    # -- options ------------------------------------------------------------------------------
    def _validate(self) -> None:
        a = self.args
        if a.sessions < 1 or a.sessions > 64:
            raise UsageError("-t/--threads must be between 1 and 64")
        if a.streams < 1 or a.streams > 16:
            raise UsageError("-n/--streams must be between 1 and 16")
        if a.extra_parameters or a.asynchronous:
            raise UsageError("-E key=value / -a are for REST server-to-server copies, not UFTP")
        if a.byte_range and a.resume:
            raise UsageError("-B and -R cannot be combined")
        if a.byte_range and a.recursive:
            raise UsageError("-B cannot be combined with -r")
        self.range = _option(parse_byte_range, a.byte_range, "-B")
        self.bwlimit = _option(parse_size, a.bwlimit, "-K")
        self.split_threshold = _option(parse_size, a.split_threshold, "-T")
        if self.split_threshold is not None and self.split_threshold < 1:
            raise UsageError("-T must be positive")
        if a.archive and (a.resume or not a.recursive):
            raise UsageError("--archive needs -r and cannot be combined with -R")
        self.encryption = encryption_algorithm(a.encrypt)

    def endpoint(self, loc: UFTPPath) -> Any:
        key = (loc.service_url, loc.base_dir)
        if key not in self._endpoints:
            self._endpoints[key] = make_endpoint(loc, self.cmd.credential, streams=self.args.streams,
                                                 encryption=self.encryption, compress=self.args.compress,
                                                 timeout=self.args.timeout)
        return self._endpoints[key]

    # -- planning ----------------------------------------------------------------------------------
    def plan(self) -> list[Job]:
        remote_sources = [s for s in self.sources if isinstance(s, UFTPPath)]
        if isinstance(self.target, UFTPPath):
            if remote_sources:
                raise UsageError("remote-to-remote copies are not supported: one side of cp must be local "
                                 "(UNICORE server-to-server transfers: use REST storage URLs)")
            if any(not isinstance(s, LocalPath) for s in self.sources):
                raise UsageError("cannot mix REST storage URLs and UFTP URLs in one cp")
            return self._plan_upload()
        if not isinstance(self.target, LocalPath):
            raise UsageError("cannot mix REST storage URLs and UFTP URLs in one cp")
        if len(remote_sources) != len(self.sources):
            raise UsageError("with a local target every source must be a UFTP URL")
        return self._plan_download(remote_sources)

    def _plan_download(self, sources: list[UFTPPath]) -> list[Job]:
        target = self.target.path  # type: ignore[union-attr]
        jobs: list[Job] = []
        for src in sources:
            with self.endpoint(src).session() as s:
                for path in common.expand(s, src):
                    info = s.stat(path)
                    name = posixpath.basename(path.rstrip("/")) if path not in ("", ".") else \
                        posixpath.basename(src.base_dir.rstrip("/")) or "home"
                    if info.is_dir:
                        if not self.args.recursive:
                            raise UsageError(f"{src.url_of(path)} is a directory (use -r)")
                        jobs.append(Job("tree", "download", src, path, "", None, 0, name))
                    else:
                        jobs.append(Job("file", "download", src, path, "", info.size, 1, name))
        if not jobs:
            raise FileNotFoundError("nothing to copy")
        many = len(jobs) > 1
        if target == "-":
            if many or jobs[0].kind != "file":
                raise UsageError("only a single file can be written to stdout ('-')")
            jobs[0].kind = "range" if self.range else "stream"
            jobs[0].local = "-"
            return jobs
        into_dir = os.path.isdir(target) or target.endswith(os.sep) or many
        if many and not os.path.isdir(target):
            if target.endswith(os.sep):
                os.makedirs(target, exist_ok=True)
            else:
                raise UsageError(f"target {target} must be an existing directory when copying several files")
        for job in jobs:
            job.local = os.path.join(target, job.name) if into_dir else target
            if self.range and job.kind == "file":
                job.kind = "range"
        return jobs

    def _plan_upload(self) -> list[Job]:
        dest: UFTPPath = self.target  # type: ignore[assignment]
        sources: list[LocalPath] = self.sources  # type: ignore[assignment]
        jobs: list[Job] = []
        many = len(sources) > 1
        with self.endpoint(dest).session() as s:
            remote_dir = dest.names_directory
            if remote_dir and dest.rel and not self.args.dry_run:
                s.makedirs(dest.rel)  # "cp file URL:/new/dir/" creates the directory
            if not remote_dir:
                try:
                    remote_dir = s.stat(dest.session_path).is_dir
                except FileNotFoundError:
                    remote_dir = False
            if many and not remote_dir:
                raise UsageError(f"target {dest} must be a directory when copying several files (end it with '/')")
            for src in sources:
                if src.is_stdio:
                    if many or remote_dir:
                        raise UsageError("stdin ('-') can only be copied to a single named remote file")
                    jobs.append(Job("range" if self.range else "stream", "upload", dest, dest.session_path, "-", None))
                    continue
                if not os.path.exists(src.path):
                    raise FileNotFoundError(f"{src.path}: No such file or directory")
                name = os.path.basename(os.path.normpath(src.path))
                rpath = common.join(dest.rel, name) if remote_dir else dest.session_path
                if os.path.isdir(src.path):
                    if not self.args.recursive:
                        raise UsageError(f"{src.path} is a directory (use -r)")
                    if not remote_dir and dest.rel and not many:
                        rpath = dest.session_path
                    nfiles, nbytes = _local_tree_size(src.path)
                    jobs.append(Job("tree", "upload", dest, rpath, src.path, nbytes, nfiles))
                else:
                    size = os.path.getsize(src.path)
                    jobs.append(Job("range" if self.range else "file", "upload", dest, rpath, src.path, size))
        return jobs

    # -- running -------------------------------------------------------------------------------------
    def run(self) -> int:
        summary = self.execute()
        if self.args.json:
            to_stdout = any(i["target"] == "-" for i in summary["items"])
            common.print_json(summary, sys.stderr if to_stdout else sys.stdout)
        elif self._show and not self.args.quiet and not self.args.dry_run and summary["items"] \
                and summary["items"][0]["target"] != "-":
            print(f"{summary['files']} file(s), {human_size(summary['bytes'])} in {summary['seconds']:.2f} s "
                  f"({human_rate(summary['bytes'], summary['seconds'])}), "
                  f"{'verified ' + str(summary['checksum']) if summary['verified'] else 'not verified'}",
                  file=sys.stderr)
        self.raise_for_mismatch(summary)
        return 0

    def execute(self) -> dict[str, Any]:
        """Plan and run (or describe, with --dry-run); returns the JSON summary."""
        self._validate()
        jobs = self.plan()
        self._show = progress_mod.wanted(force=self.args.progress, quiet=self.args.quiet)
        t0 = time.perf_counter()
        for job in jobs:
            if self.args.dry_run:
                self._describe_dry(job)
            else:
                self._run_job(job, self._show)
        return self.summary(jobs, time.perf_counter() - t0)

    @staticmethod
    def raise_for_mismatch(summary: dict[str, Any]) -> None:
        failed = [i for i in summary["items"] if i.get("verified") is False and summary.get("checksum")]
        if failed:
            raise VerificationError(f"checksum mismatch: {failed[0]['source']} -> {failed[0]['target']}"
                                    + (f" and {len(failed) - 1} more" if len(failed) > 1 else ""))

    def _describe_dry(self, job: Job) -> None:
        if job.kind == "tree" and job.direction == "download":
            with self.endpoint(job.loc).session() as s:
                entries = [(common.join(d, f.name), f.size) for d, _dirs, files in common.walk(s, job.remote)
                           for f in files]
            job.files, job.size = len(entries), sum(sz for _p, sz in entries)
        if job.kind == "range" and self.range and job.size is not None:
            offset, length, _at = self.range
            job.size = max(0, min(job.size - offset, length if length is not None else job.size))
        job.result.update(status="planned", bytes=job.size or 0, files=job.files)
        if not self.args.json and not self.args.quiet:
            what = f"{job.files} files, " if job.kind == "tree" else ""
            print(f"would copy {job.source} -> {job.target} ({what}{human_size(job.size or 0)})")

    def _run_job(self, job: Job, show: bool) -> None:
        label = posixpath.basename(job.remote.rstrip("/")) if job.direction == "download" else \
            os.path.basename(job.local.rstrip(os.sep)) or job.local
        with progress_mod.Progress(job.size, label[:30], show) as bar:
            if job.kind in ("file", "tree"):
                self._run_engine(job, bar)
            elif job.kind == "range":
                self._run_range(job, bar)
            else:
                self._run_stream(job, bar)
        self.cmd.verbose(f"{job.source} -> {job.target}: {human_size(job.result.get('bytes', 0))}")

    def _run_engine(self, job: Job, bar: progress_mod.Progress) -> None:
        a = self.args
        name = ("download" if job.direction == "download" else "upload") + ("_tree" if job.kind == "tree" else "")
        first, second = (job.remote, job.local) if job.direction == "download" else (job.local, job.remote)
        extra: dict[str, Any] = {}
        if self.split_threshold is not None:
            extra["split_threshold"] = self.split_threshold
        if a.archive:
            extra["archive"] = True
        out = engine.call(name, self.endpoint(job.loc), first, second, sessions=a.sessions,
                          streams=a.streams if a.streams > 1 else None, verify=a.verify, algo=self.algo,
                          resume=a.resume, progress=bar, bandwidth_limit=self.bwlimit, **extra)
        for note in out.notes:
            self.cmd.verbose(f"note: {note}")
        job.files = out.files
        job.result.update(status="copied", bytes=out.bytes, files=out.files, seconds=out.seconds,
                          verified=bool(out.verified) if a.verify else False, resumed_bytes=out.skipped_bytes,
                          skipped_files=out.skipped_files, sessions_used=out.sessions, streams_used=out.streams)
        if job.kind == "file" and len(out.items) == 1:
            job.result["checksum"] = out.items[0]["checksum"]
        if a.verify and not out.verified and job.kind == "file" and out.bytes:
            self._verify_file(job)  # the engine could not compare every byte: compare whole files

    def _verify_file(self, job: Job) -> None:
        """The engine did not say whether it verified: compare the server's HASH ourselves."""
        if job.kind != "file":
            job.result["verified"] = None
            return
        from pyunicore_fast.cli.files import local_checksum

        with self.endpoint(job.loc).session() as s:
            remote_sum = s.checksum(job.remote, self.algo)
        local_sum = local_checksum(job.local, self.algo)
        job.result.update(checksum=local_sum, verified=remote_sum == local_sum)

    def _run_range(self, job: Job, bar: progress_mod.Progress) -> None:
        """``-B``: one session moves ``[offset, offset+length)``; verified with a ranged HASH."""
        assert self.range is not None
        offset, length, at_offset = self.range
        with self.endpoint(job.loc).session() as s:
            if job.direction == "download":
                size = s.stat(job.remote).size
                n = max(0, size - offset) if length is None else max(0, min(length, size - offset))
                bar.set_total(n)
                if job.local == "-":
                    hasher = _HashingWriter(sys.stdout.buffer, self.algo)
                    got = s.download_fileobj(job.remote, hasher, offset, n)
                    bar.update(got)
                    sys.stdout.buffer.flush()
                    local_sum = hasher.hexdigest()
                elif at_offset:
                    fd = os.open(job.local, os.O_WRONLY | os.O_CREAT, 0o644)
                    try:
                        got = s.download_to_fd(job.remote, fd, offset, n, local_offset=offset, progress=bar)
                    finally:
                        os.close(fd)
                    local_sum = _checksum_range(job.local, self.algo, offset, got) if self.args.verify else None
                else:
                    got = s.download(job.remote, job.local, offset=offset, length=n, progress=bar)
                    local_sum = _checksum_range(job.local, self.algo, 0, got) if self.args.verify else None
                remote_sum = s.hash(job.remote, self.algo, offset, got)[3] if self.args.verify and got else None
            else:
                if job.local == "-":
                    raise UsageError("-B cannot be used with stdin")
                size = os.path.getsize(job.local)
                n = max(0, size - offset) if length is None else max(0, min(length, size - offset))
                bar.set_total(n)
                with open(job.local, "rb") as f:
                    got = s.upload_from_fd(f.fileno(), job.remote, offset, n, remote_offset=offset, truncate=False,
                                           progress=bar)
                local_sum = _checksum_range(job.local, self.algo, offset, got) if self.args.verify else None
                remote_sum = s.hash(job.remote, self.algo, offset, got)[3] if self.args.verify and got else None
        verified = None if not self.args.verify else (True if got == 0 else local_sum == remote_sum)
        job.size = got
        job.result.update(status="copied", bytes=got, files=1, range={"offset": offset, "length": got},
                          checksum=local_sum, verified=verified if self.args.verify else False)

    def _run_stream(self, job: Job, bar: progress_mod.Progress) -> None:
        """stdin -> remote file, or remote file -> stdout, on one session, hashed on the fly."""
        with self.endpoint(job.loc).session() as s:
            if job.direction == "download":
                writer = _HashingWriter(sys.stdout.buffer, self.algo, bar)
                got = s.download_fileobj(job.remote, writer)
                sys.stdout.buffer.flush()
            else:
                reader = _HashingReader(sys.stdin.buffer, self.algo, bar)
                got = s.upload_fileobj(reader, job.remote)
                writer = reader  # type: ignore[assignment]
            local_sum = writer.hexdigest()
            remote_sum = s.checksum(job.remote, self.algo) if self.args.verify else None
        job.size = got
        job.result.update(status="copied", bytes=got, files=1, checksum=local_sum,
                          verified=(local_sum == remote_sum) if self.args.verify else False)

    # -- reporting ------------------------------------------------------------------------------------
    def summary(self, jobs: list[Job], seconds: float) -> dict[str, Any]:
        """The JSON document of ``cp --json`` (schema in docs/CLI.md)."""
        nbytes = sum(int(j.result.get("bytes") or 0) for j in jobs)
        files = sum(int(j.result.get("files") or (1 if j.kind != "tree" else 0)) for j in jobs)
        flags = [j.result.get("verified") for j in jobs]
        verified = bool(jobs) and all(f is True for f in flags) and not self.args.dry_run
        direction = jobs[0].direction if jobs else None
        return {
            "schema": common.SCHEMA_VERSION,
            "command": "cp",
            "ok": all(f is not False for f in flags) or not self.args.verify,
            "dry_run": bool(self.args.dry_run),
            "direction": direction,
            "source": [str(s) for s in self.sources],
            "target": str(self.target),
            "files": files,
            "bytes": nbytes,
            "seconds": round(seconds, 6),
            "rate": round(nbytes / seconds, 1) if seconds > 0 and not self.args.dry_run else None,
            "rate_mib_s": round(nbytes / seconds / MiB, 3) if seconds > 0 and not self.args.dry_run else None,
            "sessions": self.args.sessions,
            "streams": self.args.streams,
            "sessions_used": max((int(j.result.get("sessions_used") or 0) for j in jobs), default=0) or None,
            "streams_used": max((int(j.result.get("streams_used") or 0) for j in jobs), default=0) or None,
            "encryption": self.encryption,
            "compression": bool(self.args.compress),
            "resume": bool(self.args.resume),
            "resumed_bytes": sum(int(j.result.get("resumed_bytes") or 0) for j in jobs),
            "range": ({"offset": self.range[0], "length": self.range[1]} if self.range else None),
            "verified": verified,
            "checksum": self.algo if self.args.verify else None,
            "items": [{"source": j.source, "target": j.target, "kind": j.kind, "files": j.result.get("files", 1),
                       "bytes": int(j.result.get("bytes") or 0), "checksum": j.result.get("checksum"),
                       "verified": j.result.get("verified"), "status": j.result.get("status", "planned")}
                      for j in jobs],
        }


class _HashingWriter:
    """A write-only file object that hashes what passes through (download to stdout)."""

    def __init__(self, sink: Any, algo: str, bar: Any = None):
        self._sink = sink
        self._h = hashlib.new(algo.replace("-", "").lower())
        self._bar = bar

    def write(self, data: Any) -> int:
        self._h.update(data)
        n = self._sink.write(data)
        if self._bar is not None:
            self._bar.update(len(data))
        return n if n is not None else len(data)

    def flush(self) -> None:
        self._sink.flush()

    def hexdigest(self) -> str:
        return self._h.hexdigest()


class _HashingReader:
    """A read-only file object that hashes what passes through (upload from stdin)."""

    def __init__(self, source: Any, algo: str, bar: Any = None):
        self._source = source
        self._h = hashlib.new(algo.replace("-", "").lower())
        self._bar = bar

    def read(self, n: int = -1) -> bytes:
        data = self._source.read(n)
        self._h.update(data)
        if self._bar is not None:
            self._bar.update(len(data))
        return data

    def readinto(self, buf: Any) -> int:
        n = self._source.readinto(buf)
        if n:
            self._h.update(memoryview(buf)[:n])
            if self._bar is not None:
                self._bar.update(n)
        return n or 0

    def readable(self) -> bool:
        return True

    def hexdigest(self) -> str:
        return self._h.hexdigest()


def _option(parse: Callable[[str], _V], text: str | None, flag: str) -> _V | None:
    """``parse(text)`` of an optional option (None when not given); a ValueError becomes the
    usage error that names the option ``flag``."""
    if not text:
        return None
    try:
        return parse(text)
    except ValueError as exc:
        raise UsageError(f"{flag}: {exc}") from None


def _checksum_range(path: str, algo: str, offset: int, length: int) -> str:
    from pyunicore_fast.cli.files import local_checksum

    return local_checksum(path, algo, offset, length)


def _local_tree_size(path: str) -> tuple[int, int]:
    files = total = 0
    for d, _dirs, names in os.walk(path):
        for n in names:
            files += 1
            try:
                total += os.path.getsize(os.path.join(d, n))
            except OSError:
                pass
    return files, total
