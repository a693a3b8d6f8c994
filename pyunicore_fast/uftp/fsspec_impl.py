"""fsspec file system for UFTP: ``fsspec.open("uftp://user:pw@authhost:port/rest/auth/NAME:/data/x.npy")``.

Registered through the ``fsspec.specs`` entry point for the protocols ``uftp`` (Auth server over
https, the default) and ``uftp+http`` (plain http, for loopback test servers; or pass
``scheme="http"``).  URL form, token specs and key authentication: :mod:`pyunicore_fast.uftp.urls`.

Paths are server paths: absolute (``/data/x``) or relative to the session's initial directory
(the user's home unless ``base_dir`` is given).  The Auth request asks for ``base_dir`` (default
``""``, the home directory, which leaves absolute paths usable); a non-empty ``base_dir``
confines the sessions to that directory, as uftpd enforces it.

Why it is fast:

* metadata is one round trip: ``info`` = ``MLST``, ``ls`` = one ``MLSD`` (names only: one
  ``STAT N`` on the control channel, see :mod:`.names`);
* reads are exact ``RANG`` range reads on kept sessions from a pool -- a seek costs nothing and a
  small read reuses a kept-alive data connection (no ABOR/reconnect as in fsspec's FTP driver);
  sequential reads turn into one streaming ``RETR`` per growing window (:mod:`.reader`);
  ``readinto`` fills the caller's buffer straight from the socket (fsspec's default copies
  through ``read``), and large reads bypass the cache;
* fsspec caches stay selectable (``cache_type="readahead"`` default, ``"blockcache"``,
  ``"background"``, ``"none"``, ...);
* ``cat_file``/``cat_ranges``/``cat`` and ``get``/``put`` of many files run on several sessions
  at once; single large files go through uftpcore's bulk engine (or parallel ranges);
* a written file is one streaming ``STOR`` (no temporary file, no per-block reconnect).

The listings cache (``use_listings_cache``) is *off* by default: files on HPC storage change
under running jobs, and a stale listing is a worse surprise than an extra ``MLSD``.
"""

from __future__ import annotations

import datetime
import errno
import logging
import posixpath
import secrets
import threading
from collections.abc import Callable
from typing import Any

from fsspec.callbacks import DEFAULT_CALLBACK, NoOpCallback
from fsspec.spec import AbstractBufferedFile, AbstractFileSystem
from fsspec.utils import isfilelike, stringify_path

from uftpcore import Endpoint, FileInfo, Session
from uftpcore.auth import split_auth_url
from uftpcore.errors import UFTPError
from uftpcore.session import KEEPALIVE_MAX

from . import bulk
from .names import list_names
from .oserrors import is_errno, oserrors
from .reader import StreamingReader
from .remotefile import RemoteRawFile
from .sessionpool import SessionPool, make_endpoint
from .urls import PROTOCOLS, parse_uftp_url, read_token, split_protocol, warn_if_cleartext, with_scheme

log = logging.getLogger(__name__)

DEFAULT_BLOCK_SIZE = 4 << 20
#: with the default readahead cache, reads at least this large bypass it (see UFTPFile._direct)
DIRECT_MIN = 256 << 10
_MLSD_FALLBACK_ERRNOS = (errno.ENOENT, errno.ENOTDIR)


def _join(path: str, name: str) -> str:
    if path in ("", "."):
        return name
    return path + name if path.endswith("/") else f"{path}/{name}"


def _server_arg(path: str) -> str:
    """The argument a command gets: ``""`` (the initial directory) becomes ``"."``."""
    return path or "."


class UFTPFileSystem(AbstractFileSystem):
    """fsspec interface to a UFTP server behind a UNICORE Auth server.

    Parameters
    ----------
    auth_url:
        ``https://host:port/rest/auth/NAME`` (a scheme-less ``host:port/...`` gets ``scheme``,
        https by default; a PyUNICORE-style ``...NAME:/dir`` suffix becomes ``base_dir``).
    username, password, token, identity:
        PyUNICORE's three authentication types: password, bearer token (a value, ``@file`` or
        ``@@ENVVAR``), or an SSH private key file ``identity`` (``password`` = its passphrase).
    credential:
        alternatively any object with ``get_auth_header()`` (pyunicore_fast credentials).
    base_dir:
        ``serverPath`` of the Auth request (default ``""``: the home directory, no confinement).
    scheme:
        ``"http"`` to talk to a plain-http Auth server (loopback tests), default https.
    verify:
        TLS verification for the Auth server (default: on, honouring ``REQUESTS_CA_BUNDLE``).
    max_sessions:
        sessions used at once by parallel operations (cat_ranges, get/put, large files).
    streams, encryption, compress, timeout:
        passed to the UFTP sessions (see :class:`uftpcore.Endpoint`).
    block_size:
        read block size of opened files and buffer size of writes (default 4 MiB).
    default_cache_type:
        fsspec cache of opened files (default ``"readahead"``).
    auto_mkdir:
        create missing parent directories of files written with ``open``/``pipe``/``touch``
        (default True: object-store semantics, which fsspec's own conformance tests assume;
        costs nothing unless the directory is missing).  False gives POSIX behaviour.
    streaming:
        let sequential reads of an open file become one streaming ``RETR`` per growing window
        (see :mod:`pyunicore_fast.uftp.reader`); False = exact range reads only.
    endpoint:
        a ready :class:`uftpcore.Endpoint` (e.g. ``Endpoint.from_secret``) instead of the above.
    """

    protocol = PROTOCOLS
    root_marker = ""
    blocksize = DEFAULT_BLOCK_SIZE

    def __init__(self, auth_url: str | None = None, username: str | None = None, password: str | None = None,
                 token: str | None = None, identity: str | None = None, base_dir: str = "", *,
                 scheme: str | None = None, verify: bool | str | None = None, credential: Any = None,
                 headers: dict[str, str] | None = None, max_sessions: int = 4, streams: int = 1,
                 encryption: str | None = None, compress: bool = False, timeout: float = 30.0,
                 block_size: int | None = None, default_cache_type: str = "readahead", auto_mkdir: bool = True,
                 streaming: bool = True, endpoint: Endpoint | None = None, **kwargs: Any):
        kwargs.setdefault("use_listings_cache", False)
        super().__init__(**kwargs)
        if endpoint is None:
            if auth_url is None:
                raise ValueError("UFTPFileSystem needs an auth_url (or a uftp:// URL, or an endpoint)")
            auth_url, suffix = split_auth_url(with_scheme(auth_url, scheme))
            if suffix and not base_dir:
                base_dir = suffix
            token = read_token(token)
            warn_if_cleartext(auth_url, bool(password or token or credential or headers))
            endpoint = make_endpoint(auth_url, username=username, password=password, token=token,
                                     identity=identity, credential=credential, headers=headers, base_dir=base_dir,
                                     verify=verify, streams=streams, encryption=encryption, compress=compress,
                                     timeout=timeout)
        self.endpoint = endpoint
        self.auth_url = endpoint.auth_url
        self.username = username
        self.base_dir = endpoint.base_dir
        self.max_sessions = max(1, int(max_sessions))
        self.block_size = int(block_size or DEFAULT_BLOCK_SIZE)
        self.default_cache_type = default_cache_type
        self.auto_mkdir = auto_mkdir
        self.streaming = streaming
        self._pool = SessionPool(endpoint, max_sessions=self.max_sessions)
        self._batch = threading.local()

    # ------------------------------------------------------------------ URLs and paths
    @classmethod
    def _strip_protocol(cls, path: Any) -> Any:
        if isinstance(path, list):
            return [cls._strip_protocol(p) for p in path]
        path = stringify_path(path)
        if split_protocol(path)[0] is not None:
            path = parse_uftp_url(path).path
        if len(path) > 1:
            path = path.rstrip("/") or "/"
        return path

    @staticmethod
    def _get_kwargs_from_urls(path: str) -> dict[str, Any]:
        if split_protocol(path)[0] is None:
            return {}
        return parse_uftp_url(path).credential_kwargs()

    @classmethod
    def _parent(cls, path: str) -> str:
        path = cls._strip_protocol(path)
        if "/" not in path:
            return ""
        return path.rsplit("/", 1)[0] or "/"

    def unstrip_protocol(self, name: str) -> str:
        """A URL that names ``name`` on this server (without secrets)."""
        if split_protocol(name)[0] is not None:
            return name
        auth = self.auth_url or ""
        scheme, _, rest = auth.partition("://")
        proto = "uftp+http" if scheme == "http" else "uftp"
        user = f"{self.username}@" if self.username else ""
        return f"{proto}://{user}{rest}:{name}"

    @property
    def fsid(self) -> str:
        return f"uftp:{self.auth_url}:{self.base_dir}"

    # ------------------------------------------------------------------ helpers
    def _run(self, path: str, fn: Callable[[Session], Any], *, idempotent: bool = True) -> Any:
        with oserrors(path):
            return self._pool.run(fn, idempotent=idempotent)

    def _entry(self, path: str, fi: FileInfo) -> dict[str, Any]:
        return {"name": path, "size": fi.size, "type": "directory" if fi.is_dir else "file", "mtime": fi.mtime,
                "mode": fi.mode, "perm": fi.perm}

    def _invalidate(self, *paths: str) -> None:
        for p in paths:
            self.invalidate_cache(p)

    def invalidate_cache(self, path: str | None = None) -> None:
        if path is None:
            self.dircache.clear()
        else:
            path = self._strip_protocol(path)
            self.dircache.pop(path, None)
            self.dircache.pop(self._parent(path), None)
        super().invalidate_cache(path)

    # ------------------------------------------------------------------ metadata
    def ls(self, path: str, detail: bool = True, **kwargs: Any) -> list[Any]:
        path = self._strip_protocol(path)
        listing = None
        if self.dircache.use_listings_cache:
            try:
                listing = self._ls_from_cache(path)
            except FileNotFoundError:
                listing = None
        if listing is None:
            if not detail:
                return self._list_names(path)
            listing = self._listdir(path)
        return listing if detail else [e["name"] for e in listing]

    def _list_names(self, path: str) -> list[str]:
        """Names only: one ``STAT N`` on the control channel (see :mod:`.names`)."""
        names, ambiguous = self._run(path, lambda s: list_names(s, _server_arg(path)))
        if ambiguous and self.info(path)["type"] == "file":
            return [path]
        return [_join(path, n) for n in names]

    def _listdir(self, path: str) -> list[dict[str, Any]]:
        try:
            infos = self._run(path, lambda s: s.listdir(_server_arg(path)))
        except OSError as exc:
            if exc.errno not in _MLSD_FALLBACK_ERRNOS:
                raise
            info = self.info(path)  # FileNotFoundError when it does not exist at all
            if info["type"] == "directory":
                raise
            return [info]
        entries = [self._entry(_join(path, fi.name), fi) for fi in infos]
        if self.dircache.use_listings_cache:
            self.dircache[path] = entries
        return entries

    def info(self, path: str, **kwargs: Any) -> dict[str, Any]:
        path = self._strip_protocol(path)
        if self.dircache.use_listings_cache:
            parent = self._parent(path)
            cached = self.dircache.get(parent) if parent != path else None
            if cached is not None:
                for entry in cached:
                    if entry["name"] == path:
                        return dict(entry)
        fi = self._run(path, lambda s: s.stat(_server_arg(path)))
        return self._entry(path, fi)

    def exists(self, path: str, **kwargs: Any) -> bool:
        try:
            self.info(path)
            return True
        except FileNotFoundError:
            return False
        except OSError as exc:
            if exc.errno == errno.EINVAL:  # names uftpd cannot address do not exist for us
                return False
            raise

    def modified(self, path: str) -> datetime.datetime:
        """Last modification (``MLST`` ``modify`` fact, seconds resolution)."""
        return datetime.datetime.fromtimestamp(self.info(path)["mtime"], tz=datetime.timezone.utc)

    def created(self, path: str) -> datetime.datetime:
        """UFTPD reports no creation time; this is the modification time, the latest moment the
        file can have been created (so it is never later than the truth... of the last write)."""
        return self.modified(path)

    def checksum(self, path: str) -> int:
        """Server-side ``HASH`` (MD5) of the content as an int: equal for equal content."""
        return int(self.file_hash(path, "MD5"), 16)

    def file_hash(self, path: str, algorithm: str = "SHA-256") -> str:
        """Hex digest computed by uftpd (``MD5``, ``SHA-1``, ``SHA-256``, ``SHA-512``): no data moves."""
        path = self._strip_protocol(path)
        return self._run(path, lambda s: s.checksum(_server_arg(path), algorithm))

    # ------------------------------------------------------------------ directories
    def mkdir(self, path: str, create_parents: bool = True, **kwargs: Any) -> None:
        path = self._strip_protocol(path)
        try:
            self._run(path, lambda s: s.mkdir(path), idempotent=False)
        except FileNotFoundError:
            if not create_parents:
                raise
            self.makedirs(self._parent(path), exist_ok=True)
            self._run(path, lambda s: s.mkdir(path), idempotent=False)
        self._invalidate(path)

    def makedirs(self, path: str, exist_ok: bool = False) -> None:
        path = self._strip_protocol(path)
        if path in ("", "/", "."):
            if exist_ok:
                return
            raise FileExistsError(errno.EEXIST, "File exists", path)
        try:
            self._run(path, lambda s: s.mkdir(path), idempotent=False)
        except FileExistsError:
            if not exist_ok or self.info(path)["type"] != "directory":
                raise
            return
        except FileNotFoundError:
            self.makedirs(self._parent(path), exist_ok=True)
            try:
                self._run(path, lambda s: s.mkdir(path), idempotent=False)
            except FileExistsError:  # created concurrently (parallel put)
                if not exist_ok:
                    raise
        self._invalidate(path)

    def rmdir(self, path: str) -> None:
        path = self._strip_protocol(path)
        self._run(path, lambda s: s.rmdir(path), idempotent=False)
        self._invalidate(path)

    def rm_file(self, path: str) -> None:
        path = self._strip_protocol(path)
        self._run(path, lambda s: s.remove(path), idempotent=False)
        self._invalidate(path)

    _rm = rm_file

    def rm(self, path: Any, recursive: bool = False, maxdepth: int | None = None) -> None:
        """Delete files (``DELE``) and, deepest first, directories (``RMD``) on one session."""
        paths = self.expand_path(path, recursive=recursive, maxdepth=maxdepth)

        def remove_all(session: Session) -> None:
            for p in reversed(paths):
                with oserrors(p):
                    try:
                        session.remove(p)
                    except UFTPError as exc:
                        if not is_errno(exc, errno.EISDIR, errno.EPERM):
                            raise
                        session.rmdir(p)

        with oserrors(str(path)):
            self._pool.run(remove_all, idempotent=False)
        self._invalidate(*paths)

    # ------------------------------------------------------------------ moving and copying
    def mv(self, path1: Any, path2: Any, recursive: bool = False, maxdepth: int | None = None, **kwargs: Any) -> None:
        """Rename on the server (``RNFR``/``RNTO``) where fsspec's copy+delete semantics allow,
        else fall back to them (globs, lists, depth limits)."""
        if not (isinstance(path1, str) and isinstance(path2, str)) or maxdepth is not None or _has_magic(path1):
            return super().mv(path1, path2, recursive=recursive, maxdepth=maxdepth, **kwargs)
        src, dst = self._strip_protocol(path1), self._strip_protocol(path2)
        if src == dst:
            return None
        src_info = self.info(src)
        if src_info["type"] == "directory" and not recursive:
            return super().mv(path1, path2, recursive=recursive, maxdepth=maxdepth, **kwargs)
        if path2.endswith("/") or (not path1.endswith("/") and self.isdir(dst)):
            dst = _join(dst, posixpath.basename(src))
        try:
            self._run(src, lambda s: s.rename(src, dst), idempotent=False)
        except FileNotFoundError:
            self.makedirs(self._parent(dst), exist_ok=True)
            self._run(src, lambda s: s.rename(src, dst), idempotent=False)
        self._invalidate(src, dst)
        return None

    def cp_file(self, path1: str, path2: str, **kwargs: Any) -> None:
        """Copy on the server side of this client: one session reads ranges while another
        streams them into a single ``STOR`` (UFTP has no server-side copy)."""
        src, dst = self._strip_protocol(path1), self._strip_protocol(path2)
        info = self.info(src)
        if info["type"] == "directory":
            self.makedirs(dst, exist_ok=True)
            return
        raw = self._open_writer(dst, "w", create_parents=True)
        try:
            size, chunk = info["size"], self.block_size
            buf = bytearray(min(chunk, max(size, 1)))
            view = memoryview(buf)
            pos = 0
            while pos < size:
                n = min(len(view), size - pos)
                part = view[:n]
                self._run(src, lambda s, part=part, at=pos: s.read_range_exact(src, part, at))
                raw.write(part)
                pos += n
        finally:
            raw.close()
        self._invalidate(dst)

    # ------------------------------------------------------------------ reading whole files and ranges
    def cat_file(self, path: str, start: int | None = None, end: int | None = None, **kwargs: Any) -> bytes:
        path = self._strip_protocol(path)

        def read(session: Session) -> bytes:
            lo, hi = start, end
            if (lo is not None and lo < 0) or (hi is not None and hi < 0):
                size = session.stat(path).size
                lo = max(0, size + lo) if lo is not None and lo < 0 else lo
                hi = max(0, size + hi) if hi is not None and hi < 0 else hi
            lo = lo or 0
            if hi is None:
                return session.read(path, lo)
            return session.read(path, lo, hi - lo) if hi > lo else b""

        return self._run(path, read)

    def cat_ranges(self, paths: list[str], starts: Any, ends: Any, max_gap: int | None = None,
                   on_error: str = "return", **kwargs: Any) -> list[Any]:
        """Byte ranges of one or more files, fetched on up to ``max_sessions`` sessions at once.
        (``max_gap`` is accepted for compatibility; ranges are exact, so there is nothing to merge.)"""
        if not isinstance(paths, list):
            raise TypeError("paths must be a list")
        starts = starts if isinstance(starts, list) else [starts] * len(paths)
        ends = ends if isinstance(ends, list) else [ends] * len(paths)
        if len(starts) != len(paths) or len(ends) != len(paths):
            raise ValueError("paths, starts and ends must have the same length")

        def one(args: tuple[str, int | None, int | None]) -> Any:
            try:
                return self.cat_file(*args)
            except Exception as exc:
                if on_error == "return":
                    return exc
                raise

        return bulk.parallel_map(one, list(zip(paths, starts, ends)), self.max_sessions)

    def cat(self, path: Any, recursive: bool = False, on_error: str = "raise", **kwargs: Any) -> Any:
        paths = self.expand_path(path, recursive=recursive)
        if len(paths) > 1 or isinstance(path, list) or paths[0] != self._strip_protocol(path):
            def one(p: str) -> Any:
                try:
                    return self.cat_file(p, **kwargs)
                except Exception as exc:
                    if on_error == "raise":
                        raise
                    return exc

            results = bulk.parallel_map(one, paths, self.max_sessions)
            return {p: r for p, r in zip(paths, results) if not (isinstance(r, Exception) and on_error == "omit")}
        return self.cat_file(paths[0], **kwargs)

    def pipe_file(self, path: str, value: bytes, mode: str = "overwrite", **kwargs: Any) -> None:
        path = self._strip_protocol(path)
        if mode == "create" and self.exists(path):
            raise FileExistsError(errno.EEXIST, "File exists", path)
        try:
            self._run(path, lambda s: s.write(path, value), idempotent=False)
        except FileNotFoundError:
            if not self.auto_mkdir:
                raise
            self.makedirs(self._parent(path), exist_ok=True)
            self._run(path, lambda s: s.write(path, value), idempotent=False)
        self._invalidate(path)

    def touch(self, path: str, truncate: bool = True, **kwargs: Any) -> None:
        """Create an empty file, or (``truncate=False`` on an existing file) set its mtime to now."""
        import time

        path = self._strip_protocol(path)
        if truncate or not self.exists(path):
            self.pipe_file(path, b"")
        else:
            self._run(path, lambda s: s.set_mtime(path, time.time()), idempotent=False)
            self._invalidate(path)

    # ------------------------------------------------------------------ bulk transfers
    @staticmethod
    def _transfer_options(kwargs: dict[str, Any]) -> dict[str, Any]:
        """``sessions``, ``streams``, ``verify`` (engine default: on), ``preserve`` from get/put kwargs."""
        return {k: kwargs[k] for k in ("sessions", "streams", "verify", "preserve") if k in kwargs}

    def get_file(self, rpath: str, lpath: Any, callback: Any = DEFAULT_CALLBACK, outfile: Any = None,
                 **kwargs: Any) -> None:
        """One file through the bulk engine (parallel ranges for large files, verified), or into
        an open local file with ``pwrite`` (a non-regular target gets a stream)."""
        jobs = getattr(self._batch, "jobs", None)
        if jobs is not None:
            jobs.append((rpath, lpath, outfile, kwargs))
            return
        import os

        rpath = self._strip_protocol(rpath)
        if outfile is None and isfilelike(lpath):
            outfile = lpath
        info = self.info(rpath)
        if info["type"] == "directory":
            if outfile is None:
                os.makedirs(lpath, exist_ok=True)
            return
        callback.set_size(info["size"])
        if outfile is not None:
            fd = bulk.regular_fd(outfile)
            if fd is not None and "a" not in getattr(outfile, "mode", ""):
                outfile.flush()
                start = outfile.tell()
                got = bulk.download_to_fd(self._pool, rpath, fd, info["size"], local_offset=start,
                                          progress=callback.relative_update)
                outfile.seek(start + got)
            else:
                self._run(rpath, lambda s: s.download_fileobj(rpath, outfile))
            return
        lpath = os.fspath(lpath)
        parent = os.path.dirname(lpath)
        if parent:
            os.makedirs(parent, exist_ok=True)
        bulk.download_file(self._pool, rpath, lpath, size=info["size"], mtime=info["mtime"],
                           progress=callback.relative_update, **self._transfer_options(kwargs))

    def get(self, rpath: Any, lpath: Any, recursive: bool = False, callback: Any = DEFAULT_CALLBACK,
            maxdepth: int | None = None, **kwargs: Any) -> None:
        """fsspec's path expansion, then one bulk-engine call for all files (parallel sessions)."""
        import os

        jobs: list[tuple[Any, ...]] = []
        self._batch.jobs = jobs
        try:
            super().get(rpath, lpath, recursive=recursive, callback=NoOpCallback(), maxdepth=maxdepth, **kwargs)
        finally:
            self._batch.jobs = None
        callback.set_size(len(jobs))
        plain = [j for j in jobs if j[2] is None and not isfilelike(j[1])]
        for r, lp, outfile, kw in (j for j in jobs if j not in plain):
            self.get_file(r, lp, outfile=outfile, **kw)
            callback.relative_update(1)
        kinds = bulk.parallel_map(lambda j: self.info(j[0])["type"], plain, self.max_sessions)
        pairs = []
        for (r, lp, _, _), kind in zip(plain, kinds):
            if kind == "directory":
                os.makedirs(lp, exist_ok=True)
                callback.relative_update(1)
            else:
                pairs.append((self._strip_protocol(r), os.fspath(lp)))
        bulk.download_many(self._pool, pairs, **self._transfer_options(kwargs))
        callback.relative_update(len(pairs))

    def put_file(self, lpath: Any, rpath: str, callback: Any = DEFAULT_CALLBACK, mode: str = "overwrite",
                 **kwargs: Any) -> None:
        """One file through the bulk engine; a missing remote parent directory is created."""
        jobs = getattr(self._batch, "jobs", None)
        if jobs is not None:
            jobs.append((lpath, rpath, mode, kwargs))
            return
        import os

        rpath = self._strip_protocol(rpath)
        if mode == "create" and self.exists(rpath):
            raise FileExistsError(errno.EEXIST, "File exists", rpath)
        if os.path.isdir(lpath):
            self.makedirs(rpath, exist_ok=True)
            return
        callback.set_size(os.path.getsize(lpath))
        opts = self._transfer_options(kwargs)
        try:
            bulk.upload_file(self._pool, lpath, rpath, progress=callback.relative_update, **opts)
        except FileNotFoundError as exc:
            if exc.filename != rpath:
                raise
            self.makedirs(self._parent(rpath), exist_ok=True)
            bulk.upload_file(self._pool, lpath, rpath, progress=callback.relative_update, **opts)
        self._invalidate(rpath)

    def put(self, lpath: Any, rpath: Any, recursive: bool = False, callback: Any = DEFAULT_CALLBACK,
            maxdepth: int | None = None, **kwargs: Any) -> None:
        """fsspec's path expansion; directories first, then one bulk-engine call for all files."""
        import os

        jobs: list[tuple[Any, ...]] = []
        self._batch.jobs = jobs
        try:
            super().put(lpath, rpath, recursive=recursive, callback=NoOpCallback(), maxdepth=maxdepth, **kwargs)
        finally:
            self._batch.jobs = None
        callback.set_size(len(jobs))
        files = []
        for lp, r, mode, _ in jobs:
            r = self._strip_protocol(r)
            if os.path.isdir(lp):
                self.makedirs(r, exist_ok=True)
                callback.relative_update(1)
                continue
            if mode == "create" and self.exists(r):
                raise FileExistsError(errno.EEXIST, "File exists", r)
            files.append((os.fspath(lp), r))
        bulk.upload_many(self._pool, files, **self._transfer_options(kwargs))
        callback.relative_update(len(files))
        self._invalidate(*(r for _, r in files))

    # ------------------------------------------------------------------ files
    def _open_writer(self, path: str, mode: str, create_parents: bool = False) -> RemoteRawFile:
        try:
            return RemoteRawFile(self._pool, path, mode)
        except FileNotFoundError:
            if not (create_parents or self.auto_mkdir):
                raise
            self.makedirs(self._parent(path), exist_ok=True)
            return RemoteRawFile(self._pool, path, mode)

    def _read_range(self, path: str, start: int, length: int) -> bytes:
        """Exactly ``length`` bytes from ``start`` (the caller clamped the range to the file).

        Received into one buffer on the kept-alive data connection (in pieces of at most
        ``KEEPALIVE_MAX``, the largest exact read uftpcore keeps the connection for) and copied
        once into ``bytes``: measured faster than a fresh data connection per range, whose
        EPSV + connect + teardown costs more than the copy.
        """
        if length <= 0:
            return b""
        buf = bytearray(length)
        self._read_into(path, memoryview(buf), start)
        return bytes(buf)

    def _read_into(self, path: str, view: memoryview, start: int) -> int:
        """Fill ``view`` (inside the file) from ``start`` on one pooled session."""
        def fill(session: Session) -> int:
            done, total = 0, len(view)
            while done < total:
                n = min(KEEPALIVE_MAX, total - done)
                done += session.read_range_exact(path, view[done:done + n], start + done)
            return done

        return self._run(path, fill)

    def _open(self, path: str, mode: str = "rb", block_size: int | None = None, autocommit: bool = True,
              cache_options: dict[str, Any] | None = None, **kwargs: Any) -> UFTPFile:
        path = self._strip_protocol(path)
        cache_type = kwargs.pop("cache_type", None) or self.default_cache_type
        return UFTPFile(self, path, mode, block_size=block_size or self.block_size, autocommit=autocommit,
                        cache_type=cache_type, cache_options=cache_options, **kwargs)

    def close(self) -> None:
        """Close the idle sessions (the instance stays usable: new sessions are made on demand)."""
        self._pool.close()
        self._pool = SessionPool(self.endpoint, max_sessions=self.max_sessions)

    def __del__(self) -> None:
        pool = getattr(self, "_pool", None)
        if pool is not None:
            try:
                pool.close()
            except Exception:
                log.debug("error closing UFTP sessions during garbage collection", exc_info=True)


class UFTPFile(AbstractBufferedFile):
    """An open UFTP file: fsspec caches over exact range reads; writes stream into one ``STOR``.

    Modes ``rb``, ``wb``, ``ab``, ``xb``.  Writes start the upload at open (so a missing
    directory fails at ``open``, and ``xb`` checks existence first); inside an fsspec transaction
    the data goes to a hidden temporary name that ``commit()`` renames into place.
    """

    fs: UFTPFileSystem

    def __init__(self, fs: UFTPFileSystem, path: str, mode: str = "rb", block_size: Any = "default",
                 autocommit: bool = True, cache_type: str = "readahead", cache_options: dict[str, Any] | None = None,
                 size: int | None = None, **kwargs: Any):
        if mode == "xb" and fs.exists(path):
            raise FileExistsError(errno.EEXIST, "File exists", path)
        self._raw: RemoteRawFile | None = None
        self._reader_obj: StreamingReader | None = None
        # fsspec's background cache fetches on its own thread, concurrently with the caller's
        # reads: a stream serves one sequence of reads, so that cache gets exact range reads.
        self._streaming = fs.streaming and cache_type != "background"
        self._target = path
        super().__init__(fs, path, mode=mode, block_size=block_size, autocommit=autocommit, cache_type=cache_type,
                         cache_options=cache_options, size=size, **kwargs)
        if mode == "rb":
            if size is None and self.details.get("type") == "directory":
                raise IsADirectoryError(errno.EISDIR, "Is a directory", path)
            return
        if not autocommit:
            head, tail = posixpath.split(path)
            self._target = _join(head, f".{tail}.{secrets.token_hex(4)}.uftp-txn") if head else \
                f".{tail}.{secrets.token_hex(4)}.uftp-txn"
        self._raw = fs._open_writer(self._target, "a" if mode == "ab" else "w")
        self.offset = 0  # the upload is initiated: flush() must not initiate it again

    # -- reading -----------------------------------------------------------------------------------
    @property
    def _reader(self) -> StreamingReader:
        """Created on first use: some caches (``all``, ``first``) fetch inside fsspec's __init__."""
        if self._reader_obj is None:
            self._reader_obj = StreamingReader(self.fs._pool, self.path, self.size, streaming=self._streaming)
        return self._reader_obj

    def _fetch_range(self, start: int, end: int) -> bytes:
        end = min(end, self.size)
        return self._reader.read_bytes(start, end - start)

    def _direct(self, n: int) -> bool:
        """Which reads skip the cache and go straight to the reader (stream or exact range).

        Reads of at least a block, any read without a cache, and -- with the default
        ``readahead`` cache -- reads of at least ``DIRECT_MIN``: sequential reads are served by
        the reader's stream anyway, so read-ahead would only add a copy, and for random reads it
        would only add bytes nobody asked for.  Small reads (lines, headers) keep the cache.
        """
        name = getattr(self.cache, "name", "")
        return n >= self.blocksize or name == "none" or (name == "readahead" and n >= DIRECT_MIN)

    def readinto(self, b: Any) -> int:
        """Fill ``b`` from the current position: straight from the socket into ``b`` when the read
        bypasses the cache (no intermediate ``bytes``), else one copy out of the cache."""
        if self.mode != "rb":
            raise ValueError("File not in read mode")
        if self.closed:
            raise ValueError("I/O operation on closed file.")
        view = memoryview(b).cast("B")
        try:
            n = min(len(view), max(0, self.size - self.loc))
            if n == 0:
                return 0
            if self._direct(n):
                got = self._reader.read_into(view[:n], self.loc)
            else:
                data = self.cache._fetch(self.loc, self.loc + n)
                got = len(data)
                view[:got] = data
            self.loc += got
            return got
        finally:
            view.release()

    def read(self, length: int = -1) -> bytes:
        length = -1 if length is None else int(length)
        if self.mode != "rb":
            raise ValueError("File not in read mode")
        if self.closed:
            raise ValueError("I/O operation on closed file.")
        if length < 0:
            length = self.size - self.loc
        n = min(length, max(0, self.size - self.loc))
        if n > 0 and self._direct(n):
            data = self._reader.read_bytes(self.loc, n)
            self.loc += len(data)
            return data
        return super().read(length)

    # -- writing -----------------------------------------------------------------------------------
    def write(self, data: Any) -> int:
        """Buffer small writes; a write of at least a block with an empty buffer goes straight
        onto the upload stream (no copy into the buffer)."""
        if self.writable() and not self.forced and self.buffer.tell() == 0 and self._raw is not None:
            view = memoryview(data).cast("B")
            try:
                if len(view) >= self.blocksize:
                    n = self._raw.write(view)
                    self.loc += n
                    self.offset = (self.offset or 0) + n
                    return n
            finally:
                view.release()
        return super().write(data)

    def _initiate_upload(self) -> None:
        if self._raw is None:  # only when a subclass skipped the eager start
            self._raw = self.fs._open_writer(self._target, "a" if self.mode == "ab" else "w")

    def _upload_chunk(self, final: bool = False) -> bool:
        assert self._raw is not None
        buf = self.buffer.getbuffer()
        try:
            if len(buf):
                self._raw.write(buf)
        finally:
            buf.release()
        if final:
            self._raw.close()
            self.fs.invalidate_cache(self._target)
        return True

    def commit(self) -> None:
        """End of a transaction: move the temporary file into place."""
        if self._target != self.path:
            self.fs._run(self.path, lambda s: s.rename(self._target, self.path), idempotent=False)
            self.fs.invalidate_cache(self.path)

    def discard(self) -> None:
        """Transaction rolled back: remove the temporary file."""
        if self._target != self.path:
            try:
                self.fs.rm_file(self._target)
            except FileNotFoundError:
                pass

    def close(self) -> None:
        try:
            super().close()
        finally:
            if self._reader_obj is not None:
                self._reader_obj.close()
            raw = self._raw
            if raw is not None and not raw.closed:
                raw.close()

    def __del__(self) -> None:
        try:
            super().__del__()
        except Exception:
            log.warning("error closing %s during garbage collection", getattr(self, "path", "?"), exc_info=True)


def _has_magic(path: str) -> bool:
    return any(c in path for c in "*?[")


__all__ = ["UFTPFile", "UFTPFileSystem"]
