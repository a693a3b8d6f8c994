"""Implementation of :mod:`pyunicore_fast.uftp.uftpmountfs` (imports ``fs``; loaded lazily).

Differences from PyUNICORE 1.3.7, which ran ``export UFTP_PASSWORD=...; python3 -m ...`` through
a shell: the driver is started without a shell (no quoting problems with the mount directory,
the secret never appears on a command line or in ``ps``), with the Python running this code,
and the constructor waits until the mount is really there (or fails with the driver's
message) instead of hoping it is.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from typing import Any, ClassVar

from fs.errors import CreateFailed
from fs.opener import Opener
from fs.osfs import OSFS

from .uftpfuse import is_mounted, unmount
from .urls import read_token, split_resource

log = logging.getLogger(__name__)

#: protocol -> Auth URL scheme (``+http`` for loopback test servers, as for ``uftp+http://``)
MOUNT_PROTOCOLS = {"uftpmount": "https", "uftpmount+https": "https", "uftpmount+http": "http"}


class UFTPMOUNTFS(OSFS):
    """A UFTP file system mounted with FUSE at ``mount_dir`` and used through ``OSFS``.

    Authenticates at ``auth_url`` with ``creds`` for ``base_path``, unmounts anything left at
    ``mount_dir``, starts ``unicore-fusedriver`` in the background and waits (``timeout``
    seconds) for the mount.  ``fuse_options`` are passed as ``-o`` (driver tunables and libfuse
    options, see :mod:`pyunicore_fast.uftp.uftpfuse`).  Attributes as in PyUNICORE: ``host``,
    ``port``, ``uftp_password``, ``base_path``, ``mount_dir``.
    """

    def __init__(self, auth_url: str, creds: Any, base_path: str = "/", mount_dir: str = "./uftp_mount", *,
                 read_only: bool = False, fuse_options: dict[str, Any] | None = None, timeout: float = 30.0):
        from .uftp import UFTP

        self.host, self.port, self.uftp_password = UFTP().authenticate(creds, auth_url, base_path)
        self.base_path = base_path
        self.mount_dir = os.path.abspath(mount_dir)
        self.read_only = read_only
        self.fuse_options = dict(fuse_options or {})
        self.timeout = timeout
        os.makedirs(self.mount_dir, exist_ok=True)
        self._ensure_unmount()
        code, output = self._run_fusedriver(self.uftp_password)
        if code != 0 or not self._wait_for_mount():
            raise CreateFailed(f"mounting UFTP {self.host}:{self.port} at {self.mount_dir} failed "
                               f"(exit code {code}): {output.strip()}")
        super().__init__(self.mount_dir)

    def close(self) -> None:
        if not self.isclosed():
            self._ensure_unmount()
        super().close()

    def _ensure_unmount(self) -> tuple[int, str]:
        """Unmount ``mount_dir`` if anything is mounted there (lazily if it is busy)."""
        if not is_mounted(self.mount_dir):
            return 0, ""
        if unmount(self.mount_dir) or unmount(self.mount_dir, lazy=True):
            deadline = time.monotonic() + self.timeout
            while is_mounted(self.mount_dir) and time.monotonic() < deadline:
                time.sleep(0.05)
            return 0, ""
        return 1, f"cannot unmount {self.mount_dir}"

    def _fusedriver_command(self) -> list[str]:
        cmd = [sys.executable, "-m", "pyunicore_fast.uftp.uftpfuse"]
        if self.read_only:
            cmd.append("-r")
        if self.fuse_options:
            opts = ",".join(k if v is True else f"{k}={v}" for k, v in self.fuse_options.items() if v is not False)
            cmd += ["-o", opts]
        return cmd + [f"{self.host}:{self.port}", self.mount_dir]

    def _run_fusedriver(self, pwd: str) -> tuple[int, str]:
        """Start the driver; it daemonises once mounted, so this returns when the mount is up."""
        env = dict(os.environ, UFTP_PASSWORD=pwd)
        return self._run_command(self._fusedriver_command(), env=env)

    def _run_command(self, cmd: str | list[str], env: dict[str, str] | None = None) -> tuple[int, str]:
        """Run a command; returns ``(exit_code, output)`` (PyUNICORE's helper, without a shell for lists)."""
        try:
            out = subprocess.run(cmd, shell=isinstance(cmd, str), env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, timeout=self.timeout + 30, check=False)
        except subprocess.TimeoutExpired as exc:
            return 124, (exc.output or b"").decode("utf-8", "replace")
        return out.returncode, out.stdout.decode("utf-8", "replace")

    def _wait_for_mount(self) -> bool:
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if is_mounted(self.mount_dir):
                return True
            time.sleep(0.05)
        return False

    def hassyspath(self, _: str) -> bool:
        return False

    def __repr__(self) -> str:
        return (f"UFTPMOUNTFS({self.host!r}, port={self.port!r})"
                f", base_path={self.base_path!r}, mount_dir={self.mount_dir!r}")

    __str__ = __repr__


class UFTPMountOpener(Opener):
    """``fs.open_fs("uftpmount://user:pw@authhost:port/rest/auth/NAME:/base/dir==/mount/dir")``.

    Without ``==<mount_dir>`` the mount goes to ``/uftp_mount`` (PyUNICORE's default);
    ``?token=`` (value, ``@file``, ``@@ENVVAR``) and ``&identity=`` work as for ``uftp://``;
    ``uftpmount+http://`` talks plain http to the Auth server (loopback tests).
    """

    protocols: ClassVar[list[str]] = list(MOUNT_PROTOCOLS)

    def _parse(self, resource_url: str, scheme: str = "https") -> tuple[str, str, str]:
        auth_url, rest = split_resource(resource_url, scheme)
        base_dir, sep, mount_dir = rest.partition("==")
        return auth_url, base_dir or "/", mount_dir if sep and mount_dir else "/uftp_mount"

    def _read_token(self, token_spec: str | None) -> str | None:
        return read_token(token_spec)

    def _create_credential(self, parse_result: Any) -> Any:
        from pyunicore_fast.credentials import create_credential

        return create_credential(username=parse_result.username, password=parse_result.password,
                                 token=self._read_token(parse_result.params.get("token")),
                                 identity=parse_result.params.get("identity") or None)

    def open_fs(self, fs_url: str, parse_result: Any, writeable: bool, create: bool, cwd: str) -> UFTPMOUNTFS:
        scheme = MOUNT_PROTOCOLS.get(parse_result.protocol, "https")
        auth_url, base_dir, mount_dir = self._parse(parse_result.resource, scheme)
        return UFTPMOUNTFS(auth_url, self._create_credential(parse_result), base_dir, mount_dir)


__all__ = ["UFTPMOUNTFS", "UFTPMountOpener"]
