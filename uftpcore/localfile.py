"""Local destination files that never look complete before they are.

A download is written into a pre-allocated temporary file beside the target (same file
system, so the final ``os.replace`` is atomic) and renamed only after every byte arrived (and,
at higher layers, after verification).  On any failure the temporary file is removed, so a
partial download never sits under the final name.
"""

from __future__ import annotations

import logging
import os
import secrets
from typing import Any

log = logging.getLogger(__name__)

PART_SUFFIX = ".uftp-part"


def part_name(final: str) -> str:
    """The temporary name used while ``final`` is being written."""
    head, tail = os.path.split(final)
    return os.path.join(head, f".{tail}.{secrets.token_hex(4)}{PART_SUFFIX}")


class PartialFile:
    """Context manager: a temporary file of ``size`` bytes, committed by ``commit()``."""

    def __init__(self, final_path: str | os.PathLike, size: int, *, mode: int = 0o644):
        self.final_path = os.fspath(final_path)
        self.size = size
        self.temp_path = part_name(self.final_path)
        self.fd = -1
        self._mode = mode
        self._committed = False

    def __enter__(self) -> PartialFile:
        self.fd = os.open(self.temp_path, os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), self._mode)
        try:
            if self.size > 0:
                preallocate(self.fd, self.size, self.temp_path)
        except BaseException:
            self._discard()
            raise
        return self

    def commit(self, mtime: float | None = None) -> None:
        """Trim to size, set the mtime if asked, and atomically move into place."""
        os.ftruncate(self.fd, self.size)
        if mtime is not None:
            os.utime(self.fd, (mtime, mtime))
        os.close(self.fd)
        self.fd = -1
        os.replace(self.temp_path, self.final_path)
        self._committed = True

    def _discard(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        try:
            os.unlink(self.temp_path)
        except FileNotFoundError:
            pass

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        if not self._committed:
            if exc_type is None:
                log.warning("partial file %s was not committed; removing it", self.temp_path)
            self._discard()


def preallocate(fd: int, size: int, path: str | None = None) -> None:
    """Reserve ``size`` bytes so a full disk fails now, not in the middle of a transfer.

    On tmpfs ``posix_fallocate`` zero-fills every page before the data overwrites it (a second
    pass over the whole file in memory): there the space is checked with ``statvfs`` and the
    file is only extended.
    """
    if path is not None and _on_tmpfs(path):
        st = os.statvfs(os.path.dirname(os.path.abspath(path)) or ".")
        if st.f_bavail * st.f_frsize < size:
            import errno

            raise OSError(errno.ENOSPC, f"not enough space for {size} bytes", path)
        os.ftruncate(fd, size)
        return
    try:
        os.posix_fallocate(fd, 0, size)
    except OSError as exc:
        import errno

        if exc.errno in (errno.EOPNOTSUPP, errno.EINVAL, getattr(errno, "ENOTSUP", errno.EOPNOTSUPP)):
            os.ftruncate(fd, size)
        else:
            raise


def _on_tmpfs(path: str) -> bool:
    """Whether ``path`` lies on a tmpfs mount (longest matching mount point of /proc/self/mounts)."""
    try:
        with open("/proc/self/mounts", encoding="utf-8", errors="replace") as f:
            mounts = [line.split() for line in f]
    except OSError:
        return False
    target = os.path.realpath(os.path.dirname(os.path.abspath(path)))
    best, fstype = "", ""
    for fields in mounts:
        if len(fields) < 3:
            continue
        point = fields[1].replace("\\040", " ")
        if (target == point or target.startswith(point.rstrip("/") + "/")) and len(point) > len(best):
            best, fstype = point, fields[2]
    return fstype == "tmpfs"
