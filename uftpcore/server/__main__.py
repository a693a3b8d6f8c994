"""Run the test/demo UFTPD (and optionally the Auth endpoint) in the foreground.

    python -m uftpcore.server --host 127.0.0.1 --port 64434 --cmd-port 64435 \\
        --auth-port 9000 --user demouser:test123 --root /srv/data

Sessions run as the OS user who starts this command; ``--root`` is the home directory of
every configured user (where relative and empty ``serverPath`` values start).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence

from .authserver import AuthServer
from .uftpd import UFTPD


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m uftpcore.server", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1", help="FTP listen address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=64434, help="FTP listen port (0 = any free port)")
    parser.add_argument("--cmd-host", default="127.0.0.1", help="command port address")
    parser.add_argument("--cmd-port", type=int, default=64435, help="command port (0 = any free port)")
    parser.add_argument("--auth-port", type=int, default=None, help="also serve /rest/auth on this port")
    parser.add_argument("--auth-host", default=None, help="Auth endpoint address (default: --host)")
    parser.add_argument("--server-name", default="TEST", help="logical server name in the Auth URL")
    parser.add_argument("--user", action="append", default=[], metavar="NAME:PASSWORD",
                        help="Auth user (repeatable)")
    parser.add_argument("--token", action="append", default=[], metavar="TOKEN:NAME",
                        help="static bearer token for a user (repeatable)")
    parser.add_argument("--root", default=None, help="home directory of all users")
    parser.add_argument("--tls", action="store_true", help="serve the Auth endpoint over https (self-signed)")
    parser.add_argument("--max-streams", type=int, default=4)
    parser.add_argument("--max-connections", type=int, default=16)
    parser.add_argument("--disable-ip-check", action="store_true")
    parser.add_argument("--advertise-host", default=None)
    parser.add_argument("--version-string", default="3.5.3", help="version in the greeting")
    parser.add_argument("--no-bug-compat", action="store_true",
                        help="do not reproduce uftpd's crypto/gzip defects (spec §6.4, §6.5, §7.2)")
    parser.add_argument("--multistream-block", type=int, default=16384, help="multi-stream block size")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s [%(levelname)s] %(name)s: %(message)s")
    users = dict(spec.split(":", 1) for spec in args.user)
    tokens = dict(spec.split(":", 1) for spec in args.token)
    home_dirs = {name: os.path.abspath(args.root) for name in set(users) | set(tokens.values())} if args.root else None
    uftpd = UFTPD(host=args.host, port=args.port, cmd_host=args.cmd_host, cmd_port=args.cmd_port,
                  max_streams=args.max_streams, max_connections=args.max_connections,
                  version=args.version_string, disable_ip_check=args.disable_ip_check,
                  advertise_host=args.advertise_host, home_dirs=home_dirs,
                  bug_compat=not args.no_bug_compat, multistream_block=args.multistream_block)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    uftpd.start()
    auth: AuthServer | None = None
    try:
        print(f"UFTPD listening on {args.host}:{uftpd.port}, command port {args.cmd_host}:{uftpd.cmd_port}")
        if args.auth_port is not None:
            auth = AuthServer(uftpd, host=args.auth_host or args.host, port=args.auth_port, users=users,
                              tokens=tokens, server_name=args.server_name, tls=args.tls).start()
            print(f"Auth endpoint: {auth.url}")
        sys.stdout.flush()
        stop.wait()
    finally:
        if auth is not None:
            auth.stop()
        uftpd.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
