"""``bench``: measure a UFTP site the way users will use it.

Against the embedded site by default (started in a child process), or any site given as a
UFTP directory URL (``https://HOST:PORT/rest/auth/NAME:/scratch/me/``, or ``--auth-url``)
with the usual credentials.  Prints a table (or ``--json``), optionally a PNG chart.
"""

from __future__ import annotations

import platform
import sys
from typing import Any

from pyunicore_fast.cli import benchcore, common, locations
from pyunicore_fast.cli.base import Base
from pyunicore_fast.cli.errors import CLIError, UsageError
from pyunicore_fast.cli.units import MiB, human_size, parse_size


def _int_list(text: str) -> list[int]:
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise UsageError(f"expected a comma-separated list of numbers, got '{text}'") from None
    if not values or any(v < 1 or v > 64 for v in values):
        raise UsageError(f"counts must be between 1 and 64, got '{text}'")
    return values


def _size(text: str) -> int:
    try:
        return parse_size(text)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


class Bench(Base):
    """Benchmark UFTP transfers against a site (default: the embedded site)."""

    name = "bench"

    def add_command_args(self) -> None:
        p = self.parser
        p.add_argument("url", nargs="?", metavar="URL",
                       help="UFTP directory to work in, e.g. https://HOST:PORT/rest/auth/NAME:/scratch/me/ "
                            "(default: start the embedded site)")
        p.add_argument("--auth-url", help="Auth server URL (.../rest/auth/NAME); works in the home directory")
        g = p.add_argument_group("What to measure")
        g.add_argument("--size", default="64M", help="Size of the test file (default 64M)")
        g.add_argument("--streams", default="1,2,4", help="Stream counts to try (default 1,2,4)")
        g.add_argument("--sessions", default="1,2,4", help="Session counts to try (default 1,2,4)")
        g.add_argument("--small-files", type=int, default=200, help="Number of small files (default 200, 0 = skip)")
        g.add_argument("--small-size", default="1K", help="Size of each small file (default 1K)")
        g.add_argument("--mlst", type=int, default=200, help="MLST round trips for the latency median (default 200)")
        g.add_argument("--runs", type=int, default=1,
                       help="Repeat each transfer, report the best (default 1: sites limit sessions per user)")
        g.add_argument("--no-encryption", action="store_true", help="Skip the encrypted transfer")
        g.add_argument("--no-compression", action="store_true", help="Skip the compressed transfer")
        g.add_argument("--no-ranges", action="store_true", help="Skip the byte-range transfer")
        g.add_argument("--no-compare", action="store_true", help="Skip PyUNICORE and curl")
        g.add_argument("--dir", default=None, help="Local scratch directory (default: system temp)")
        w = p.add_argument_group("What-if: emulate a WAN link (UFTP-aware proxy on loopback)")
        w.add_argument("--rtt-ms", type=float, help="Round-trip time in ms")
        w.add_argument("--window-kib", type=int, help="TCP window per connection in KiB (caps window/RTT)")
        w.add_argument("--rate-mib", type=float, help="Aggregate bandwidth cap in MiB/s")
        o = p.add_argument_group("Output")
        o.add_argument("--json", action="store_true", help="Print the results as JSON")
        o.add_argument("--chart", metavar="PNG", help="Write a throughput chart (needs matplotlib)")
        o.add_argument("-q", "--quiet", action="store_true", help="No progress messages")
        o.add_argument("--timeout", type=float, default=60.0, help="Network timeout (default 60)")

    def get_synopsis(self) -> str:
        return ("Benchmarks UFTP transfers: single vs multi-stream, sessions, encryption, compression,\n"
                "byte ranges, small files, MLST latency; PyUNICORE and curl for comparison; optional\n"
                "WAN emulation. Runs against the embedded site unless a URL is given.")

    def get_description(self) -> str:
        return "benchmark UFTP transfers"

    def get_group(self) -> str:
        return "Utilities"

    def bench_config(self) -> benchcore.BenchConfig:
        a = self.args
        runs = a.runs
        for name in ("small_files", "mlst", "runs"):
            if getattr(a, name) < 0:
                raise UsageError(f"--{name.replace('_', '-')} must not be negative")
        cfg = benchcore.BenchConfig(
            size=_size(a.size), streams=_int_list(a.streams), sessions=_int_list(a.sessions),
            small_files=a.small_files, small_size=_size(a.small_size), mlst=a.mlst, runs=max(1, runs),
            encryption=not a.no_encryption, compression=not a.no_compression, ranges=not a.no_ranges,
            compare=not a.no_compare, rtt_ms=a.rtt_ms, window_kib=a.window_kib, rate_mib=a.rate_mib,
            scratch=a.dir, timeout=a.timeout)
        if cfg.size < 1:
            raise UsageError("--size must be at least 1 byte")
        return cfg

    def run(self, args: list[str]) -> int:
        self.setup(args)
        cfg = self.bench_config()
        if self.args.chart:
            _require_matplotlib()
        url = self.args.url or (self.args.auth_url.rstrip(":") + ":" if self.args.auth_url else None)
        if url:
            loc = common.require_uftp(locations.parse(url), "bench")
            if loc.rel:
                loc = locations.parse(f"{loc.service_url}:{loc.path.rstrip('/')}/") if loc.path.startswith("/") \
                    else loc
            target = benchcore.BenchTarget(loc, self.credential, label=loc.service_url)
            report = run_report(target, cfg, self._say)
        else:
            from pyunicore_fast.cli.embedded import embedded_site
            from pyunicore_fast.credentials import UsernamePassword

            self._say("starting the embedded site")
            with embedded_site() as info:
                loc = locations.parse(info["auth_url"] + ":")
                assert isinstance(loc, locations.UFTPPath)
                target = benchcore.BenchTarget(loc, UsernamePassword("demouser", info["users"]["demouser"]),
                                               label=info["auth_url"] + " (embedded site)", embedded=True)
                report = run_report(target, cfg, self._say)
        if self.args.json:
            common.print_json(report)
        else:
            print_table(report)
        if self.args.chart:
            from pyunicore_fast.cli.chart import write_chart

            write_chart(self.args.chart, [benchcore.Row(**_row_fields(r)) for r in report["results"]],
                        report_title(report))
            if not self.args.json:
                print(f"chart written to {self.args.chart}")
        failed = [r for r in report["results"] if (r.get("skipped") or "").startswith("error")]
        return 1 if failed else 0

    def _say(self, msg: str) -> None:
        if not self.args.quiet:
            print(f"bench: {msg}", file=sys.stderr, flush=True)


def _require_matplotlib() -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise CLIError("--chart needs matplotlib: pip install 'pyunicore_fast[bench]'") from None


def _row_fields(d: dict[str, Any]) -> dict[str, Any]:
    import dataclasses

    names = {f.name for f in dataclasses.fields(benchcore.Row)}
    return {k: v for k, v in d.items() if k in names}


def run_report(target: benchcore.BenchTarget, cfg: benchcore.BenchConfig, say: Any = None) -> dict[str, Any]:
    """Run the benchmark and return the JSON document (schema: see docs/CLI.md)."""
    import uftpcore

    rows = benchcore.BenchRunner(target, cfg, say).run()
    return {
        "schema": common.SCHEMA_VERSION, "command": "bench", "site": target.label, "embedded": target.embedded,
        "implementation": uftpcore.IMPLEMENTATION, "size": cfg.size, "runs": cfg.runs,
        "link": cfg.link(), "machine": f"{platform.machine()}, {_cpus()} cores, Python {platform.python_version()}",
        "results": [r.as_json() for r in rows],
    }


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def report_title(report: dict[str, Any]) -> str:
    link = report.get("link")
    where = "direct" if not link else (f"emulated link: RTT {link['rtt_ms']} ms, window {link['window_kib']} KiB, "
                                       f"" + (f"cap {link['rate_mib']} MiB/s" if link['rate_mib'] else "no rate cap"))
    return (f"{report['site']}; {human_size(report['size'])} file; uftpcore {report['implementation']}; {where}; "
            f"{report['machine']}")


def print_table(report: dict[str, Any], file: Any = None) -> None:
    """The human-readable table of a bench report."""
    out = file or sys.stdout
    print(report_title(report), file=out)
    header = f"{'measurement':34} {'sess':>4} {'strm':>4} {'size':>10} {'seconds':>9} {'MiB/s':>9}  note"
    print(header, file=out)
    print("-" * len(header), file=out)
    for r in report["results"]:
        size = human_size(r["bytes"]) if r["bytes"] else ""
        if r.get("skipped"):
            secs, rate, note = "-", "-", r["skipped"]
        elif r.get("latency_ms") is not None:
            secs, rate, note = "-", "-", f"median {r['latency_ms']:.3f} ms"
            size = f"{r['files']}x"
        else:
            secs = f"{r['seconds']:.3f}"
            rate = f"{r['rate_mib_s']:.1f}" if r.get("rate_mib_s") is not None else "-"
            notes = [f"{r['files']} files, {r['files_per_s']:.0f} files/s"] if r.get("files_per_s") else []
            if r.get("sessions_used") and r["sessions_used"] < r["sessions"]:
                notes.append(f"server allowed {r['sessions_used']} sessions")
            if r.get("streams_used") and r["streams_used"] < r["streams"]:
                notes.append(f"server allowed {r['streams_used']} streams")
            note = "; ".join(notes)
        print(f"{r['name'][:34]:34} {r['sessions']:>4} {r['streams']:>4} {size:>10} {secs:>9} {rate:>9}  {note}",
              file=out)


__all__ = ["Bench", "MiB", "print_table", "run_report"]
