"""``serve``: run the embedded UNICORE site (REST core, registry, workflows, Auth server,
UFTPD) in the foreground — a complete offline playground for every other command.

It prints the URLs and the test credentials, then runs until Ctrl-C or SIGTERM and stops
every server cleanly (its temporary root directory is removed unless ``--root`` was given).
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from typing import Any

from pyunicore_fast.cli.base import Base
from pyunicore_fast.cli.errors import UsageError


class Serve(Base):
    """Run the embedded UNICORE site until interrupted."""

    name = "serve"
    uses_credential = False

    def add_command_args(self) -> None:
        p = self.parser
        p.add_argument("--host", default="127.0.0.1", help="Address of the HTTP server (default 127.0.0.1)")
        p.add_argument("--port", type=int, default=0, help="Port of the HTTP server (default: any free port)")
        p.add_argument("--tls", action="store_true", help="Serve https:// with a self-signed certificate")
        p.add_argument("--root", default=None, help="Directory for homes, storages and jobs (default: a temp dir)")
        p.add_argument("--user", action="append", default=[], metavar="NAME:PASSWORD",
                       help="Additional user (repeatable); demouser/test123 and otheruser/test456 always exist")
        p.add_argument("--authorized-key", action="append", default=[], metavar="NAME:PUBKEY_FILE",
                       help="Accept JWTs signed with this SSH key for user NAME (for -i/--identity; repeatable)")
        p.add_argument("--json", action="store_true", help="Print the site's URLs as one JSON line")

    def get_synopsis(self) -> str:
        return ("Starts the embedded UNICORE site (REST API, registry, workflows, UFTP Auth server and\n"
                "UFTPD) on this machine and serves until Ctrl-C/SIGTERM. For tests and demos only:\n"
                "files are served as the current OS user.")

    def get_description(self) -> str:
        return "run the embedded UNICORE site (tests, demos)"

    def get_group(self) -> str:
        return "Utilities"

    def run(self, args: list[str]) -> int:
        from pyunicore_fast.testing import DEFAULT_USERS, EmbeddedSite

        self.setup(args)
        users = dict(DEFAULT_USERS)
        for spec in self.args.user:
            name, sep, password = spec.partition(":")
            if not name or not sep:
                raise UsageError(f"--user: expected NAME:PASSWORD, got '{spec}'")
            users[name] = password
        public_keys: dict[str, list[str]] = {}
        for spec in self.args.authorized_key:
            name, sep, path = spec.partition(":")
            if not name or not sep:
                raise UsageError(f"--authorized-key: expected NAME:PUBKEY_FILE, got '{spec}'")
            try:
                with open(path, encoding="utf-8") as f:
                    public_keys.setdefault(name, []).append(f.read().strip())
            except OSError as exc:
                raise UsageError(f"--authorized-key {path}: {exc.strerror or exc}") from None
        stop = threading.Event()
        previous = _install_signal_handlers(stop)
        site = EmbeddedSite(users=users, tls=self.args.tls, host=self.args.host, port=self.args.port,
                            root_dir=self.args.root, public_keys=public_keys)
        try:
            site.start()
            info = describe(site)
            if self.args.json:
                print(json.dumps(info), flush=True)
            else:
                print_banner(info)
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
        finally:
            site.stop()
            _restore_signal_handlers(previous)
        if not self.args.json:
            print("pyunicore-fast serve: stopped", file=sys.stderr)
        return 0


def describe(site: Any) -> dict[str, Any]:
    """The site's URLs and credentials as a JSON-ready dict."""
    uftpd = site.uftpd
    return {
        "schema": 1, "command": "serve",
        "url": site.url, "core_url": site.core_url, "registry_url": site.registry_url,
        "workflows_url": site.workflows_url, "auth_url": site.auth_url,
        "uftpd": f"127.0.0.1:{uftpd.port}" if uftpd is not None else None,
        "users": dict(site.users), "tokens": {site.tokens[t]: t for t in site.tokens},
        "root_dir": site.root_dir, "cert_file": site.cert_file,
    }


def print_banner(info: dict[str, Any]) -> None:
    user, password = "demouser", info["users"].get("demouser", "test123")
    lines = [
        "pyunicore-fast serve: embedded UNICORE site running (Ctrl-C to stop)",
        f"  core services  {info['core_url']}",
        f"  registry       {info['registry_url']}",
        f"  workflows      {info['workflows_url']}",
        f"  UFTP auth      {info['auth_url']}",
        f"  UFTPD          {info['uftpd']}",
        "  users          " + ", ".join(f"{u}/{p}" for u, p in info["users"].items()),
        f"  token of {user} {info['tokens'].get(user, '-')}",
        f"  files in       {info['root_dir']}",
        "",
        "Try:",
        f"  pyunicore-fast ls -l -u {user}:{password} {info['auth_url']}:",
        f"  pyunicore-fast cp -u {user}:{password} somefile {info['auth_url']}:",
        f"  pyunicore-fast bench --auth-url {info['auth_url']} -u {user}:{password}",
        "or put into ~/.ucc/properties (for exec, run, list-jobs, info ...):",
        f"  registry={info['registry_url']}",
        f"  username={user}",
        f"  password={password}",
    ]
    print("\n".join(lines), flush=True)


def _install_signal_handlers(stop: threading.Event) -> dict[int, Any]:
    previous: dict[int, Any] = {}
    if threading.current_thread() is not threading.main_thread():
        return previous
    for sig in (signal.SIGTERM, signal.SIGINT, getattr(signal, "SIGHUP", None)):
        if sig is None:
            continue
        previous[sig] = signal.signal(sig, lambda *_: stop.set())
    return previous


def _restore_signal_handlers(previous: dict[int, Any]) -> None:
    for sig, handler in previous.items():
        signal.signal(sig, handler)
