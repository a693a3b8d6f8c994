"""``mount``: a UFTP location as a local directory, through the FUSE driver
(:mod:`pyunicore_fast.uftp.uftpfuse`).

Unlike ``unicore-fusedriver host:port`` with a one-time secret, this authenticates at the
Auth server (or storage) itself and hands the driver an ``Endpoint``, so the mount
re-authenticates when uftpd forgets the session after its idle timeout.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from pyunicore_fast.cli import common, locations
from pyunicore_fast.cli.base import Base
from pyunicore_fast.cli.errors import CLIError, UsageError


class Mount(Base):
    """Mount a UFTP directory with FUSE."""

    name = "mount"

    def add_command_args(self) -> None:
        p = self.parser
        p.add_argument("source", nargs="?", metavar="URL", help="UFTP directory, e.g. https://HOST:PORT/rest/auth/NAME:/data/")
        p.add_argument("mount_point", help="Local directory (must exist and be empty)")
        p.add_argument("-r", "--read-only", action="store_true", help="Refuse every change (EROFS)")
        p.add_argument("-f", "--foreground", action="store_true", help="Stay in the foreground until unmounted")
        p.add_argument("-o", "--fuse-options", action="append", default=[], metavar="k=v,...",
                       help="Driver tunables (cache_size=512M, max_sessions=8, attr_ttl=5, ...) and libfuse options")
        p.add_argument("-d", "--fuse-debug", action="store_true", help="Log every file system operation (foreground)")
        p.add_argument("-l", "--log-file", help="Log to this file (background mode has no terminal)")
        p.add_argument("-U", "--unmount", action="store_true", help="Unmount MOUNT_POINT instead (fusermount -u)")
        p.add_argument("--timeout", type=float, default=30.0, help="Network timeout (default 30)")

    def get_synopsis(self) -> str:
        return ("Mounts a UFTP directory as a local file system (FUSE). Needs /dev/fuse and fusermount.\n"
                "Unmount with 'pyunicore-fast mount -U MOUNT_POINT' or 'fusermount -u MOUNT_POINT'.")

    def get_description(self) -> str:
        return "mount a UFTP directory (FUSE)"

    def get_group(self) -> str:
        return "Data management"

    def run(self, args: list[str]) -> int:
        self.setup(args)
        fuse = _import_driver()
        mountpoint = os.path.abspath(self.args.mount_point)
        if self.args.unmount:
            if not fuse.unmount(mountpoint):
                raise CLIError(f"cannot unmount {mountpoint} (not mounted, or busy)")
            return 0
        if not self.args.source:
            raise UsageError("the UFTP URL to mount is missing")
        if not os.path.isdir(mountpoint):
            raise UsageError(f"mount point {mountpoint} is not a directory")
        loc = locations.parse(self.args.source)
        loc = common.require_uftp(loc, "mount")
        if loc.rel and loc.kind == "auth" and loc.path.startswith("/"):
            loc = locations.parse(f"{loc.service_url}:{loc.path.rstrip('/')}/")  # the directory is the base
        elif loc.rel:
            raise UsageError("give an absolute directory, e.g. ...:/data/ (or the storage root)")
        return mount(self, fuse, loc, mountpoint)


def mount(cmd: Base, fuse: Any, loc: locations.UFTPPath, mountpoint: str) -> int:
    """Authenticate, build the driver with a re-authenticating endpoint, run libfuse."""
    from pyunicore_fast.cli.remote import make_endpoint
    from pyunicore_fast.uftp.fuse_config import FuseDriverConfig, parse_option_string, split_mount_options

    args = cmd.args
    options: dict[str, Any] = {}
    for text in args.fuse_options:
        options.update(parse_option_string(text))
    driver_opts, fuse_opts = split_mount_options(options)
    config = FuseDriverConfig.from_options(driver_opts)
    endpoint = make_endpoint(loc, cmd.credential, timeout=args.timeout)
    ticket = endpoint.new_ticket()  # fail here (wrong password, unreachable) before mounting
    endpoint.ticket = ticket
    if args.log_file:
        handler = logging.FileHandler(args.log_file)
        handler.setFormatter(logging.Formatter("%(asctime)s uftpfuse[%(process)d] %(levelname)s %(name)s: %(message)s"))
        logging.getLogger().addHandler(handler)
    fuse._clear_stale_mount(mountpoint)
    driver = fuse.UFTPDriver(ticket.host, ticket.port, ticket.secret, debug=args.fuse_debug,
                             read_only=args.read_only, config=config, endpoint=endpoint)
    foreground = bool(args.foreground or args.fuse_debug or fuse_opts.pop("foreground", False))
    if not foreground:
        print(f"mounted {loc} at {mountpoint} (unmount: pyunicore-fast mount -U {mountpoint})", flush=True)
    try:
        fuse.FUSE(driver, mountpoint, foreground=foreground, debug=args.fuse_debug, **fuse_opts)
    except RuntimeError as exc:
        driver.close()
        raise CLIError(f"mounting {mountpoint} failed: {exc}") from None
    finally:
        if driver._mounted and not driver._destroyed:
            driver.close()
            if fuse.is_mounted(mountpoint):
                fuse.unmount(mountpoint, lazy=True)
    return 0


def _import_driver() -> Any:
    try:
        from pyunicore_fast.uftp import uftpfuse
    except ImportError as exc:
        raise CLIError(f"FUSE is not available ({exc}); install the 'fuse' extra and fuse3") from None
    return uftpfuse


def fuse_usable() -> tuple[bool, str]:
    """Whether a mount can work here: /dev/fuse, fusermount, root or a fuse group, the driver."""
    if not os.path.exists("/dev/fuse"):
        return False, "/dev/fuse is missing"
    import shutil

    if not (shutil.which("fusermount3") or shutil.which("fusermount")):
        return False, "fusermount is not installed"
    if hasattr(os, "geteuid") and os.geteuid() != 0 and not os.access("/dev/fuse", os.R_OK | os.W_OK):
        return False, "no access to /dev/fuse"
    try:
        _import_driver()
    except CLIError as exc:
        return False, str(exc)
    return True, ""


__all__ = ["Mount", "fuse_usable", "mount"]
