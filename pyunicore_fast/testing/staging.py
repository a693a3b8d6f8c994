"""Moving data in and out of job directories and storages (the TSI/XNJS data-staging role).

One place resolves every source/target form the server accepts — inline data, ``file://``
and absolute paths, UNICORE file URLs of this site (resolved locally, with the job owner's
access rights) or of another server (HTTP with a delegation token), plain ``http(s)://``
URLs, ``link:`` — so job Imports/Exports, server-to-server transfers and workflows behave
the same.
"""

from __future__ import annotations

import glob
import logging
import os
import posixpath
import shutil
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote, urlsplit

from pyunicore_fast.testing import files as fs
from pyunicore_fast.testing.common import has_wildcard, wildcard_match
from pyunicore_fast.testing.context import verify_for

if TYPE_CHECKING:
    from pyunicore_fast.testing.auth import Identity
    from pyunicore_fast.testing.context import SiteContext

log = logging.getLogger(__name__)

Progress = Callable[[int], None]
_CHUNK = 1 << 20


class StagingError(Exception):
    """A data-staging step failed; the message ends up in the job log / transfer status."""


def _noop(_: int) -> None:
    pass


def split_protocol(url: str) -> tuple[str | None, str]:
    """``"UFTP:https://..."`` → ``("UFTP", "https://...")``; plain URLs have no protocol."""
    head, sep, tail = url.partition(":")
    if sep and tail.startswith(("http://", "https://")) and head.upper() in ("BFT", "UFTP", "RBYTEIO",
                                                                              "SBYTEIO", "HTTP"):
        return head.upper(), tail
    return None, url


def is_unicore_file_url(url: str) -> bool:
    return url.startswith(("http://", "https://")) and "/rest/core/storages/" in url and \
        "/files" in urlsplit(url).path


def _local_path_allowed(ctx: SiteContext, identity: Identity, path: str) -> bool:
    """``file://`` access: anything outside the emulator root, or the caller's own storages.

    Inside the emulator root a user must not reach other users' homes and job directories.
    """
    real = os.path.realpath(path)
    root = os.path.realpath(ctx.root_dir)
    if not (real == root or real.startswith(root + os.sep)):
        return True
    for storage in ctx.storages.list_for(identity, include_job_dirs=True):
        try:
            sroot = os.path.realpath(storage.root_for(identity))
        except Exception as exc:  # noqa: BLE001 - inaccessible storage: no access
            log.debug("storage %s not accessible: %s", storage.id, exc)
            continue
        if real == sroot or real.startswith(sroot + os.sep):
            return True
    return False


def _copy_stream(src: Any, dst: Any, progress: Progress) -> int:
    total = 0
    while True:
        data = src.read(_CHUNK)
        if not data:
            return total
        dst.write(data)
        total += len(data)
        progress(len(data))


def _write_local(dest: str, reader: Any, mode: str, progress: Progress) -> int:
    if mode == "nooverwrite" and os.path.exists(dest):
        raise StagingError(f"File '{os.path.basename(dest)}' exists and mode is 'nooverwrite'")
    parent = os.path.dirname(dest)
    if parent:
        os.makedirs(parent, exist_ok=True)
    with open(dest, "ab" if mode == "append" else "wb") as out:
        return _copy_stream(reader, out, progress)


def _auth_headers(ctx: SiteContext, identity: Identity, credentials: dict[str, Any] | None) -> dict[str, str]:
    if credentials:
        if "Username" in credentials:
            import base64

            raw = f"{credentials['Username']}:{credentials.get('Password', '')}".encode()
            return {"Authorization": "Basic " + base64.b64encode(raw).decode()}
        if credentials.get("BearerToken"):
            return {"Authorization": "Bearer " + str(credentials["BearerToken"])}
        if "Token" in credentials:
            return {"Authorization": "Token " + str(credentials["Token"])}
    if identity is not None and identity.account is not None:
        token = ctx.authenticator.issue_token(identity, lifetime=3600, internal=True)
        return {"Authorization": "Bearer " + token}
    return {}


def _resolve_local(ctx: SiteContext, identity: Identity, url: str) -> tuple[Any, str, str] | None:
    """A UNICORE file URL of this very site, with the caller's access rights applied."""
    if not is_unicore_file_url(url):
        return None
    from pyunicore_fast.testing.routing import HTTPError

    try:
        return ctx.storages.resolve_url(url, identity)
    except HTTPError as exc:
        what = "access denied" if exc.status in (401, 403) else "no such storage"
        raise StagingError(f"Cannot use '{url}': {what} (HTTP {exc.status})") from exc


def _http():
    import requests

    return requests


def fetch(ctx: SiteContext, identity: Identity, source: str, dest: str, *,
          credentials: dict[str, Any] | None = None, mode: str = "overwrite",
          progress: Progress = _noop) -> dict[str, int]:
    """Copy ``source`` to the local path ``dest``; returns ``{source file: bytes}``.

    With a wildcard in the last path element ``dest`` is a directory receiving every match.
    """
    _, url = split_protocol(source)
    if url.startswith(("file://", "/")):
        path = unquote(urlsplit(url).path) if url.startswith("file://") else url
        return _fetch_local(ctx, identity, path, dest, mode, progress)
    if url.startswith("link:"):
        target = url[len("link:"):]
        if not _local_path_allowed(ctx, identity, target):
            raise StagingError(f"Access denied to '{target}'")
        os.makedirs(os.path.dirname(dest) or ".", exist_ok=True)
        if os.path.lexists(dest):
            os.unlink(dest)
        os.symlink(target, dest)
        return {target: 0}
    if url.startswith(("http://", "https://")):
        local = _resolve_local(ctx, identity, url)
        if local is not None:
            return _fetch_local(ctx, identity, local[1], dest, mode, progress, checked=True)
        return _fetch_http(ctx, identity, url, dest, credentials, mode, progress)
    raise StagingError(f"Unsupported protocol in '{source}'")


def _fetch_local(ctx: SiteContext, identity: Identity, path: str, dest: str, mode: str,
                 progress: Progress, checked: bool = False) -> dict[str, int]:
    if has_wildcard(os.path.basename(path)):
        matches = sorted(p for p in glob.glob(path) if os.path.isfile(p))
        out = {}
        for m in matches:
            out.update(_fetch_local(ctx, identity, m, os.path.join(dest, os.path.basename(m)),
                                    mode, progress, checked))
        return out
    if not checked and not _local_path_allowed(ctx, identity, path):
        raise StagingError(f"Access denied to '{path}'")
    if not os.path.exists(path):
        raise StagingError(f"File '{path}' does not exist")
    if os.path.isdir(path):
        fs.copy_path(path, dest)
        return {path: 0}
    with open(path, "rb") as src:
        return {path: _write_local(dest, src, mode, progress)}


def _fetch_http(ctx: SiteContext, identity: Identity, url: str, dest: str,
                credentials: dict[str, Any] | None, mode: str, progress: Progress) -> dict[str, int]:
    requests = _http()
    headers = _auth_headers(ctx, identity, credentials)
    unicore = is_unicore_file_url(url)
    if unicore and has_wildcard(posixpath.basename(urlsplit(url).path)):
        base, _, pattern = url.rpartition("/")
        listing = requests.get(base, headers={**headers, "Accept": "application/json"},
                               verify=verify_for(base), timeout=60)
        if listing.status_code != 200:
            raise StagingError(f"Cannot list '{base}': HTTP {listing.status_code}")
        out = {}
        for key, meta in listing.json().get("content", {}).items():
            name = posixpath.basename(key.rstrip("/"))
            if not meta.get("isDirectory") and wildcard_match(name, unquote(pattern)):
                out.update(_fetch_http(ctx, identity, f"{base}/{quote(name)}",
                                       os.path.join(dest, name), credentials, mode, progress))
        return out
    if unicore:
        headers["Accept"] = "application/octet-stream"
    with requests.get(url, headers=headers, stream=True, verify=verify_for(url), timeout=60) as resp:
        if resp.status_code != 200:
            raise StagingError(f"Cannot read '{url}': HTTP {resp.status_code} {_error_text(resp)}")
        resp.raw.decode_content = True
        return {url: _write_local(dest, resp.raw, mode, progress)}


def _error_text(resp: Any) -> str:
    try:
        return str(resp.json().get("errorMessage", ""))
    except ValueError:
        return resp.reason or ""


def push(ctx: SiteContext, identity: Identity, src: str, target: str, *,
         credentials: dict[str, Any] | None = None, progress: Progress = _noop) -> dict[str, int]:
    """Copy the local file(s) ``src`` (wildcards allowed) to ``target``; ``{file: bytes}``."""
    if has_wildcard(os.path.basename(src)):
        matches = sorted(p for p in glob.glob(src) if os.path.isfile(p))
        if not matches:
            raise StagingError(f"No files match '{os.path.basename(src)}'")
        out = {}
        for m in matches:
            out.update(push(ctx, identity, m, target.rstrip("/") + "/" + quote(os.path.basename(m)),
                            credentials=credentials, progress=progress))
        return out
    if not os.path.exists(src):
        raise StagingError(f"File '{os.path.basename(src)}' does not exist")
    _, url = split_protocol(target)
    if url.startswith(("file://", "/")):
        path = unquote(urlsplit(url).path) if url.startswith("file://") else url
        if not _local_path_allowed(ctx, identity, path):
            raise StagingError(f"Access denied to '{path}'")
        return _push_local(src, path, progress)
    if url.startswith(("http://", "https://")):
        local = _resolve_local(ctx, identity, url)
        if local is not None:
            dest = local[1]
            if os.path.isdir(dest):
                dest = os.path.join(dest, os.path.basename(src))
            return _push_local(src, dest, progress)
        return _push_http(ctx, identity, src, url, credentials, progress)
    raise StagingError(f"Unsupported protocol in '{target}'")


def _push_local(src: str, dest: str, progress: Progress) -> dict[str, int]:
    if os.path.isdir(src):
        fs.copy_path(src, dest)
        return {src: 0}
    with open(src, "rb") as f:
        return {src: _write_local(dest, f, "overwrite", progress)}


def _push_http(ctx: SiteContext, identity: Identity, src: str, url: str,
               credentials: dict[str, Any] | None, progress: Progress) -> dict[str, int]:
    requests = _http()
    headers = _auth_headers(ctx, identity, credentials)
    headers["Content-Type"] = "application/octet-stream"
    size = os.path.getsize(src)

    def body() -> Any:
        with open(src, "rb") as f:
            while True:
                data = f.read(_CHUNK)
                if not data:
                    return
                progress(len(data))
                yield data

    resp = requests.put(url, data=body(), headers={**headers, "Content-Length": str(size)},
                        verify=verify_for(url), timeout=60)
    if resp.status_code >= 300:
        raise StagingError(f"Cannot write '{url}': HTTP {resp.status_code} {_error_text(resp)}")
    return {src: size}


def write_inline(dest: str, data: Any, mode: str = "overwrite") -> int:
    """Inline ``Data`` of an import: a string or a list of lines."""
    text = "\n".join(str(x) for x in data) if isinstance(data, list) else str(data)
    import io

    return _write_local(dest, io.BytesIO(text.encode("utf-8")), mode, _noop)


def remove_quietly(path: str) -> None:
    shutil.rmtree(path, ignore_errors=True)
