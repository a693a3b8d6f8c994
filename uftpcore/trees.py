"""Directory trees: walking them on either side, and keeping downloads inside their target.

A remote listing is untrusted input.  A name such as ``..``, ``a/../../x``, ``/etc/passwd`` or
one with a NUL byte must never become a local path outside the target directory, and neither
must a local symlink that already sits inside the target (``target/sub -> /etc``): every
directory we create or write into is checked to resolve inside the target.  Refusals are
``UFTPError`` naming the offending entry.

Uploads walk the local tree without following symlinks by default (a link to ``~/.ssh`` inside
a project directory should not be published by accident); names uftpd cannot address (line
breaks, leading/trailing blanks, spec §3.1) are refused up front rather than half-way.

``TarStream`` produces the uncompressed tar stream for ``TYPE ARCHIVE`` uploads (spec §3.5.6)
on the fly, one member at a time, so memory stays constant whatever the tree.
"""

from __future__ import annotations

import io
import logging
import os
import posixpath
import stat as stat_mod
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from .errors import UFTPError
from .listing import FileInfo

log = logging.getLogger(__name__)

#: deeper than this is almost certainly a symlink loop on the server.
MAX_DEPTH = 64


# ------------------------------------------------------------------------------ names
def check_remote_name(name: str, where: str = "") -> str:
    """A single remote directory entry name that is safe as a local path component."""
    bad = None
    if name in ("", ".", ".."):
        bad = "is empty or a relative reference"
    elif "\0" in name:
        bad = "contains a NUL byte"
    elif "/" in name or (os.sep != "/" and os.sep in name) or (os.altsep and os.altsep in name):
        bad = "contains a path separator"
    elif os.name == "nt" and (":" in name or name.rstrip(" .") != name):
        bad = "is not a safe Windows file name"
    if bad:
        raise UFTPError(f"refusing remote entry {name!r}{' in ' + where if where else ''}: it {bad} "
                        "and could escape the download target")
    return name


def check_relative_path(rel: str) -> str:
    """A ``/``-separated relative path made of safe names (``download_many`` and friends)."""
    if rel.startswith("/") or (os.name == "nt" and (rel[1:2] == ":" or rel.startswith("\\"))):
        raise UFTPError(f"refusing absolute path {rel!r}: it would escape the download target")
    for part in rel.split("/"):
        check_remote_name(part, rel)
    return rel


def check_uftp_name(rel: str) -> str:
    """A local name that uftpd can address (no line breaks, no leading/trailing blanks)."""
    for part in rel.split("/"):
        if "\n" in part or "\r" in part or part != part.strip():
            raise UFTPError(f"uftpd cannot address the name {part!r} (line break or leading/trailing "
                            f"blanks) in {rel!r}")
    return rel


# ------------------------------------------------------------------------------ remote walk
@dataclass(frozen=True)
class Entry:
    """A tree member, by its ``/``-separated path relative to the tree root."""

    rel: str
    size: int
    mtime: float
    mode: int
    is_dir: bool


def walk_remote(listdir: Callable[[str], list[FileInfo]], root: str,
                max_depth: int = MAX_DEPTH) -> tuple[list[Entry], list[Entry]]:
    """(directories top-down, files) below ``root`` (both relative; root itself excluded)."""
    dirs: list[Entry] = []
    files: list[Entry] = []
    stack: list[tuple[str, int]] = [("", 0)]
    while stack:
        rel, depth = stack.pop()
        if depth > max_depth:
            raise UFTPError(f"remote tree deeper than {max_depth} levels at {rel!r} (symlink loop?)")
        path = posixpath.join(root, rel) if rel else root
        children = []
        for info in listdir(path):
            name = check_remote_name(info.name, path)
            child = f"{rel}/{name}" if rel else name
            entry = Entry(child, info.size, info.mtime, info.mode, info.is_dir)
            if info.is_dir:
                dirs.append(entry)
                children.append((child, depth + 1))
            else:
                files.append(entry)
        stack.extend(reversed(children))
    return dirs, files


# ------------------------------------------------------------------------------ local side
class LocalTarget:
    """The local directory a download tree goes into, and the guard that keeps it there."""

    def __init__(self, root: str | os.PathLike):
        self.root = os.path.abspath(os.fspath(root))
        os.makedirs(self.root, exist_ok=True)
        self.real_root = os.path.realpath(self.root)

    def _inside(self, path: str) -> bool:
        real = os.path.realpath(path)
        return real == self.real_root or real.startswith(self.real_root.rstrip(os.sep) + os.sep)

    def path(self, rel: str) -> str:
        check_relative_path(rel)
        return os.path.join(self.root, *rel.split("/"))

    def make_dir(self, rel: str) -> str:
        """Create ``rel`` (parents first, as the walk is top-down); refuse symlinks out."""
        path = self.path(rel)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            self.check_parent(path, rel)
            os.mkdir(path)
            return path
        if stat_mod.S_ISLNK(st.st_mode) and not self._inside(path):
            raise UFTPError(f"refusing to follow local symlink {path!r} out of the target {self.root!r}")
        if not os.path.isdir(path):
            raise UFTPError(f"cannot create directory {path!r}: a file of that name exists")
        return path

    def check_parent(self, path: str, rel: str) -> None:
        """The directory that will hold ``path`` must resolve inside the target."""
        if not self._inside(os.path.dirname(path)):
            raise UFTPError(f"refusing to write {rel!r}: its local directory leads out of the target "
                            f"{self.root!r} through a symlink")

    def file_path(self, rel: str) -> str:
        path = self.path(rel)
        self.check_parent(path, rel)
        return path


def walk_local(root: str | os.PathLike, follow_symlinks: bool = False
               ) -> tuple[list[tuple[Entry, str]], list[tuple[Entry, str]], list[str]]:
    """(directories top-down, regular files, skipped) below ``root`` with their local paths."""
    root = os.fspath(root)
    dirs: list[tuple[Entry, str]] = []
    files: list[tuple[Entry, str]] = []
    skipped: list[str] = []
    stack: list[tuple[str, str, int]] = [("", root, 0)]
    while stack:
        rel, path, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise UFTPError(f"local tree deeper than {MAX_DEPTH} levels at {path!r} (symlink loop?)")
        children = []
        with os.scandir(path) as it:
            for de in sorted(it, key=lambda d: d.name):
                child = f"{rel}/{de.name}" if rel else de.name
                if de.is_symlink() and not follow_symlinks:
                    skipped.append(child)
                    log.info("skipping symlink %s", de.path)
                    continue
                try:
                    st = de.stat(follow_symlinks=True)
                except OSError as exc:
                    log.warning("skipping %s: %s", de.path, exc)
                    skipped.append(child)
                    continue
                check_uftp_name(child)
                entry = Entry(child, st.st_size, st.st_mtime, st.st_mode, stat_mod.S_ISDIR(st.st_mode))
                if entry.is_dir:
                    dirs.append((entry, de.path))
                    children.append((child, de.path, depth + 1))
                elif stat_mod.S_ISREG(st.st_mode):
                    files.append((entry, de.path))
                else:
                    skipped.append(child)
        stack.extend(reversed(children))
    return dirs, files, skipped


# ------------------------------------------------------------------------------ archive mode
@dataclass
class TarMember:
    rel: str
    path: str
    size: int
    mtime: float
    mode: int


class TarStream(io.RawIOBase):
    """A readable, uncompressed tar stream of ``members``, generated as it is read.

    Each member's content is read from disk in chunks; ``on_data(member, chunk)`` sees every
    chunk (hashing, progress, pacing) before it is handed out.  A file that shrank while being
    archived is an error: silently padding it would store a corrupt file.
    """

    CHUNK = 1 << 20

    def __init__(self, members: list[TarMember], on_data: Callable[[TarMember, memoryview], None] | None = None,
                 chunk: int = CHUNK):
        super().__init__()
        self._gen = self._generate(members, on_data, chunk)
        self._pending = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        out = memoryview(b).cast("B")
        while not len(self._pending):
            nxt = next(self._gen, None)
            if nxt is None:
                return 0
            self._pending = memoryview(nxt)
        n = min(len(out), len(self._pending))
        out[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    @staticmethod
    def _generate(members: list[TarMember], on_data: Callable[[TarMember, memoryview], None] | None,
                  chunk: int) -> Iterator[bytes | bytearray | memoryview]:
        buf = bytearray(chunk)
        for m in members:
            info = tarfile.TarInfo(m.rel)
            info.size = m.size
            info.mtime = int(m.mtime)
            info.mode = m.mode & 0o777
            info.type = tarfile.REGTYPE
            yield info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
            fd = os.open(m.path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
            try:
                pos = 0
                while pos < m.size:
                    want = min(chunk, m.size - pos)
                    view = memoryview(buf)[:want]
                    n = os.preadv(fd, [view], pos) if hasattr(os, "preadv") else _pread(fd, view, pos)
                    if n <= 0:
                        raise UFTPError(f"{m.path!r} shrank while being archived ({pos} of {m.size} bytes)")
                    if on_data is not None:
                        on_data(m, view[:n])
                    yield view[:n]  # consumed before the buffer is refilled
                    pos += n
            finally:
                os.close(fd)
            if m.size % tarfile.BLOCKSIZE:
                yield bytes(tarfile.BLOCKSIZE - m.size % tarfile.BLOCKSIZE)
        yield bytes(2 * tarfile.BLOCKSIZE)  # end-of-archive marker


def _pread(fd: int, view: memoryview, offset: int) -> int:
    data = os.pread(fd, len(view), offset)
    view[: len(data)] = data
    return len(data)
