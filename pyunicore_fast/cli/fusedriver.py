"""``unicore-fusedriver``: mount a UFTP file system with FUSE (PyUNICORE's command, same options).

Console output belongs to the command line, so the argument handling and messages live here;
``pyunicore_fast.uftp.uftpfuse.main`` (PyUNICORE's entry point) delegates to this module.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any

from uftpcore.errors import UFTPError

from ..uftp.fuse_config import FuseDriverConfig, parse_option_string, split_mount_options
from ..uftp.uftpfuse import FUSE, UFTPDriver, _clear_stale_mount, is_mounted, unmount

log = logging.getLogger("pyunicore_fast.uftp.uftpfuse")


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="unicore-fusedriver",
        description="Mount a UFTP file system (UFTPD host:port and a one-time password) with FUSE.")
    parser.add_argument("-d", "--debug", action="store_true",
                        help="debug mode (also keeps process in the foreground)")
    parser.add_argument("-r", "--read-only", action="store_true",
                        help="read-only mode, prevents writes, renames, etc")
    parser.add_argument("-f", "--foreground", action="store_true", help="run fusedriver in foreground")
    parser.add_argument("-P", "--password",
                        help="one-time password (if not given, it is expected in the environment UFTP_PASSWORD)")
    parser.add_argument("-o", "--fuse-options", action="append", default=[],
                        help="options key1=value1,key2,...: driver tunables (cache_size=512M, max_sessions=8, "
                             "attr_ttl=5, timeout=30, prefetch_max=64M, read_ahead_kb=...) and libfuse "
                             "options (max_read=, auto_cache, kernel_cache, attr_timeout=, allow_other, ...)")
    parser.add_argument("-l", "--log-file", help="log to this file (background mode has no terminal)")
    parser.add_argument("address", help="UFTPD server's address (host:port)")
    parser.add_argument("mount_point", help="the local mount directory (must exist and be empty)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """``unicore-fusedriver``: mount, serve until unmounted or signalled, unmount cleanly."""
    args = _parse_args(argv)
    level = logging.DEBUG if args.debug else logging.INFO
    handler: logging.Handler = logging.FileHandler(args.log_file) if args.log_file else logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s uftpfuse[%(process)d] %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    logging.getLogger("pyunicore_fast").setLevel(level)
    if args.debug:
        logging.getLogger("uftpcore").setLevel(logging.DEBUG)

    password = args.password if args.password is not None else os.getenv("UFTP_PASSWORD")
    if password is None:
        print("unicore-fusedriver: UFTP one-time password must be given with '-P ...' or as environment "
              "UFTP_PASSWORD", file=sys.stderr)
        return 2
    host, sep, port = args.address.rpartition(":")
    if not sep or not port.isdigit():
        print(f"unicore-fusedriver: address must be host:port, not {args.address!r}", file=sys.stderr)
        return 2
    options: dict[str, Any] = {}
    for text in args.fuse_options:
        options.update(parse_option_string(text))
    driver_opts, fuse_opts = split_mount_options(options)
    mountpoint = os.path.abspath(args.mount_point)
    _clear_stale_mount(mountpoint)
    try:
        config = FuseDriverConfig.from_options(driver_opts)
        driver = UFTPDriver(host.strip("[]"), int(port), password, debug=args.debug, read_only=args.read_only,
                            config=config)
    except (UFTPError, OSError, ValueError) as exc:
        print(f"unicore-fusedriver: cannot use UFTPD at {args.address}: {exc}", file=sys.stderr)
        return 1
    foreground = bool(args.foreground or args.debug or fuse_opts.pop("foreground", False))
    try:
        FUSE(driver, mountpoint, foreground=foreground, debug=args.debug, **fuse_opts)
    except RuntimeError as exc:
        if driver._mounted:  # libfuse3 reports an exit by signal as an error (status 8)
            log.info("unmounted %s (libfuse status %s)", mountpoint, exc)
            return 0
        log.error("mounting %s failed: %s", mountpoint, exc)
        driver.close()
        return 1
    finally:
        if driver._mounted and not driver._destroyed:  # libfuse did not run destroy()
            driver.close()
            if is_mounted(mountpoint):
                unmount(mountpoint, lazy=True)
    return 0
