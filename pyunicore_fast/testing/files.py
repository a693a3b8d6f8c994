"""File-system mechanics behind the storage ``files`` API: paths, properties, ranges, metadata.

Kept apart from the HTTP routes so that jobs (stage-in/out), transfers and workflows resolve
and describe files exactly as the REST layer does.
"""

from __future__ import annotations

import os
import posixpath
import re
import shutil
import stat
import threading
from typing import Any

from pyunicore_fast.testing.common import iso_time
from pyunicore_fast.testing.routing import HTTPError

_RANGE_RE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$", re.IGNORECASE)


def normalize(path: str) -> str:
    """The server's path normalisation: ``\\`` → ``/``, leading ``/``, no ``..`` above root."""
    path = (path or "").replace("\\", "/")
    norm = posixpath.normpath("/" + path)
    if norm.startswith("//"):
        norm = "/" + norm.lstrip("/")
    return norm


def resolve(root: str, path: str) -> tuple[str, str]:
    """Absolute local path and normalised storage path (``/a/b``) of ``path`` below ``root``."""
    rel = normalize(path)
    absolute = os.path.join(root, rel.lstrip("/")) if rel != "/" else root
    return absolute, rel


def permissions_string(mode: int) -> str:
    """``rwxr-x---`` from a mode."""
    out = []
    for who in ("USR", "GRP", "OTH"):
        for what, ch in (("R", "r"), ("W", "w"), ("X", "x")):
            out.append(ch if mode & getattr(stat, f"S_I{what}{who}") else "-")
    return "".join(out)


def parse_permissions(text: str, current: int) -> int:
    """``rwxr-x---`` (or just the owner's ``rwx``) → mode bits; ValueError if malformed."""
    text = text.strip()
    if len(text) not in (3, 9) or any(c not in "rwx-" for c in text):
        raise ValueError(f"Invalid permissions '{text}'")
    if len(text) == 3:
        text = text + permissions_string(current)[3:]
    mode = 0
    for i, ch in enumerate(text):
        if ch != "-":
            mode |= 1 << (8 - i)
    return mode


def parse_range(header: str, size: int) -> tuple[int, int]:
    """``Range`` → ``(offset, length)``; :class:`HTTPError` 416 if unusable."""
    m = _RANGE_RE.match(header)
    if not m or (m.group(1) == "" and m.group(2) == ""):
        raise HTTPError(416, f"Cannot parse range header '{header}'",
                        {"Content-Range": f"bytes */{size}"})
    first, last = m.group(1), m.group(2)
    if first == "":
        n = int(last)
        offset = max(0, size - n)
        end = size - 1
    else:
        offset = int(first)
        end = int(last) if last else size - 1
        end = min(end, size - 1)
    if offset >= size > 0 or end < offset and size > 0:
        raise HTTPError(416, f"Requested range '{header}' not satisfiable for size {size}",
                        {"Content-Range": f"bytes */{size}"})
    return offset, max(0, end - offset + 1)


class MetadataStore:
    """Per-file metadata (e.g. the upload ``Content-Type``), keyed by absolute local path."""

    def __init__(self) -> None:
        self._data: dict[str, dict[str, str]] = {}
        self._groups: dict[str, str] = {}
        self._lock = threading.Lock()

    def get(self, path: str) -> dict[str, str]:
        with self._lock:
            return dict(self._data.get(path, {}))

    def set(self, path: str, meta: dict[str, str]) -> None:
        with self._lock:
            if meta:
                self._data[path] = dict(meta)
            else:
                self._data.pop(path, None)

    def update(self, path: str, **items: str) -> None:
        with self._lock:
            self._data.setdefault(path, {}).update(items)

    def group(self, path: str) -> str | None:
        with self._lock:
            return self._groups.get(path)

    def set_group(self, path: str, group: str) -> None:
        with self._lock:
            self._groups[path] = group

    def forget(self, path: str) -> None:
        """Drop the entries of ``path`` and everything below it."""
        prefix = path.rstrip("/") + "/"
        with self._lock:
            for store in (self._data, self._groups):
                for k in [k for k in store if k == path or k.startswith(prefix)]:
                    del store[k]

    def move(self, src: str, dst: str) -> None:
        prefix = src.rstrip("/") + "/"
        with self._lock:
            for store in (self._data, self._groups):
                for k in [k for k in store if k == src or k.startswith(prefix)]:
                    store[dst + k[len(src):]] = store.pop(k)  # type: ignore[assignment]


def file_properties(abs_path: str, owner: str | None, group: str | None,
                    metadata: MetadataStore, st: os.stat_result | None = None) -> dict[str, Any]:
    """The JSON properties of one file or directory (without ``content``/``_links``)."""
    if st is None:
        st = os.stat(abs_path)
    is_dir = stat.S_ISDIR(st.st_mode)
    return {
        "isDirectory": is_dir,
        "size": 0 if is_dir else st.st_size,
        "lastAccessed": iso_time(st.st_mtime),
        "owner": owner or "",
        "group": metadata.group(abs_path) or group or "",
        "permissions": permissions_string(st.st_mode),
        "metadata": metadata.get(abs_path),
    }


def list_directory(abs_dir: str, rel_dir: str) -> list[tuple[str, str, os.stat_result]]:
    """Children of a directory as ``(listing key, absolute path, stat)``, sorted by name.

    Keys are storage paths with a leading ``/`` and, for directories, a trailing ``/``.
    """
    out = []
    with os.scandir(abs_dir) as it:
        entries = sorted(it, key=lambda e: e.name)
    for e in entries:
        try:
            st = e.stat()
        except OSError:
            continue  # dangling symlink
        key = posixpath.join(rel_dir, e.name)
        if stat.S_ISDIR(st.st_mode):
            key += "/"
        out.append((key, e.path, st))
    return out


def remove_path(abs_path: str) -> None:
    if os.path.isdir(abs_path) and not os.path.islink(abs_path):
        shutil.rmtree(abs_path)
    else:
        os.unlink(abs_path)


def copy_path(src: str, dst: str) -> None:
    if os.path.isdir(src):
        shutil.copytree(src, dst, symlinks=True, dirs_exist_ok=True)
    else:
        parent = os.path.dirname(dst)
        if parent:
            os.makedirs(parent, exist_ok=True)
        shutil.copyfile(src, dst)
        shutil.copymode(src, dst)
