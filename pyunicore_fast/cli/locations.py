"""What a command line argument points at: a local path, a UFTP location or a REST storage path.

UFTP locations use the peers' combined URL (uftp spec §1.1)::

    https://auth.example.org:9000/rest/auth/TEST:/data/file.bin     (Auth server)
    https://site.example.org:8080/SITE/rest/core/storages/HOME:sub/file  (UNICORE/X storage export)
    http://127.0.0.1:PORT/DEMO-SITE/rest/auth/TEST:/tmp/x           (loopback, e.g. ``serve``)

PyUNICORE's ``unicore`` file URLs, ``https://.../rest/core/storages/<id>/files/<path>``, name
a file through the REST API; the colon after the storage name is what tells them apart.

The session base directory follows the Java client, so that an Auth server's per-user
restrictions apply in the same way: an absolute path ending in ``/`` is the base itself,
another absolute path has its parent as base, and an empty or relative path starts in the
user's home (base ``""``).
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass

_HOST = r"https?://[^/\s]+"
_AUTH_RE = re.compile(rf"^(?P<svc>{_HOST}(?:/[^:\s]*)?/rest/(?:auth|access)/[^/:\s]+)(?::(?P<path>.*))?$")
_STORAGE_UFTP_RE = re.compile(rf"^(?P<svc>{_HOST}(?:/[^:\s]*)?/rest/core/storages/[^/:\s]+):(?P<path>.*)$")
_STORAGE_REST_RE = re.compile(rf"^(?P<svc>{_HOST}(?:/\S*?)?/rest/core/storages/[^/:\s]+)(?P<rest>/.*)?$")
_GLOB_CHARS = set("*?[")


@dataclass(frozen=True)
class LocalPath:
    """A local file or directory; ``-`` is stdin/stdout."""

    path: str

    @property
    def is_stdio(self) -> bool:
        return self.path == "-"

    def __str__(self) -> str:
        return self.path


@dataclass(frozen=True)
class RestPath:
    """A file on a UNICORE storage addressed through the REST API (PyUNICORE's ``unicore cp``)."""

    storage_url: str
    path: str

    def __str__(self) -> str:
        return f"{self.storage_url}/files{self.path}"


@dataclass(frozen=True)
class UFTPPath:
    """A path reachable through a UFTP session.

    ``service_url`` is the Auth endpoint (``kind="auth"``) or the storage (``kind="storage"``);
    ``base_dir`` the session base directory to request; ``rel`` the path inside the session
    (``""`` = the base directory itself).
    """

    service_url: str
    kind: str
    path: str
    base_dir: str
    rel: str

    @property
    def session_path(self) -> str:
        """``rel`` as a session command argument (``.`` for the base itself)."""
        return self.rel or "."

    @property
    def has_glob(self) -> bool:
        return bool(_GLOB_CHARS & set(posixpath.basename(self.rel)))

    @property
    def names_directory(self) -> bool:
        """The user wrote a trailing ``/``: the target is a directory."""
        return self.path.endswith("/") or self.path in ("", ".")

    def url_of(self, session_path: str) -> str:
        """The combined URL of a path inside this session (for messages and JSON)."""
        if session_path in ("", "."):
            rel = ""
        else:
            rel = session_path
        if self.kind == "storage":
            return f"{self.service_url}:/{rel}" if rel else f"{self.service_url}:/"
        if rel.startswith("/"):
            full = rel
        elif self.base_dir:
            full = posixpath.join(self.base_dir, rel) if rel else self.base_dir
        else:
            full = rel
        return f"{self.service_url}:{full}"

    def __str__(self) -> str:
        return f"{self.service_url}:{self.path}"


Location = LocalPath | RestPath | UFTPPath


def parse(text: str) -> Location:
    """Classify one command line argument."""
    m = _AUTH_RE.match(text)
    if m:
        return _uftp(m.group("svc"), "auth", m.group("path") or "")
    m = _STORAGE_UFTP_RE.match(text)
    if m:
        return _uftp(m.group("svc"), "storage", m.group("path"))
    m = _STORAGE_REST_RE.match(text)
    if m:
        rest = m.group("rest") or ""
        path = rest.split("/files", 1)[1] if rest.startswith("/files") else "/"
        return RestPath(m.group("svc"), path or "/")
    return LocalPath(text)


def is_remote_url(text: str) -> bool:
    """Any URL (optionally with a protocol prefix such as ``UFTP:``), as PyUNICORE tests it."""
    return re.match(r"([-a-z0-9]*:)?(http[s]?)?://(.*)", text.lower()) is not None


def as_upload_target(loc: UFTPPath) -> UFTPPath:
    """An upload into ``.../dir/`` opens the session at the *parent* of ``dir`` so that a missing
    ``dir`` can be created (a session cannot start in a directory that does not exist)."""
    if loc.kind != "auth" or not loc.path.startswith("/") or not loc.path.endswith("/") or loc.rel:
        return loc
    norm = posixpath.normpath(loc.path)
    if norm == "/":
        return loc
    parent, name = posixpath.split(norm)
    return UFTPPath(loc.service_url, loc.kind, loc.path, parent if parent.endswith("/") else parent + "/", name)


def _uftp(service_url: str, kind: str, path: str) -> UFTPPath:
    if kind == "storage":
        rel = posixpath.normpath("/" + path).lstrip("/")
        return UFTPPath(service_url, kind, path, "", "" if rel == "." else rel)
    if not path or not path.startswith("/"):
        rel = posixpath.normpath(path) if path else ""
        return UFTPPath(service_url, kind, path, "", "" if rel == "." else rel)
    norm = posixpath.normpath(path)
    if norm.startswith("//"):
        norm = "/" + norm.lstrip("/")
    if path.endswith("/") or norm == "/":
        base = norm if norm.endswith("/") else norm + "/"
        return UFTPPath(service_url, kind, path, base, "")
    parent, name = posixpath.split(norm)
    if _GLOB_CHARS & set(parent):
        raise ValueError(f"wildcards are only allowed in the last path element: {path}")
    return UFTPPath(service_url, kind, path, parent if parent.endswith("/") else parent + "/", name)
