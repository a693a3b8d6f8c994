"""Path resolution and permission checks of a UFTP session (spec §3.3).

uftpd resolves every path argument against the session's *current directory*, normalises
it and then checks that it starts with the base directory **as a plain string prefix**
(so base ``/data`` also admits ``/data2``, quirk 17).  Access levels and include/exclude
patterns are separate checks that only some commands apply; the command handlers call
them explicitly so the per-command asymmetries of the real server are preserved.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterable

from .errors import CommandError

#: access levels of ``access-permissions`` (NONE < INFO < READ < WRITE < FULL)
MODE_NONE = 0
MODE_INFO = 1
MODE_READ = 2
MODE_WRITE = 3
MODE_FULL = 4

_LEVEL_NAMES = ["NONE", "INFO", "READ", "WRITE"]


def access_level(name: str | None) -> int:
    """Map an ``access-permissions`` value to a level; anything unknown means FULL (as uftpd)."""
    for level, level_name in enumerate(_LEVEL_NAMES):
        if level_name == name:
            return level
    return MODE_FULL


def normalize_path(path: str) -> str:
    """``os.path.normpath`` plus reduction of leading ``//`` to one slash (POSIX keeps two)."""
    normalized = os.path.normpath(path)
    while normalized.startswith("//"):
        normalized = normalized[1:]
    return normalized


class PathPolicy:
    """Base directory, current directory and include/exclude patterns of one session.

    ``reported_cwd`` emulates the *process* working directory that uftpd's ``PWD`` prints
    (``os.getcwd()``): sessions here are threads, so nobody may call ``os.chdir``.  It can
    differ from ``current_dir`` (quirk 16: an empty ``file=`` starts in ``$HOME`` but PWD
    says ``/``).
    """

    def __init__(self, basedir: str, current_dir: str, level: int = MODE_FULL):
        self.basedir = basedir
        self.current_dir = current_dir
        self.reported_cwd = os.path.realpath(basedir)
        self.level = level
        self.includes: list[str] = []
        self.excludes: list[str] = []

    def add_patterns(self, includes: Iterable[str], excludes: Iterable[str]) -> None:
        """Make the job's patterns absolute relative to the initial directory (may raise 534)."""
        for pattern in excludes:
            if pattern:
                self.excludes.append(self.resolve(pattern))
        for pattern in includes:
            if pattern:
                self.includes.append(self.resolve(pattern))

    def resolve(self, path: str | None) -> str:
        """uftpd's ``makeabs``: absolute, normalised, inside the base directory (else 534).

        A missing argument (``None``) fails with Python's own AttributeError text, which is
        what uftpd replies for e.g. a bare ``CWD``.
        """
        stripped = path.strip()  # type: ignore[union-attr]  # None -> AttributeError on purpose
        if not os.path.isabs(stripped):
            stripped = self.current_dir + "/" + stripped
        resolved = normalize_path(stripped)
        if not resolved.startswith(self.basedir):
            raise CommandError(f"Forbidden: {resolved} not in {self.basedir}", 534)
        return resolved

    def require_level(self, needed: int) -> None:
        """Access-level check (534 ``Access denied``)."""
        if self.level < needed:
            raise CommandError("Access denied", 534)

    def check_patterns(self, path: str) -> None:
        """Include/exclude check, applied only by CWD RETR STOR APPE DELE RMD RNFR RNTO MFMT MFF."""
        for pattern in self.excludes:
            if fnmatch.fnmatch(path, pattern):
                raise CommandError(f"Forbidden: {path} excluded via {self.excludes}", 534)
        if not self.includes:
            return
        for pattern in self.includes:
            if fnmatch.fnmatch(path, pattern):
                return
        # the double blank is uftpd's
        raise CommandError(f"Forbidden: {path} not included in  {self.includes}", 534)
