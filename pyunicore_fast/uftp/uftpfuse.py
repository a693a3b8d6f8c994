"""Mount a UFTP server as a local file system (PyUNICORE's ``pyunicore.uftp.uftpfuse``).

Same API as PyUNICORE 1.3.7::

    driver = UFTPDriver(host, port, password, debug=False, read_only=False)
    FUSE(driver, "/mnt/uftp", foreground=True, nothreads=False)

and the same command, ``unicore-fusedriver [-d] [-r] [-f] [-P PW] [-o k=v,...] host:port mount_point``
(password also from ``$UFTP_PASSWORD``), but built for speed and safety:

* a bounded pool of UFTP sessions shared by all operations, closed on unmount (PyUNICORE logs
  in once per open file and never logs out);
* per open file, read-ahead in the mountpoint-s3 style (:mod:`.fuse_prefetch`) over exact
  range reads, plus a shared LRU block cache; random reads are exact at any offset;
* attributes and listings cached with a TTL, filled from one ``MLSD`` per directory, so
  ``ls -l`` costs one round trip, not one per file (:mod:`.fuse_cache`);
* sequential writes streamed through one upload, other writes as ranged uploads, truncate,
  rename, chmod, utimens; upload errors reported as EIO on close/fsync, never dropped
  (:mod:`.fuse_write`);
* multithreaded by default; a dead or frozen server yields EIO within the timeout.

Tunables (:class:`~.fuse_config.FuseDriverConfig`) are keyword arguments of ``UFTPDriver`` and
``-o`` options of the command; kernel options (``max_read``, ``auto_cache``, ``attr_timeout``,
...) default to sensible values and can be overridden in ``FUSE(...)`` or with ``-o``.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import itertools
import logging
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from uftpcore.endpoint import Endpoint
from uftpcore.errors import (
    NotFoundError,
    PermissionDeniedError,
    ReplyError,
    TransferIncompleteError,
    UFTPError,
)
from uftpcore.listing import FileInfo

from .fuse_cache import MISSING, BlockCache, MetadataCache, name_of
from .fuse_config import FuseDriverConfig, kernel_defaults
from .fuse_pool import SessionPool
from .fuse_prefetch import PrefetchBudget, PrefetchConfig, ReadStream
from .fuse_write import FileWriter, UploadFailedError

try:  # mfusepy (maintained, libfuse2 and 3), else fusepy (what PyUNICORE used)
    import mfusepy as _fuselib
except ImportError:
    try:
        import fuse as _fuselib  # type: ignore[no-redef]
    except ImportError as exc:
        raise ImportError("pyunicore_fast.uftp.uftpfuse needs mfusepy (pip install 'pyunicore_fast[fuse]') "
                          "or fusepy") from exc
except OSError as exc:  # mfusepy found no libfuse
    raise ImportError(f"pyunicore_fast.uftp.uftpfuse: libfuse is not available ({exc})") from exc

FuseOSError = _fuselib.FuseOSError
Operations = _fuselib.Operations
FUSE_MAJOR: int = getattr(_fuselib, "fuse_version_major", 2)

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])

_STATFS = {
    "f_bsize": 1 << 20, "f_frsize": 1 << 20, "f_blocks": 1 << 24, "f_bfree": 1 << 24, "f_bavail": 1 << 24,
    "f_files": 1 << 24, "f_ffree": 1 << 24, "f_favail": 1 << 24, "f_namemax": 255,
}


# ---------------------------------------------------------------------------------- errors
def errno_for(exc: BaseException) -> int:
    """The errno a FUSE caller should see for a uftpcore (or other) failure.

    Server replies map by meaning; everything that means "we could not talk to the server"
    (connection lost, timeout, incomplete transfer, failed upload) is EIO.
    """
    if isinstance(exc, FuseOSError):
        return exc.errno or errno.EIO
    if isinstance(exc, NotFoundError):
        return errno.ENOENT
    if isinstance(exc, PermissionDeniedError):
        return errno.EACCES
    if isinstance(exc, ReplyError):
        text = (exc.text or "").lower()
        if "not empty" in text:
            return errno.ENOTEMPTY
        if "exists" in text:
            return errno.EEXIST
        if "not a directory" in text:
            return errno.ENOTDIR
        if "is a directory" in text:
            return errno.EISDIR
        return errno.EIO
    if isinstance(exc, ValueError):
        return errno.EINVAL
    if isinstance(exc, UFTPError):
        return errno.EIO
    if isinstance(exc, OSError) and isinstance(exc.errno, int) and exc.errno > 0 \
            and not isinstance(exc, (ConnectionError, TimeoutError)):
        return exc.errno
    return errno.EIO


def _fs_op(fn: F) -> F:
    """Turn exceptions of an operation into FuseOSError; EIO always leaves a log line."""
    op = fn.__name__

    @functools.wraps(fn)
    def wrapper(self: UFTPDriver, path: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(self, path, *args, **kwargs)
        except FuseOSError:
            raise
        except Exception as exc:  # noqa: BLE001 - every failure must become an errno
            code = errno_for(exc)
            if code == errno.EIO:
                log.error("uftpfuse: %s %s failed: %s", op, path, exc)
            else:
                log.debug("uftpfuse: %s %s: %s", op, path, exc)
            raise FuseOSError(code) from None

    return wrapper  # type: ignore[return-value]


def _block_signals() -> None:
    """Our helper threads must not receive SIGINT/SIGTERM/SIGHUP: libfuse's handler has to run
    in (and interrupt) its own loop thread, or an unmount request can go unnoticed."""
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM, signal.SIGHUP})


# ---------------------------------------------------------------------------------- handles
class OpenFile:
    """State of one FUSE file handle."""

    __slots__ = ("info", "lock", "path", "reader", "writer")

    def __init__(self, path: str, info: FileInfo, writer: FileWriter | None):
        self.path = path
        self.info = info
        self.reader: ReadStream | None = None
        self.writer = writer
        self.lock = threading.Lock()


def remote_path(path: str) -> str:
    """FUSE path -> path relative to the session's base directory (PyUNICORE's ``normalize``)."""
    stripped = path.lstrip("/")
    return stripped or "."


# ---------------------------------------------------------------------------------- driver
class UFTPDriver(Operations):
    """FUSE operations on a UFTPD file system, reached with a (persistent) one-time password.

    ``host``, ``port``, ``password`` as returned by ``UFTP().authenticate(...)``; ``debug``
    logs every operation; ``read_only`` refuses every change with EROFS.  Further keyword
    arguments are :class:`~.fuse_config.FuseDriverConfig` fields (``cache_size``,
    ``max_sessions``, ``attr_ttl``, ``timeout``, ...), or pass ``config=``.  ``endpoint`` may be
    an ``uftpcore.Endpoint`` with an Auth server, which then re-authenticates when the secret
    expires.
    """

    #: times in nanoseconds (mfusepy deprecates float seconds)
    use_ns = True

    def __init__(self, host: str, port: int, password: str, debug: bool = False, read_only: bool = False, *,
                 config: FuseDriverConfig | None = None, endpoint: Endpoint | None = None, **options: Any):
        unknown = set(options) - FuseDriverConfig.field_names()
        if unknown:
            raise TypeError(f"unknown UFTPDriver option(s): {', '.join(sorted(unknown))}")
        self.host = host
        self.port = int(port)
        self.password = password
        self.debug = debug
        self.read_only = read_only
        self.config = cfg = config if config is not None else FuseDriverConfig.from_options(options)
        if debug:
            log.setLevel(logging.DEBUG)
        self.endpoint = endpoint if endpoint is not None else Endpoint.from_secret(
            host, self.port, password, timeout=cfg.timeout, implementation=cfg.implementation)
        self.pool = SessionPool(self.endpoint.session, cfg.max_sessions, timeout=cfg.timeout)
        self.meta = MetadataCache(cfg.attr_ttl, cfg.dir_ttl, cfg.negative_ttl)
        self.blocks = BlockCache(cfg.cache_size)
        self.budget = PrefetchBudget(cfg.prefetch_budget or cfg.cache_size // 2)
        self.prefetch_config = PrefetchConfig(
            block_size=cfg.block_size, initial_window=cfg.prefetch_initial, max_window=cfg.prefetch_max,
            request_size=cfg.request_size, seek_forward=cfg.seek_forward, seek_back=cfg.seek_back,
            wait_timeout=cfg.timeout + 5, parallel=max(1, cfg.prefetch_streams), random_size=cfg.random_size)
        #: set by FUSE() so that init() can find the mount (read_ahead_kb)
        self.mountpoint: str | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._handles: dict[int, OpenFile] = {}
        self._writers: dict[str, set[FileWriter]] = {}
        self._generation: dict[str, int] = {}
        self._next_fh = itertools.count(1)
        self._lock = threading.Lock()
        self._mounted = False
        self._destroyed = False
        # Log in now: a wrong secret or an unreachable server must fail here, before the mount.
        # (Sockets survive libfuse's daemonising fork; threads would not, see init().)
        self.pool.prime()

    # ------------------------------------------------------------------ kernel options
    def fuse_options(self) -> dict[str, Any]:
        """libfuse options this driver mounts with unless ``FUSE(...)`` says otherwise."""
        opts = kernel_defaults(self.config, FUSE_MAJOR, f"uftp:{self.host}:{self.port}")
        if self.read_only:
            opts["ro"] = True
        return opts

    # ------------------------------------------------------------------ lifecycle
    def init(self, path: str) -> None:
        """Called by libfuse once mounted (after it daemonised): start the helper threads."""
        self._mounted = True
        # read-ahead may use all sessions but one, which stays for lookups and direct reads
        self._executor = ThreadPoolExecutor(max_workers=max(1, self.config.max_sessions - 1),
                                            thread_name_prefix="uftp-prefetch", initializer=_block_signals)
        if self.config.read_ahead_kb and self.mountpoint:
            threading.Thread(target=_set_read_ahead, args=(self.mountpoint, self.config.read_ahead_kb),
                             daemon=True, name="uftp-readahead").start()
        log.info("mounted UFTP %s:%d (%d sessions max, %d MiB block cache)", self.host, self.port,
                 self.config.max_sessions, self.config.cache_size >> 20)

    def destroy(self, path: str) -> None:
        """Unmount: deliver pending uploads, stop read-ahead, log out every session."""
        if self._destroyed:
            return
        self._destroyed = True
        with self._lock:
            handles = list(self._handles.values())
            self._handles.clear()
        for h in handles:
            self._close_handle(h)
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
        self.pool.close()
        st = self.pool.stats
        log.info("unmounted UFTP %s:%d (sessions created %d, reused %d; block cache hits %d, misses %d)",
                 self.host, self.port, st.created, st.reused, self.blocks.stats.hits, self.blocks.stats.misses)

    def close(self) -> None:
        """Release everything when the driver is used without a mount (tests, API users)."""
        self.destroy("/")

    # ------------------------------------------------------------------ metadata helpers
    def _stat(self, path: str) -> FileInfo:
        cached = self.meta.lookup(path)
        if cached is MISSING:
            raise FuseOSError(errno.ENOENT)
        if cached is not None:
            return cached
        remote = remote_path(path)
        try:
            info = self.pool.call(lambda s: s.stat(remote))
        except NotFoundError:
            if path == "/":
                info = FileInfo(name="", size=0, mtime=time.time(), is_dir=True, mode=stat.S_IFDIR | 0o755)
            else:
                self.meta.put_missing(path)
                raise FuseOSError(errno.ENOENT) from None
        self.meta.put(path, info)
        return info

    def _list(self, path: str) -> list[FileInfo]:
        entries = self.meta.listing(path)
        if entries is None:
            remote = remote_path(path)
            entries = [e for e in self.pool.call(lambda s: s.listdir(remote)) if e.name not in (".", "..")]
            self.meta.put_listing(path, entries)
        return entries

    def _local_size(self, path: str) -> int | None:
        writers = self._writers.get(path)
        if not writers:
            return None
        sizes = [w.size for w in writers if w.modified]
        return max(sizes) if sizes else None

    def _attrs(self, info: FileInfo, size: int | None = None) -> dict[str, Any]:
        cfg = self.config
        ns = int(info.mtime * 1e9)
        size = info.size if size is None else size
        return {
            "st_mode": info.mode,
            "st_nlink": 2 if info.is_dir else 1,
            "st_size": size,
            "st_blocks": (size + 511) // 512,
            "st_blksize": 1 << 20,
            "st_mtime": ns,
            "st_atime": ns,
            "st_ctime": ns,
            "st_uid": cfg.uid,
            "st_gid": cfg.gid,
        }

    def _bump(self, path: str) -> None:
        """The file at ``path`` changed locally: cached blocks of its old version are dead."""
        with self._lock:
            self._generation[path] = self._generation.get(path, 0) + 1
        self.blocks.invalidate_where(lambda fid: fid[0] == path)

    def _file_id(self, h: OpenFile) -> tuple[Any, ...]:
        return (h.path, self._generation.get(h.path, 0), h.info.size, h.info.mtime)

    def _flush_writers(self, path: str) -> None:
        """Deliver other handles' pending writes before an operation that depends on them."""
        for w in list(self._writers.get(path, ())):
            if w.dirty:
                w.flush()

    def _check_writable(self) -> None:
        if self.read_only:
            raise FuseOSError(errno.EROFS)

    def _handle(self, fh: int) -> OpenFile:
        h = self._handles.get(fh)
        if h is None:
            raise FuseOSError(errno.EBADF)
        return h

    # ------------------------------------------------------------------ metadata operations
    @_fs_op
    def getattr(self, path: str, fh: int | None = None) -> dict[str, Any]:
        if fh is not None:
            h = self._handles.get(fh)
            if h is not None and h.writer is not None:
                return self._attrs(h.info, max(h.writer.size, self._local_size(path) or 0))
        info = self._stat(path)
        return self._attrs(info, self._local_size(path) if self._writers else None)

    @_fs_op
    def readdir(self, path: str, fh: int) -> list[Any]:
        return [".", ".."] + [(e.name, {"st_mode": e.mode}, 0) for e in self._list(path)]

    @_fs_op
    def statfs(self, path: str) -> dict[str, int]:
        return dict(_STATFS)

    @_fs_op
    def mkdir(self, path: str, mode: int) -> int:
        self._check_writable()
        remote = remote_path(path)
        self.pool.call(lambda s: s.mkdir(remote), idempotent=False)
        self.meta.invalidate(path)
        perms = mode & 0o7777
        if perms and perms not in (0o755, 0o775, 0o777):
            self.pool.call(lambda s: s.chmod(remote, perms))
        return 0

    @_fs_op
    def rmdir(self, path: str) -> int:
        self._check_writable()
        remote = remote_path(path)
        self.pool.call(lambda s: s.rmdir(remote), idempotent=False)
        self.meta.invalidate_tree(path)
        self.meta.put_missing(path)
        return 0

    @_fs_op
    def unlink(self, path: str) -> int:
        self._check_writable()
        remote = remote_path(path)
        self.pool.call(lambda s: s.remove(remote), idempotent=False)
        self.meta.invalidate(path)
        self.meta.put_missing(path)
        self._bump(path)
        return 0

    @_fs_op
    def rename(self, old: str, new: str) -> int:
        self._check_writable()
        self._flush_writers(old)
        self._flush_writers(new)
        ro, rn = remote_path(old), remote_path(new)
        self.pool.call(lambda s: s.rename(ro, rn), idempotent=False)
        self.meta.invalidate_tree(old)
        self.meta.invalidate_tree(new)
        self._bump(old)
        self._bump(new)
        self._rename_handles(old, new)
        return 0

    def _rename_handles(self, old: str, new: str) -> None:
        prefix = old.rstrip("/") + "/"
        with self._lock:
            for h in self._handles.values():
                if h.path == old or h.path.startswith(prefix):
                    moved = new + h.path[len(old):]
                    if h.writer is not None:
                        self._writers.get(h.path, set()).discard(h.writer)
                        self._writers.setdefault(moved, set()).add(h.writer)
                        h.writer.path = moved
                    if h.reader is not None:
                        h.reader.path = moved
                    h.path = moved
            for key in [k for k, v in self._writers.items() if not v]:
                del self._writers[key]

    @_fs_op
    def chmod(self, path: str, mode: int) -> int:
        self._check_writable()
        remote = remote_path(path)
        self.pool.call(lambda s: s.chmod(remote, mode))
        self.meta.invalidate(path)
        return 0

    @_fs_op
    def chown(self, path: str, uid: int, gid: int) -> int:
        """UFTP cannot change owners; accept the no-op a ``cp -p`` asks for, refuse the rest."""
        cfg = self.config
        if uid in (-1, cfg.uid) and gid in (-1, cfg.gid):
            return 0
        raise FuseOSError(errno.EPERM)

    @_fs_op
    def utimens(self, path: str, times: tuple[int, int] | None = None) -> int:
        self._check_writable()
        self._flush_writers(path)  # a later upload would move the mtime again
        mtime = time.time() if times is None else times[1] / 1e9
        remote = remote_path(path)
        self.pool.call(lambda s: s.set_mtime(remote, mtime))
        self.meta.invalidate(path)
        return 0

    @_fs_op
    def truncate(self, path: str, length: int, fh: int | None = None) -> int:
        self._check_writable()
        self._flush_writers(path)
        info = self._stat(path)
        if info.is_dir:
            raise FuseOSError(errno.EISDIR)
        current = self._local_size(path)
        current = info.size if current is None else current
        remote = remote_path(path)
        if length == 0:
            if current != 0 or info.size != 0:
                self.pool.call(lambda s: s.write(remote, b"", 0, truncate=True))
        elif length > current:
            self.pool.call(lambda s: s.write(remote, b"\0", length - 1, truncate=False))
        elif length < current:
            log.info("uftpfuse: truncating %s to %d bytes by rewriting it (UFTP has no truncate)", path, length)
            self.pool.call(lambda s: _rewrite_prefix(s, remote, length), idempotent=False)
        for w in list(self._writers.get(path, ())):
            w.set_size(length)
        self.meta.invalidate(path)
        self.meta.put(path, FileInfo(name=name_of(path), size=length, mtime=time.time(), is_dir=False,
                                     mode=info.mode, perm=info.perm, path=info.path))
        self._bump(path)
        return 0

    @_fs_op
    def readlink(self, path: str) -> str:
        raise FuseOSError(errno.ENOSYS)

    @_fs_op
    def symlink(self, target: str, source: str) -> int:
        raise FuseOSError(errno.ENOSYS)

    # ------------------------------------------------------------------ file operations
    @_fs_op
    def create(self, path: str, mode: int, fi: Any = None) -> int:
        self._check_writable()
        remote = remote_path(path)
        self.pool.call(lambda s: s.write(remote, b"", 0, truncate=True))
        perms = mode & 0o7777
        if perms and perms not in (0o644, 0o664, 0o666):
            self.pool.call(lambda s: s.chmod(remote, perms))
        self.meta.invalidate(path)
        info = FileInfo(name=name_of(path), size=0, mtime=time.time(), is_dir=False,
                        mode=stat.S_IFREG | (perms or 0o644), perm="rw")
        self.meta.put(path, info)
        self._bump(path)
        return self._register(path, info, writable=True)

    @_fs_op
    def open(self, path: str, flags: int) -> int:
        acc = flags & os.O_ACCMODE
        writable = acc in (os.O_WRONLY, os.O_RDWR)
        if writable or flags & os.O_TRUNC:
            self._check_writable()
        info = self._stat(path)
        if info.is_dir:
            raise FuseOSError(errno.EISDIR)
        if writable and flags & os.O_TRUNC and (info.size or self._local_size(path)):
            # libfuse3 (atomic_o_trunc) passes O_TRUNC here instead of truncating first
            self.truncate(path, 0)
            info = self._stat(path)
        return self._register(path, info, writable)

    def _register(self, path: str, info: FileInfo, writable: bool) -> int:
        writer = None
        if writable:
            size = self._local_size(path)
            writer = FileWriter(path, self.pool, info.size if size is None else size, remote_path,
                                timeout=self.config.timeout, buffer_limit=self.config.write_buffer)
        h = OpenFile(path, info, writer)
        fh = next(self._next_fh)
        with self._lock:
            self._handles[fh] = h
            if writer is not None:
                self._writers.setdefault(path, set()).add(writer)
        return fh

    def read(self, path: str, size: int, offset: int, fh: int) -> bytes:
        """fusepy-style read (our FUSE class uses :meth:`read_into` and skips a copy)."""
        buf = bytearray(size)
        n = self.read_into(path, memoryview(buf), offset, fh)
        del buf[n:]
        return bytes(buf)

    @_fs_op
    def read_into(self, path: str, view: memoryview, offset: int, fh: int) -> int:
        h = self._handle(fh)
        with h.lock:
            writer = h.writer
            if writer is not None and writer.dirty:
                writer.flush()  # read-your-writes on O_RDWR handles
                self._bump(h.path)
            reader = h.reader
            file_id = self._file_id(h)
            if self._writers.get(h.path):
                local = self._local_size(h.path)
                if local is not None:
                    file_id = file_id + (local,)
            if reader is None:
                size = self._local_size(h.path)
                reader = h.reader = ReadStream(h.path, h.info.size if size is None else size, file_id,
                                               self._fetch_exact, self.blocks, self._executor, self.budget,
                                               self.prefetch_config)
            elif reader.file_id != file_id:
                size = self._local_size(h.path)
                reader.retarget(h.info.size if size is None else size, file_id)
        try:
            return reader.read_into(view, offset)
        except TransferIncompleteError:
            # the file shrank on the server since we learnt its size: refresh and retry once
            self.meta.invalidate(h.path)
            info = self._stat(h.path)
            with h.lock:
                h.info = info
                reader.retarget(info.size, self._file_id(h))
            return reader.read_into(view, offset)

    def _fetch_exact(self, path: str, view: memoryview, offset: int) -> None:
        """Fill ``view`` with the bytes at ``offset`` (exact range read on a pooled session)."""
        remote = remote_path(path)
        want = len(view)
        got = self.pool.call(lambda s: s.read_range_exact(remote, view, offset))
        if got != want:
            raise TransferIncompleteError(f"{path}: {got} of {want} bytes at {offset}", want, got)

    @_fs_op
    def write(self, path: str, data: bytes, offset: int, fh: int) -> int:
        self._check_writable()
        h = self._handle(fh)
        if h.writer is None:
            raise FuseOSError(errno.EBADF)
        return h.writer.write(data, offset)

    @_fs_op
    def flush(self, path: str, fh: int) -> int:
        h = self._handles.get(fh)
        if h is not None and h.writer is not None and h.writer.dirty:
            try:
                h.writer.flush()
            finally:
                self.meta.invalidate(h.path)
                self._bump(h.path)
        elif h is not None and h.writer is not None and h.writer.failed is not None:
            raise UploadFailedError(f"earlier writes to {h.path} failed: {h.writer.failed}")
        return 0

    @_fs_op
    def fsync(self, path: str, datasync: int, fh: int) -> int:
        return self.flush(path, fh)

    @_fs_op
    def release(self, path: str, fh: int) -> int:
        with self._lock:
            h = self._handles.pop(fh, None)
        if h is not None:
            self._close_handle(h)
        return 0

    def _close_handle(self, h: OpenFile) -> None:
        if h.reader is not None:
            h.reader.close()
        w = h.writer
        if w is None:
            return
        try:
            w.close()
        except Exception as exc:  # noqa: BLE001 - logged by the writer; close cannot report it
            log.debug("release of %s after a failed upload: %s", h.path, exc)
        finally:
            with self._lock:
                writers = self._writers.get(h.path)
                if writers is not None:
                    writers.discard(w)
                    if not writers:
                        del self._writers[h.path]
            if w.modified:
                self.meta.invalidate(h.path)
                self._bump(h.path)

    # ------------------------------------------------------------------ PyUNICORE compatibility
    def new_session(self) -> Any:
        """A logged-in ``pyunicore_fast.uftp.uftp.UFTP`` (PyUNICORE's per-file session)."""
        from .uftp import UFTP

        uftp = UFTP(timeout=self.config.timeout)
        uftp.open_uftp_session(self.host, self.port, self.password)
        return uftp

    def __repr__(self) -> str:
        return f"UFTPDriver({self.host!r}, {self.port}, read_only={self.read_only})"


class UFTPFile:
    """PyUNICORE's handle to an in-progress read or write transfer on its own ``UFTP`` session.

    Kept for code that used it directly; the driver itself does not (it uses range reads and
    :class:`~.fuse_write.FileWriter`).  Sequential only: the offset counts when the channel opens.
    """

    BUFFER_SIZE = 65536

    def __init__(self, path: str, uftp_session: Any):
        self.uftp_session = uftp_session
        self.path = path
        self.pos = 0
        self.data: Any = None
        self.write_mode = False

    def close(self) -> None:
        self.close_data()

    def close_data(self) -> None:
        if self.data is not None:
            self.data.close()
        self.data = None
        self.pos = 0

    def open_data(self, position: int, write_mode: bool = False) -> None:
        self.write_mode = write_mode
        if write_mode:
            sock = self.uftp_session.get_write_socket(self.path, position)
        else:
            sock = self.uftp_session.get_read_socket(self.path, position)
        self.pos = position
        self.data = sock.makefile("wb" if write_mode else "rb", buffering=UFTPFile.BUFFER_SIZE)

    def read(self, offset: int, size: int) -> bytes:
        if self.data is not None and self.write_mode:
            raise OSError("Not open for reading")
        if self.data is None:
            self.open_data(offset, write_mode=False)
        block = self.data.read(size)
        self.pos += len(block)
        return block

    def write(self, offset: int, data: bytes) -> int:
        if self.data is not None and not self.write_mode:
            raise OSError("Not open for writing")
        if self.data is None:
            self.open_data(offset, write_mode=True)
        self.data.write(bytes(data))
        self.data.flush()
        self.pos += len(data)
        return len(data)


def _rewrite_prefix(session: Any, remote: str, length: int) -> None:
    """Shrink ``remote`` to ``length`` bytes: download the prefix, upload it truncating."""
    with tempfile.TemporaryFile(prefix="uftpfuse-trunc-") as tmp:
        got = session.download_to_fd(remote, tmp.fileno(), 0, length)
        if got != length:
            raise TransferIncompleteError(f"{remote}: read {got} of {length} bytes while truncating", length, got)
        session.upload_from_fd(tmp.fileno(), remote, 0, length, remote_offset=0, truncate=True)


def _set_read_ahead(mountpoint: str, kb: int, wait: float = 10.0) -> None:
    """Raise the kernel readahead of our mount (its BDI): FUSE caps it at 128 KiB otherwise."""
    _block_signals()
    target = os.path.realpath(mountpoint)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        dev = _mount_device(target)
        if dev is not None:
            try:
                with open(f"/sys/class/bdi/{dev}/read_ahead_kb", "w") as f:
                    f.write(str(int(kb)))
                log.info("kernel readahead of %s set to %d KiB", mountpoint, kb)
            except OSError as exc:
                log.info("cannot set the readahead of %s (%s); needs root", mountpoint, exc)
            return
        time.sleep(0.05)


def _mount_device(mountpoint: str) -> str | None:
    """``major:minor`` of the FUSE mount at ``mountpoint`` from /proc/self/mountinfo."""
    try:
        with open("/proc/self/mountinfo") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        fields = line.split()
        if len(fields) > 4 and _unescape_mount(fields[4]) == mountpoint:
            sep = fields.index("-") if "-" in fields else -1
            if sep > 0 and fields[sep + 1].startswith("fuse"):
                return fields[2]
    return None


def _unescape_mount(field: str) -> str:
    return field.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")


def is_mounted(mountpoint: str) -> bool:
    """Whether a FUSE file system is mounted at ``mountpoint`` (no call into the mount itself)."""
    return _mount_device(os.path.realpath(mountpoint)) is not None


def unmount(mountpoint: str, lazy: bool = False, timeout: float = 30.0) -> bool:
    """``fusermount3 -u`` (or ``fusermount -u``); ``lazy`` adds ``-z``.  True if it worked."""
    tool = shutil.which("fusermount3") or shutil.which("fusermount")
    if tool is None:
        cmd = ["umount", "-l", mountpoint] if lazy else ["umount", mountpoint]
    else:
        cmd = [tool, "-u", "-z", mountpoint] if lazy else [tool, "-u", mountpoint]
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.warning("unmounting %s failed: %s", mountpoint, exc)
        return False
    if res.returncode != 0:
        log.debug("%s: %s", " ".join(cmd), res.stderr.strip())
    return res.returncode == 0


# ---------------------------------------------------------------------------------- FUSE
class FUSE(_fuselib.FUSE):  # type: ignore[misc,name-defined]
    """The libfuse binding (mfusepy, else fusepy) with the driver's default kernel options and a
    read path that lets the driver copy straight into the kernel's buffer.

    ``FUSE(UFTPDriver(host, port, password), mountpoint, foreground=True, nothreads=False,
    **options)`` mounts and blocks until unmounted; ``foreground=False`` daemonises first.
    """

    def __init__(self, operations: Any, mountpoint: str, raw_fi: bool = False, encoding: str = "utf-8",
                 **kwargs: Any):
        defaults = getattr(operations, "fuse_options", None)
        if callable(defaults):
            for key, value in defaults().items():
                kwargs.setdefault(key, value)
        if hasattr(operations, "mountpoint"):
            operations.mountpoint = os.path.abspath(mountpoint)
        super().__init__(operations, mountpoint, raw_fi=raw_fi, encoding=encoding, **kwargs)

    def read(self, path: bytes | None, buf: Any, size: int, offset: int, fip: Any) -> int:
        read_into = getattr(self.operations, "read_into", None)
        if read_into is None or self.raw_fi:
            return super().read(path, buf, size, offset, fip)
        address = ctypes.cast(buf, ctypes.c_void_p).value
        target = memoryview((ctypes.c_char * size).from_address(address)).cast("B")
        name = None if path is None else path.decode(self.encoding, getattr(self, "errors", "surrogateescape"))
        return read_into(name, target, offset, fip.contents.fh)


# ---------------------------------------------------------------------------------- command
def _clear_stale_mount(mountpoint: str) -> None:
    """A driver that was killed leaves 'Transport endpoint is not connected' behind."""
    try:
        os.stat(mountpoint)
    except OSError as exc:
        if exc.errno == errno.ENOTCONN:
            log.info("removing the stale mount at %s", mountpoint)
            unmount(mountpoint, lazy=True)


def main(argv: list[str] | None = None) -> int:
    """``unicore-fusedriver`` (PyUNICORE's entry point); the command line lives in the cli package."""
    from ..cli.fusedriver import main as _main

    return _main(argv)


__all__ = [
    "FUSE",
    "FuseDriverConfig",
    "FuseOSError",
    "Operations",
    "UFTPDriver",
    "UFTPFile",
    "errno_for",
    "is_mounted",
    "main",
    "unmount",
]


if __name__ == "__main__":
    sys.exit(main())
