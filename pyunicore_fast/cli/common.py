"""Helpers the UFTP file commands share: output options, sessions, globs, tree walks, JSON."""

from __future__ import annotations

import argparse
import contextlib
import fnmatch
import json
import posixpath
import sys
from collections.abc import Iterator
from typing import Any

from pyunicore_fast.cli import locations
from pyunicore_fast.cli.errors import UsageError
from pyunicore_fast.cli.locations import UFTPPath

#: version tag of every JSON document the CLI prints; bump on incompatible changes.
SCHEMA_VERSION = 1


def add_output_args(parser: argparse.ArgumentParser, *, progress: bool = False) -> None:
    """``--json``, ``-q``, ``--timeout`` (and ``-D`` for transfers)."""
    group = parser.add_argument_group("Output")
    group.add_argument("--json", action="store_true", help="Print a machine-readable JSON document on stdout")
    group.add_argument("-q", "--quiet", action="store_true", help="No progress bars or informational output")
    if progress:
        group.add_argument("-D", "--progress", action="store_true",
                           help="Show progress bars even when stdout is not a terminal")
    group.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS",
                       help="Network timeout of every UFTP operation (default 30)")


def print_json(doc: dict[str, Any], file: Any = None) -> None:
    """Pretty JSON on stdout (stderr when stdout carries data, e.g. ``cp URL - --json``)."""
    out = file or sys.stdout
    json.dump(doc, out, indent=2, sort_keys=False)
    out.write("\n")
    out.flush()


def parse_item(text: str) -> locations.Location:
    """A location naming one item (mkdir/rm/checksum): ``/data/dir/`` means ``/data/dir``,
    so its *parent* becomes the session base directory and the item itself can be changed."""
    loc = locations.parse(text)
    if (isinstance(loc, UFTPPath) and loc.kind == "auth" and loc.path.startswith("/") and loc.path.rstrip("/")
            and loc.path.endswith("/")):
        loc = locations.parse(f"{loc.service_url}:{loc.path.rstrip('/')}")
    return loc


def require_uftp(loc: locations.Location, what: str) -> UFTPPath:
    if not isinstance(loc, UFTPPath):
        raise UsageError(f"not a UFTP URL: {loc} (expected https://HOST:PORT/rest/auth/NAME:/path)")
    return loc


@contextlib.contextmanager
def session_for(loc: UFTPPath, credential: Any, timeout: float, **kw: Any) -> Iterator[Any]:
    """A logged-in session at the location's base directory, closed afterwards."""
    from pyunicore_fast.cli.remote import make_endpoint

    endpoint = make_endpoint(loc, credential, timeout=timeout, **kw)
    session = endpoint.session()
    try:
        yield session
    finally:
        session.close()


def expand(session: Any, loc: UFTPPath) -> list[str]:
    """Session paths named by ``loc`` (a glob in the last element matches in its directory)."""
    if not loc.has_glob:
        import uftpcore

        try:
            session.stat(loc.session_path)
        except uftpcore.NotFoundError:
            raise FileNotFoundError(f"{loc.url_of(loc.session_path)}: no such file or directory") from None
        return [loc.session_path]
    parent, pattern = posixpath.split(loc.rel)
    names = sorted(i.name for i in session.listdir(parent or "."))
    matches = [posixpath.join(parent, n) if parent else n for n in names if fnmatch.fnmatchcase(n, pattern)]
    if not matches:
        raise FileNotFoundError(f"no match for {loc}")
    return matches


def walk(session: Any, top: str) -> Iterator[tuple[str, list[Any], list[Any]]]:
    """``os.walk`` on the remote side (top-down): ``(dirpath, dirs, files)`` with FileInfos."""
    stack = [top]
    while stack:
        cur = stack.pop()
        entries = session.listdir(cur)
        dirs = [e for e in entries if e.is_dir]
        files = [e for e in entries if not e.is_dir]
        yield cur, dirs, files
        for d in reversed(dirs):
            stack.append(join(cur, d.name))


def join(parent: str, name: str) -> str:
    """Join session paths, treating ``.``/``""`` as the base directory."""
    if parent in ("", "."):
        return name
    return posixpath.join(parent, name)


def info_dict(info: Any, path: str | None = None) -> dict[str, Any]:
    """A FileInfo as JSON: name, path, size, mtime (epoch s), is_dir, mode (octal string), perm."""
    import stat as _stat

    return {"name": info.name, "path": path if path is not None else info.path or info.name,
            "size": int(info.size), "mtime": round(float(info.mtime), 3), "is_dir": bool(info.is_dir),
            "mode": oct(_stat.S_IMODE(info.mode)), "perm": info.perm}
