"""Benchmark measurements against one UFTP site (used by ``bench`` and ``demo``).

Each measurement moves a generated file (or a tree of small files) through fresh sessions
and reports seconds and throughput; metadata latency is the median of many ``MLST`` round
trips.  The same site is optionally measured with PyUNICORE 2.0.2's UFTP client (ftplib) and
with curl, and everything can run through the UFTP-aware link emulator to ask "what if the
link had 25 ms RTT and a 256 KiB window?".

All results are ``Row`` objects; a measurement that cannot run (no engine, no curl, an
error) becomes a row with ``skipped`` set instead of aborting the whole benchmark.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import importlib.util
import logging
import os
import secrets
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from pyunicore_fast.cli import engine, remote
from pyunicore_fast.cli.locations import UFTPPath
from pyunicore_fast.cli.units import KiB, MiB

log = logging.getLogger(__name__)


@dataclass
class BenchConfig:
    """What to measure; the defaults finish in well under a minute on two cores."""

    size: int = 64 * MiB
    streams: list[int] = field(default_factory=lambda: [1, 2, 4])
    sessions: list[int] = field(default_factory=lambda: [1, 2, 4])
    small_files: int = 200
    small_size: int = 1 * KiB
    mlst: int = 200
    runs: int = 1
    encryption: bool = True
    compression: bool = True
    ranges: bool = True
    compare: bool = True
    rtt_ms: float | None = None
    window_kib: int | None = None
    rate_mib: float | None = None
    scratch: str | None = None
    timeout: float = 60.0

    @property
    def emulated(self) -> bool:
        return self.rtt_ms is not None or self.window_kib is not None or self.rate_mib is not None

    def link(self) -> dict[str, Any] | None:
        if not self.emulated:
            return None
        return {"rtt_ms": self.rtt_ms or 0.0, "window_kib": self.window_kib or 4096, "rate_mib": self.rate_mib or 0.0}


@dataclass
class BenchTarget:
    """The site under test: a UFTP directory location plus a credential."""

    location: UFTPPath
    credential: Any
    label: str = ""
    embedded: bool = False
    #: plain (user, password) for the PyUNICORE comparison, when known
    basic: tuple[str, str] | None = None


@dataclass
class Row:
    """One measurement."""

    name: str
    op: str
    sessions: int = 1
    streams: int = 1
    encryption: str | None = None
    compression: bool = False
    bytes: int = 0
    files: int = 0
    seconds: float | None = None
    latency_ms: float | None = None
    client: str = "pyunicore_fast"
    skipped: str | None = None
    #: what the server granted (a site may refuse extra sessions or streams)
    sessions_used: int | None = None
    streams_used: int | None = None

    @property
    def rate_mib_s(self) -> float | None:
        if self.seconds and self.bytes:
            return round(self.bytes / self.seconds / MiB, 2)
        return None

    def as_json(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["seconds"] = None if self.seconds is None else round(self.seconds, 6)
        d["latency_ms"] = None if self.latency_ms is None else round(self.latency_ms, 4)
        d["rate"] = round(self.bytes / self.seconds, 1) if self.seconds and self.bytes else None
        d["rate_mib_s"] = self.rate_mib_s
        d["files_per_s"] = round(self.files / self.seconds, 1) if self.seconds and self.files > 1 else None
        return d


# ------------------------------------------------------------------------------- link emulator
def load_link_emulator() -> Any:
    """``benchmarks/linkemu.py`` of the source tree (it is not part of the installed package)."""
    import pyunicore_fast

    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(pyunicore_fast.__file__))),
                        "benchmarks", "linkemu.py")
    if not os.path.exists(path):
        from pyunicore_fast.cli.errors import CLIError

        raise CLIError("link emulation needs benchmarks/linkemu.py from the source tree "
                       "(run from a clone of the repository)")
    spec = importlib.util.spec_from_file_location("pyunicore_fast_linkemu", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _proxied(endpoint: Any, host: str, port: int) -> Any:
    """The same endpoint, but every ticket it hands out points at the emulator."""
    import uftpcore

    @dataclass
    class ViaProxy(type(endpoint)):  # type: ignore[misc]
        proxy: tuple[str, int] = ("127.0.0.1", 0)

        def new_ticket(self, **kw: Any) -> Any:
            return _rewrite(super().new_ticket(**kw), self.proxy)

    values = {f.name: getattr(endpoint, f.name) for f in dataclasses.fields(endpoint) if f.init}
    if values.get("ticket") is not None:
        values["ticket"] = _rewrite(values["ticket"], (host, port))
    ep = ViaProxy(**values, proxy=(host, port))
    assert isinstance(ep, uftpcore.Endpoint)
    return ep


def _rewrite(ticket: Any, proxy: tuple[str, int]) -> Any:
    return dataclasses.replace(ticket, host=proxy[0], hosts=(), port=proxy[1])


# ------------------------------------------------------------------------------- the runner
class BenchRunner:
    """Runs the measurements of ``config`` against ``target``; ``rows`` collects results."""

    def __init__(self, target: BenchTarget, config: BenchConfig, say: Callable[[str], None] | None = None):
        self.target = target
        self.config = config
        self.say = say or (lambda msg: None)
        self.rows: list[Row] = []
        self.workdir = f"pyunicore-fast-bench-{secrets.token_hex(4)}"
        self._proxy: tuple[str, int] | None = None
        self._endpoints: dict[tuple[str | None, bool], Any] = {}
        self._main: Any = None

    # -- endpoints and sessions ----------------------------------------------------------------
    # Sites limit sessions per user (uftpd MAX_CONNECTIONS, 16 by default) and reap finished
    # ones only every 5 s, so the benchmark authenticates once per ticket kind and does every
    # single-session measurement on one long-lived session.
    def endpoint(self, encryption: str | None = None, compress: bool = False) -> Any:
        """The (cached, already authenticated) endpoint for plain, encrypted or compressed data."""
        key = (encryption, compress)
        ep = self._endpoints.get(key)
        if ep is None:
            ep = remote.make_endpoint(self.target.location, self.target.credential, encryption=encryption,
                                      compress=compress, timeout=self.config.timeout)
            if self._proxy is not None:
                ep = _proxied(ep, *self._proxy)
            ep.ticket = ep.new_ticket()
            self._endpoints[key] = ep
        return ep

    @contextlib.contextmanager
    def session(self, encryption: str | None = None, compress: bool = False) -> Iterator[Any]:
        """The main session for plain data; a new one (closed afterwards) for the others."""
        if encryption is None and not compress:
            if self._main is None or self._main.closed:
                self._main = self.endpoint().session()
            yield self._main
            return
        s = self.endpoint(encryption, compress).session()
        try:
            yield s
        finally:
            s.close()

    def path(self, name: str) -> str:
        """A session path inside the benchmark's remote work directory."""
        base = self.target.location.rel
        return "/".join(p for p in (base, self.workdir, name) if p)

    # -- orchestration ---------------------------------------------------------------------------
    def run(self) -> list[Row]:
        cfg = self.config
        scratch = tempfile.mkdtemp(prefix="pyunicore-fast-bench-", dir=cfg.scratch)
        try:
            with self._link():
                with self.session() as s:
                    s.makedirs(self.path(""))
                try:
                    self._run_all(scratch)
                finally:
                    self._cleanup_remote()
                    self._main.close()
                    self._endpoints.clear()
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        return self.rows

    @contextlib.contextmanager
    def _link(self) -> Iterator[None]:
        if not self.config.emulated:
            yield
            return
        linkemu = load_link_emulator()
        plain = remote.make_endpoint(self.target.location, self.target.credential, timeout=self.config.timeout)
        ticket = plain.ticket = plain.new_ticket()  # tells where uftpd is; reused below
        link = self.config.link() or {}
        emu = linkemu.LinkEmulator(ticket.port, rtt=link["rtt_ms"] / 1000.0, window=int(link["window_kib"]) * KiB,
                                   rate=float(link["rate_mib"]) * MiB, target_host=ticket.host)
        with emu:
            self._proxy = ("127.0.0.1", emu.port)
            self._endpoints[(None, False)] = _proxied(plain, *self._proxy)
            self.say(f"link emulator on 127.0.0.1:{emu.port}: RTT {link['rtt_ms']} ms, window "
                     f"{link['window_kib']} KiB, rate cap {link['rate_mib'] or 'none'} MiB/s")

            try:
                yield
            finally:
                self._proxy = None

    def _run_all(self, scratch: str) -> None:
        cfg = self.config
        src = os.path.join(scratch, "data.bin")
        out = os.path.join(scratch, "out.bin")
        self.say(f"generating a {cfg.size / MiB:.0f} MiB test file")
        generate_file(src, cfg.size)
        data = self.path("data.bin")
        size = cfg.size

        self._measure(Row("upload", "upload", bytes=size, files=1), lambda s: s.upload(src, data), session={})
        self._measure(Row("download", "download", bytes=size, files=1), lambda s: s.download(data, out), session={})
        for n in cfg.streams:
            if n > 1:
                self._measure(Row(f"download, {n} streams", "download", streams=n, bytes=size, files=1),
                              lambda s, n=n: s.download(data, out, streams=n), session={})
        for n in cfg.sessions:
            if n > 1:
                self._measure(Row(f"download, {n} sessions", "download", sessions=n, bytes=size, files=1),
                              lambda ep, n=n: self._engine(ep, "download", data, out, sessions=n), endpoint=True)
        most = max([n for n in cfg.sessions if n > 1], default=0)
        if most:
            self._measure(Row(f"upload, {most} sessions", "upload", sessions=most, bytes=size, files=1),
                          lambda ep: self._engine(ep, "upload", src, self.path("data2.bin"), sessions=most),
                          endpoint=True)
        if cfg.encryption:
            self._measure(Row("download, encrypted (AES)", "download", encryption="AES", bytes=size, files=1),
                          lambda s: s.download(data, out), session={"encryption": "AES"})
        if cfg.compression:
            self._measure(Row("download, compressed", "download", compression=True, bytes=size, files=1),
                          lambda s: s.download(data, out), session={"compress": True})
        if cfg.ranges:
            length = max(1, size // 2)
            self._measure(Row("download, byte range (-B)", "range", bytes=length, files=1),
                          lambda s: s.download(data, out, offset=size // 4, length=length), session={})
        if cfg.small_files:
            self._small_files(scratch)
        if cfg.mlst:
            self._mlst(data)
        if cfg.compare:
            self._pyunicore(data, out)
            self._curl(data, out)

    def _measure(self, row: Row, fn: Callable[[Any], Any], *, session: dict[str, Any] | None = None,
                 endpoint: bool = False) -> Row:
        """Time ``fn`` (best of ``runs``).  Authentication and login happen before the clock
        starts: ``session=`` passes a logged-in session with those options, ``endpoint=True`` an
        authenticated endpoint (the engine then opens its sessions inside the timing, as a
        real parallel transfer must)."""
        self.rows.append(row)
        if endpoint and not engine.available():
            row.skipped = "uftpcore.transfer not available"
            return row
        self.say(f"measuring: {row.name}")
        best = None
        try:
            with contextlib.ExitStack() as stack:
                if session is not None:
                    arg: Any = stack.enter_context(self.session(**session))
                elif endpoint:
                    arg = self.endpoint()
                else:
                    arg = None
                for _ in range(max(1, self.config.runs)):
                    t0 = time.perf_counter()
                    result = fn(arg)
                    elapsed = time.perf_counter() - t0
                    best = elapsed if best is None else min(best, elapsed)
                    used = getattr(result, "sessions", None)
                    if used:
                        row.sessions_used = min(row.sessions_used or used, used)
                if session is not None and arg is not None:
                    row.streams_used = max(row.streams_used or 0, int(getattr(arg, "streams_used", 0) or 0)) or None
        except Exception as exc:
            log.debug("measurement %s failed", row.name, exc_info=True)
            row.skipped = f"error: {type(exc).__name__}: {exc}"
            return row
        row.seconds = best
        return row

    def _engine(self, ep: Any, name: str, first: str, second: str, sessions: int = 1) -> Any:
        """A bulk transfer without verification (measures the data path); single files are
        split into ``sessions`` ranges whatever their size."""
        extra = {} if name.endswith("_tree") else {"split_threshold": max(1, self.config.size // max(1, sessions))}
        return engine.call(name, ep, first, second, sessions=sessions, verify=False, **extra)

    def _small_files(self, scratch: str) -> None:
        cfg = self.config
        n, each = cfg.small_files, cfg.small_size
        tree = os.path.join(scratch, "small")
        os.makedirs(tree)
        payload = os.urandom(each)
        for i in range(n):
            with open(os.path.join(tree, f"f{i:05d}.dat"), "wb") as f:
                f.write(payload)
        most = max(cfg.sessions or [1])
        rtree = self.path("small")
        self._measure(Row(f"upload {n} x {each} B files", "upload_tree", sessions=most, bytes=n * each, files=n),
                      lambda ep: self._engine(ep, "upload_tree", tree, rtree, sessions=most), endpoint=True)
        back = os.path.join(scratch, "small-back")
        self._measure(Row(f"download {n} x {each} B files", "download_tree", sessions=most, bytes=n * each, files=n),
                      lambda ep: self._engine(ep, "download_tree", rtree, back, sessions=most), endpoint=True)

    def _mlst(self, data: str) -> None:
        row = Row("MLST round trip (median)", "mlst", files=self.config.mlst)
        self.rows.append(row)
        self.say("measuring: MLST latency")
        try:
            with self.session() as s:
                row.latency_ms = median_latency(lambda: s.stat(data), self.config.mlst) * 1000
        except Exception as exc:  # noqa: BLE001
            row.skipped = f"error: {type(exc).__name__}: {exc}"

    # -- references -------------------------------------------------------------------------------
    def _pyunicore(self, data: str, out: str) -> None:
        down = Row("download (PyUNICORE UFTP)", "download", bytes=self.config.size, files=1, client="pyunicore")
        lat = Row("MLST round trip (PyUNICORE)", "mlst", files=self.config.mlst, client="pyunicore")
        try:
            from pyunicore.uftp.uftp import UFTP as PyUFTP
        except ImportError:
            down.skipped = lat.skipped = "PyUNICORE is not installed"
            self.rows += [down, lat]
            return
        ticket = self.endpoint().ticket  # persistent: one more login on the same job

        def connect() -> Any:
            u = PyUFTP()
            u.open_uftp_session(ticket.host, ticket.port, ticket.secret)
            return u

        def download(u: Any) -> None:
            sock = u.get_read_socket(data, 0)
            with sock, open(out, "wb") as f:
                while chunk := sock.recv(65536):
                    f.write(chunk)
            u.ftp.voidresp()

        self.rows.append(down)
        try:
            u = connect()
        except Exception as exc:  # noqa: BLE001
            down.skipped = f"error: {type(exc).__name__}: {exc}"
        else:
            self.rows.pop()
            try:
                self._measure(down, lambda _arg: download(u))
            finally:
                u.close()
        self.rows.append(lat)
        try:
            u = connect()
            try:
                lat.latency_ms = median_latency(lambda: u.stat(data), self.config.mlst) * 1000
            finally:
                u.close()
        except Exception as exc:  # noqa: BLE001
            lat.skipped = f"error: {type(exc).__name__}: {exc}"

    def _curl(self, data: str, out: str) -> None:
        row = Row("download (curl)", "download", bytes=self.config.size, files=1, client="curl")
        curl = shutil.which("curl")
        if curl is None:
            row.skipped = "curl is not on PATH"
            self.rows.append(row)
            return

        def download(_arg: Any) -> None:
            ticket = self.endpoint().ticket
            url = f"ftp://anonymous:{ticket.secret}@{ticket.host}:{ticket.port}/{data.lstrip('/')}"
            res = subprocess.run([curl, "-s", "-S", "-m", str(int(self.config.timeout * 4)), "-o", out, url],
                                 capture_output=True, text=True, check=False)
            if res.returncode != 0:
                raise OSError(f"curl exit {res.returncode}: {res.stderr.strip().replace(ticket.secret, '***')}")

        self._measure(row, download)

    def _cleanup_remote(self) -> None:
        try:
            from pyunicore_fast.cli import common

            with self.session() as s:
                top = self.path("")
                tree = list(common.walk(s, top))
                for d, _dirs, files in tree:
                    for f in files:
                        s.remove(common.join(d, f.name))
                for d, _dirs, _files in reversed(tree):
                    s.rmdir(d)
        except Exception as exc:  # noqa: BLE001 - best effort
            log.warning("could not remove the remote benchmark directory %s: %s", self.workdir, exc)


# ------------------------------------------------------------------------------- helpers
def generate_file(path: str, size: int, seed: int = 12345) -> str:
    """``size`` pseudo-random bytes (every 8 MiB block differs); returns the SHA-256."""
    import numpy as np

    rng = np.random.default_rng(seed)
    block = rng.integers(0, 256, size=max(1, min(size, 8 * MiB)), dtype=np.uint8)
    h = hashlib.sha256()
    with open(path, "wb") as f:
        left, i = size, 0
        while left > 0:
            n = min(left, len(block))
            block[:8] = np.frombuffer(i.to_bytes(8, "little"), dtype=np.uint8)
            chunk = memoryview(block)[:n]
            f.write(chunk)
            h.update(chunk)
            left -= n
            i += 1
    return h.hexdigest()


def median_latency(fn: Callable[[], Any], n: int) -> float:
    samples = []
    for _ in range(max(1, n)):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)
