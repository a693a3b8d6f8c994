"""Implementation of :mod:`pyunicore_fast.uftp.uftpfs` (imports ``fs``; loaded lazily from there).

PyUNICORE's ``UFTPFS`` is a thin subclass of ``fs.ftpfs.FTPFS``: every ``openbin`` read is a
``RETR`` on a fresh data connection that is torn down on seek, chunks are joined with
``b"".join``, every listing goes through ``LIST`` text, and each stat is a separate command.
Here each operation maps onto the UFTP command that does exactly that job on a pooled session:
``MLST`` for ``getinfo``, one ``MLSD`` for ``listdir``/``scandir``, exact ``RANG`` range reads
for ``openbin`` (buffered, seekable, kept-alive data connection), one streaming ``STOR`` per
written file, ``HASH`` on the server for ``hash``, ``MFMT``/``MFF`` for ``setinfo``,
``RNFR``/``RNTO`` for ``move``, and ``pwrite``/``sendfile`` based parallel transfers for
``download``/``upload`` into and out of local files.

FS paths are relative to ``base_path`` (the ``serverPath`` of the Auth request, which uftpd
also enforces as the root the session may not leave): ``/a/b`` on the FS is
``<base_path>/a/b`` on the server.
"""

from __future__ import annotations

import errno
import logging
import os
import posixpath
from collections.abc import Iterator
from typing import Any, BinaryIO, ClassVar

from fs import errors
from fs.base import FS
from fs.enums import ResourceType
from fs.info import Info
from fs.mode import Mode
from fs.opener import Opener
from fs.path import basename, dirname
from fs.permissions import Permissions
from fs.subfs import SubFS

from uftpcore import FileInfo
from uftpcore.errors import UFTPError

from . import bulk
from .names import list_names
from .oserrors import to_oserror
from .remotefile import RemoteRawFile, open_buffered
from .sessionpool import SessionPool, make_endpoint
from .urls import PROTOCOLS, parse_uftp_url, read_token, split_resource, warn_if_cleartext

log = logging.getLogger(__name__)

#: PyFilesystem hash names -> UFTPD HASH algorithms (everything else is hashed locally)
_SERVER_HASHES = {"md5": "MD5", "sha1": "SHA-1", "sha256": "SHA-256", "sha512": "SHA-512"}


def _errno_of(exc: BaseException) -> int | None:
    translated = to_oserror(exc)
    return translated.errno if isinstance(translated, OSError) else None


class UFTPFS(FS):
    """PyFilesystem2 file system on a UFTP server (PyUNICORE ``UFTPFS`` constructor).

    ``creds`` is a credential (pyunicore_fast or PyUNICORE: anything with ``get_auth_header()``)
    or a ``(username, password)`` pair; ``base_path`` is the server directory the FS root maps
    to.  Keyword-only extras: ``verify`` (TLS verification of the Auth server), ``max_sessions``
    (parallel transfers), ``streams``/``encryption``/``compress``/``timeout`` (UFTP session
    options), ``buffer_size`` (of files opened with ``openbin``), ``create`` (make ``base_path``
    if it is missing).

    Authentication happens in the constructor (as in PyUNICORE), so bad credentials fail here.
    """

    _meta: ClassVar[dict[str, Any]] = {
        "case_insensitive": False,
        "invalid_path_chars": "\0\r\n",
        "max_path_length": None,
        "max_sys_path_length": None,
        "network": True,
        "read_only": False,
        "supports_rename": True,
        "thread_safe": True,
        "unicode_paths": True,
        "virtual": False,
    }

    def __init__(self, auth_url: str, creds: Any = None, base_path: str = "/", *, verify: bool | str | None = None,
                 max_sessions: int = 4, streams: int = 1, encryption: str | None = None, compress: bool = False,
                 timeout: float = 30.0, buffer_size: int = 256 * 1024, create: bool = False):
        super().__init__()
        self.uftp_auth_credentials = creds
        self.uftp_auth_url = auth_url
        self.base_path = base_path
        self.buffer_size = buffer_size
        options: dict[str, Any] = {"verify": verify, "streams": streams, "encryption": encryption,
                                   "compress": compress, "timeout": timeout}
        if isinstance(creds, (tuple, list)):
            user, password = creds
            options.update(username=user, password=password)
        elif creds is not None:
            options["credential"] = creds
        warn_if_cleartext(auth_url, creds is not None)
        if create and base_path not in ("", "/"):
            self._create_base(auth_url, base_path, options)
        self._pool = SessionPool(make_endpoint(auth_url, base_dir=base_path, **options), max_sessions=max_sessions)
        try:
            session, _ = self._pool.acquire()  # authenticate and log in now (PyUNICORE does)
        except UFTPError as exc:
            raise errors.RemoteConnectionError(msg=f"cannot open UFTP session at {auth_url}: {exc}") from exc
        self._pool.release(session)
        ticket = self._pool.endpoint.ticket
        self.uftp_host = ticket.host if ticket else None
        self.uftp_port = ticket.port if ticket else None
        self._base_abs = base_path.startswith("/")
        self._base = posixpath.normpath(base_path) if base_path else ""

    @staticmethod
    def _create_base(auth_url: str, base_path: str, options: dict[str, Any]) -> None:
        pool = SessionPool(make_endpoint(auth_url, base_dir="", **options), max_sessions=1)
        try:
            pool.run(lambda s: s.makedirs(base_path), idempotent=False)
        finally:
            pool.close()

    @property
    def uftp_password(self) -> str | None:
        """The one-time (persistent) UFTP secret, as PyUNICORE 1.3 exposes it."""
        ticket = self._pool.endpoint.ticket
        return ticket.secret if ticket else None

    @property
    def host(self) -> str | None:
        return self.uftp_host

    @property
    def port(self) -> int | None:
        return self.uftp_port

    def __repr__(self) -> str:
        return f"UFTPFS({self.uftp_host!r}, port={self.uftp_port!r}), base_path={self.base_path!r}"

    __str__ = __repr__

    # -- paths and errors -----------------------------------------------------------------------
    def _remote(self, path: str) -> str:
        """FS path -> server path (absolute under an absolute base, else relative to the start dir)."""
        _path = self.validatepath(path)
        rel = _path.lstrip("/")
        if self._base_abs:
            return posixpath.normpath(posixpath.join(self._base, rel)) if rel else self._base
        if self._base:
            return posixpath.join(self._base, rel) if rel else self._base
        return rel or "."

    def _run(self, fn: Any, *, idempotent: bool = True) -> Any:
        self.check()
        return self._pool.run(fn, idempotent=idempotent)

    def _stat(self, path: str) -> FileInfo:
        remote = self._remote(path)
        try:
            return self._run(lambda s: s.stat(remote))
        except (UFTPError, ValueError) as exc:
            raise self._error(exc, path) from exc

    def _error(self, exc: BaseException, path: str, **table: type[errors.FSError]) -> BaseException:
        """Map a uftpcore failure to an ``fs.errors`` exception (``table``: errno name -> class)."""
        code = _errno_of(exc)
        name = errno.errorcode.get(code, "") if code is not None else ""
        if name in table:
            return table[name](path)
        if code == errno.ENOENT:
            return errors.ResourceNotFound(path)
        if code in (errno.EACCES, errno.EPERM):
            return errors.PermissionDenied(path=path, msg=str(exc))
        if code == errno.EINVAL:
            return errors.InvalidPath(path, msg=str(exc))
        if isinstance(exc, (ConnectionError, TimeoutError)):
            return errors.RemoteConnectionError(path=path, msg=str(exc))
        return errors.OperationFailed(path=path, exc=exc, msg=str(exc))

    def _make_info(self, name: str, fi: FileInfo, namespaces: Any = None) -> Info:
        namespaces = namespaces or ()
        raw: dict[str, Any] = {
            "basic": {"name": name, "is_dir": fi.is_dir},
            # MLST returns everything at once: details cost nothing, so they are always there.
            "details": {
                "type": int(ResourceType.directory if fi.is_dir else ResourceType.file),
                "size": fi.size,
                "modified": fi.mtime,
                "accessed": None,
                "created": None,
                "metadata_changed": None,
                "_write": ["modified"],
            },
        }
        if "access" in namespaces:
            raw["access"] = {"permissions": Permissions(mode=fi.mode & 0o7777).dump(), "_write": ["permissions"]}
        if "stat" in namespaces:
            raw["stat"] = {"st_size": fi.size, "st_mtime": fi.mtime, "st_mode": fi.mode}
        if "uftp" in namespaces:
            raw["uftp"] = {"perm": fi.perm, "path": fi.path}
        return Info(raw)

    # -- the essential methods -------------------------------------------------------------------
    def getinfo(self, path: str, namespaces: Any = None) -> Info:
        _path = self.validatepath(path)
        fi = self._stat(path)
        return self._make_info("" if _path == "/" else basename(_path), fi, namespaces)

    def _listing(self, path: str) -> list[FileInfo]:
        remote = self._remote(path)
        try:
            return self._run(lambda s: s.listdir(remote))
        except (UFTPError, ValueError) as exc:
            if _errno_of(exc) in (errno.ENOENT, errno.ENOTDIR):
                if self._stat(path).is_dir:  # raises ResourceNotFound when missing
                    raise self._error(exc, path) from exc
                raise errors.DirectoryExpected(path) from exc
            raise self._error(exc, path) from exc

    def listdir(self, path: str) -> list[str]:
        """Names with one ``STAT N`` round trip on the control channel (see :mod:`.names`)."""
        remote = self._remote(path)
        try:
            names, ambiguous = self._run(lambda s: list_names(s, remote))
        except (UFTPError, ValueError) as exc:
            raise self._error(exc, path) from exc
        if ambiguous and not self._stat(path).is_dir:
            raise errors.DirectoryExpected(path)
        return names

    def scandir(self, path: str, namespaces: Any = None, page: Any = None) -> Iterator[Info]:
        infos = [self._make_info(fi.name, fi, namespaces) for fi in self._listing(path)]
        if page is not None:
            start, end = page
            infos = infos[start:end]
        return iter(infos)

    def makedir(self, path: str, permissions: Permissions | None = None, recreate: bool = False) -> SubFS:
        _path = self.validatepath(path)
        if _path == "/":
            if recreate:
                return self.opendir(_path)
            raise errors.DirectoryExists(path)
        remote = self._remote(path)
        try:
            self._run(lambda s: s.mkdir(remote), idempotent=False)
        except (UFTPError, ValueError) as exc:
            code = _errno_of(exc)
            if code == errno.EEXIST:
                if not (recreate and self.isdir(_path)):
                    raise errors.DirectoryExists(path) from exc
            elif code in (errno.ENOENT, errno.ENOTDIR):
                raise errors.ResourceNotFound(path) from exc
            else:
                raise self._error(exc, path) from exc
        if permissions is not None:
            self._run(lambda s: s.chmod(remote, permissions.mode), idempotent=False)
        return self.opendir(_path)

    def openbin(self, path: str, mode: str = "r", buffering: int = -1, **options: Any) -> BinaryIO:
        _mode = Mode(mode)
        _mode.validate_bin()
        _path = self.validatepath(path)
        self.check()
        if _path == "/":
            raise errors.FileExpected(path)
        remote = self._remote(path)
        if _mode.create:
            # uftpd accepts a STOR on a directory and fails only at the end of the transfer:
            # one MLST up front gives FileExpected/FileExists at open, where callers expect them.
            try:
                existing: FileInfo | None = self._stat(path)
            except errors.ResourceNotFound:
                existing = None
            if existing is not None and existing.is_dir:
                raise errors.FileExpected(path)
            if existing is not None and _mode.exclusive:
                raise errors.FileExists(path)
            try:
                raw = RemoteRawFile(self._pool, remote, _mode.to_platform_bin(), name=_path,
                                    size=existing.size if existing is not None else None,
                                    exists=existing is not None)
            except (UFTPError, OSError, ValueError) as exc:
                raise self._error(exc, path, ENOTDIR=errors.ResourceNotFound, EISDIR=errors.FileExpected) from exc
        else:
            fi = self._stat(path)
            if fi.is_dir:
                raise errors.FileExpected(path)
            raw = RemoteRawFile(self._pool, remote, _mode.to_platform_bin(), size=fi.size, name=_path)
        return open_buffered(raw, buffering, self.buffer_size)

    def remove(self, path: str) -> None:
        self.validatepath(path)
        remote = self._remote(path)
        try:
            self._run(lambda s: s.remove(remote), idempotent=False)
        except (UFTPError, ValueError) as exc:
            raise self._error(exc, path, EISDIR=errors.FileExpected, EPERM=errors.FileExpected) from exc

    def removedir(self, path: str) -> None:
        _path = self.validatepath(path)
        if _path == "/":
            raise errors.RemoveRootError()
        remote = self._remote(path)
        try:
            self._run(lambda s: s.rmdir(remote), idempotent=False)
        except (UFTPError, ValueError) as exc:
            raise self._error(exc, path, ENOTEMPTY=errors.DirectoryNotEmpty, EEXIST=errors.DirectoryNotEmpty,
                              ENOTDIR=errors.DirectoryExpected) from exc

    def setinfo(self, path: str, info: Any) -> None:
        """``details.modified`` -> ``MFMT`` (1 s resolution); ``access.permissions`` -> ``MFF UNIX.mode``."""
        self._stat(path)  # ResourceNotFound first, even for an empty change
        remote = self._remote(path)
        details = info.get("details", {}) if info else {}
        access = info.get("access", {}) if info else {}
        try:
            if details.get("modified") is not None:
                mtime = details["modified"]
                self._run(lambda s: s.set_mtime(remote, mtime), idempotent=False)
            if access.get("permissions") is not None:
                mode = Permissions.load(access["permissions"]).mode
                self._run(lambda s: s.chmod(remote, mode), idempotent=False)
        except (UFTPError, ValueError) as exc:
            raise self._error(exc, path) from exc

    # -- faster versions of FS defaults ------------------------------------------------------------
    def readbytes(self, path: str) -> bytes:
        fi = self._stat(path)
        if fi.is_dir:
            raise errors.FileExpected(path)
        remote = self._remote(path)
        try:
            return self._run(lambda s: s.read(remote, 0, fi.size))
        except (UFTPError, ValueError) as exc:
            raise self._error(exc, path) from exc

    def writebytes(self, path: str, contents: bytes) -> None:
        if not isinstance(contents, bytes):
            raise TypeError("contents must be bytes")
        self.validatepath(path)
        remote = self._remote(path)
        try:
            self._run(lambda s: s.write(remote, contents), idempotent=False)
        except (UFTPError, ValueError) as exc:
            raise self._error(exc, path, ENOTDIR=errors.ResourceNotFound, EISDIR=errors.FileExpected) from exc

    def upload(self, path: str, file: BinaryIO, chunk_size: int | None = None, **options: Any) -> None:
        """One streaming ``STOR``; from a regular local file with ``sendfile`` (large files on
        several sessions in parallel)."""
        self.validatepath(path)
        remote = self._remote(path)
        fd = bulk.regular_fd(file)
        try:
            if fd is not None:
                pos = file.tell()
                size = max(0, os.fstat(fd).st_size - pos)
                bulk.upload_from_fd(self._pool, fd, remote, size, local_offset=pos)
                file.seek(pos + size)
            else:
                self._run(lambda s: s.upload_fileobj(file, remote), idempotent=False)
        except (UFTPError, ValueError, OSError) as exc:
            if isinstance(exc, OSError) and exc.filename not in (None, remote):
                raise  # a local error
            raise self._error(exc, path, ENOTDIR=errors.ResourceNotFound, EISDIR=errors.FileExpected) from exc

    def download(self, path: str, file: BinaryIO, chunk_size: int | None = None, **options: Any) -> None:
        """Into a regular local file with ``pwrite`` (large files on several sessions in parallel),
        else streamed in pooled chunks."""
        fi = self._stat(path)
        if fi.is_dir:
            raise errors.FileExpected(path)
        remote = self._remote(path)
        fd = bulk.regular_fd(file) if "a" not in getattr(file, "mode", "") else None
        try:
            if fd is not None:
                file.flush()
                pos = file.tell()
                got = bulk.download_to_fd(self._pool, remote, fd, fi.size, local_offset=pos)
                file.seek(pos + got)
            else:
                self._run(lambda s: s.download_fileobj(remote, file, 0, fi.size))
        except (UFTPError, ValueError) as exc:
            raise self._error(exc, path) from exc

    def download_file(self, path: str, local_path: str, **options: Any) -> int:
        """Download to a local path through the bulk engine (atomic rename when complete)."""
        fi = self._stat(path)
        if fi.is_dir:
            raise errors.FileExpected(path)
        return bulk.download_file(self._pool, self._remote(path), local_path, size=fi.size, mtime=fi.mtime,
                                  **options)

    def upload_file(self, local_path: str, path: str, **options: Any) -> int:
        """Upload a local file through the bulk engine."""
        self.validatepath(path)
        try:
            return bulk.upload_file(self._pool, local_path, self._remote(path), **options)
        except FileNotFoundError as exc:
            if exc.filename == local_path:
                raise
            raise errors.ResourceNotFound(path) from exc

    def move(self, src_path: str, dst_path: str, overwrite: bool = False, preserve_time: bool = False) -> None:
        """``RNFR``/``RNTO`` on the server (no data moves)."""
        _src, _dst = self.validatepath(src_path), self.validatepath(dst_path)
        if not overwrite and self.exists(_dst):
            raise errors.DestinationExists(dst_path)
        if self._stat(src_path).is_dir:
            raise errors.FileExpected(src_path)
        src, dst = self._remote(_src), self._remote(_dst)
        try:
            self._run(lambda s: s.rename(src, dst), idempotent=False)
        except (UFTPError, ValueError) as exc:
            raise self._error(exc, dst_path, ENOTDIR=errors.ResourceNotFound) from exc

    def movedir(self, src_path: str, dst_path: str, create: bool = False, preserve_time: bool = False) -> None:
        """A single rename when the destination does not exist yet; PyFilesystem's merge otherwise."""
        _src, _dst = self.validatepath(src_path), self.validatepath(dst_path)
        if create and not self.exists(_dst) and self.isdir(_src) and self.isdir(dirname(_dst)):
            src, dst = self._remote(_src), self._remote(_dst)
            try:
                self._run(lambda s: s.rename(src, dst), idempotent=False)
                return
            except (UFTPError, ValueError):
                log.debug("rename %s -> %s failed; falling back to copy + delete", src, dst, exc_info=True)
        super().movedir(src_path, dst_path, create=create, preserve_time=preserve_time)

    def hash(self, path: str, name: str) -> str:
        """``HASH`` computed by uftpd for md5/sha1/sha256/sha512 (no data moves); other hashlib
        names are computed locally from the content."""
        algo = _SERVER_HASHES.get(name.lower().replace("-", "").replace("_", ""))
        if algo is None:
            return super().hash(path, name)
        fi = self._stat(path)
        if fi.is_dir:
            raise errors.FileExpected(path)
        remote = self._remote(path)
        try:
            return self._run(lambda s: s.checksum(remote, algo))
        except (UFTPError, ValueError) as exc:
            raise self._error(exc, path) from exc

    def close(self) -> None:
        if not self.isclosed():
            self._pool.close()
        super().close()


class UFTPOpener(Opener):
    """``fs.open_fs("uftp://user:pw@authhost:port/rest/auth/NAME:/base/dir?token=...&identity=...")``.

    ``uftp+http://`` talks to the Auth server over plain http (loopback tests); ``uftp://`` and
    ``uftp+https://`` use https.  Without ``:<dir>`` the FS root is ``/`` (PyUNICORE raises
    IndexError there).

    PyUNICORE registers an opener for ``uftp`` as well: with both packages installed, which one
    ``open_fs("uftp://...")`` gets depends on the order in which PyFilesystem finds the entry
    points.  ``uftp+https://`` (and ``uftp+http://``) always select this one.
    """

    protocols: ClassVar[list[str]] = list(PROTOCOLS)

    def _parse(self, resource_url: str, scheme: str = "https") -> tuple[str, str]:
        auth_url, base_dir = split_resource(resource_url, scheme)
        return auth_url, base_dir or "/"

    def _read_token(self, token_spec: str | None) -> str | None:
        return read_token(token_spec)

    def _create_credential(self, parse_result: Any) -> Any:
        from pyunicore_fast.credentials import Anonymous, create_credential

        token = self._read_token(parse_result.params.get("token"))
        identity = parse_result.params.get("identity") or None
        if token is None and identity is None and not parse_result.username:
            return Anonymous()
        return create_credential(username=parse_result.username, password=parse_result.password, token=token,
                                 identity=identity)

    def open_fs(self, fs_url: str, parse_result: Any, writeable: bool, create: bool, cwd: str) -> UFTPFS:
        # PyFilesystem's URL regex splits at the first "@", which token specs ("@file", "@@VAR")
        # and unencoded passwords contain: parse the URL ourselves (minus a "!path" suffix).
        url = fs_url
        if parse_result.path and url.endswith("!" + parse_result.path):
            url = url[: -len(parse_result.path) - 1]
        u = parse_uftp_url(url)
        if u.token is None and u.identity is None and not u.username:
            from pyunicore_fast.credentials import Anonymous

            credential: Any = Anonymous()
        else:
            from pyunicore_fast.credentials import create_credential

            credential = create_credential(username=u.username, password=u.password, token=u.token,
                                           identity=u.identity)
        return UFTPFS(u.auth_url, credential, u.path or "/", create=create)


__all__ = ["UFTPFS", "UFTPOpener"]
