"""Whole-file transfers of the drivers (fsspec ``get``/``put``, PyFilesystem ``download_file``/``upload_file``).

uftpcore's bulk engine (``uftpcore.transfer``) does the work when it is present: parallel
sessions with byte ranges for large files, many files spread over sessions, verification
against the server's ``HASH`` (on by default), retries and resume.  Without it we fall back to
the session API: ``Session.download_to_fd`` into a pre-allocated temporary file renamed when
complete, ``Session.upload_from_fd`` (``sendfile``), and for large files several pool sessions
moving disjoint byte ranges at once -- one TCP stream rarely fills a fast link.

The fd-based helpers (``download_to_fd``/``upload_from_fd``) serve PyFilesystem's
``download(path, file)``/``upload(path, file)``, whose targets are open file objects the
engine cannot take.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import os
import posixpath
import stat as stat_mod
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from uftpcore.errors import IntegrityError
from uftpcore.localfile import PartialFile

from .oserrors import oserrors
from .sessionpool import SessionPool

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

#: files at least this large are moved as byte ranges on several sessions (fallback path).
PARALLEL_MIN = 32 << 20
#: smallest range one session gets in a parallel transfer.
PART_MIN = 16 << 20

Progress = Callable[[int], None] | None


# ------------------------------------------------------------------ the engine
def transfer_engine() -> Any | None:
    """``uftpcore.transfer`` when it is available, else None (then the session API is used)."""
    import uftpcore

    engine = getattr(uftpcore, "transfer", None)
    if engine is None:
        try:
            engine = importlib.import_module("uftpcore.transfer")
        except ImportError:
            return None
    return engine if hasattr(engine, "download") and hasattr(engine, "upload") else None


def _engine_progress(progress: Progress) -> Callable[[Any], None] | None:
    """The engine reports cumulative ``Progress`` snapshots; our callers want byte increments."""
    if progress is None:
        return None
    last = [0]

    def report(snapshot: Any) -> None:
        done = int(getattr(snapshot, "bytes_done", 0))
        if done > last[0]:
            progress(done - last[0])
            last[0] = done

    return report


def _engine_options(sessions: int | None, streams: int | None, verify: bool | None, preserve: bool | None,
                    progress: Progress) -> dict[str, Any]:
    """Only what the caller chose; the engine's own defaults (verification on) apply otherwise."""
    opts: dict[str, Any] = {"progress": _engine_progress(progress)}
    for name, value in (("sessions", sessions), ("streams", streams), ("verify", verify), ("preserve", preserve)):
        if value is not None:
            opts[name] = value
    return opts


# ------------------------------------------------------------------ helpers
def parallel_map(fn: Callable[[T], R], items: Sequence[T], workers: int) -> list[R]:
    """``[fn(x) for x in items]`` on up to ``workers`` threads, results in order, first error raised."""
    if workers <= 1 or len(items) <= 1:
        return [fn(x) for x in items]
    with ThreadPoolExecutor(max_workers=min(workers, len(items)), thread_name_prefix="uftp") as ex:
        return list(ex.map(fn, items))


def run_batch(pool: SessionPool, jobs: Iterable[Callable[[], T]], workers: int | None = None) -> list[T]:
    """Run independent jobs (one per file) on up to ``workers`` sessions at once."""
    return parallel_map(lambda job: job(), list(jobs), pool.max_sessions if workers is None else workers)


def regular_fd(fileobj: Any) -> int | None:
    """The descriptor of a *regular* local file behind ``fileobj`` (for pwrite/sendfile), else None."""
    fileno = getattr(fileobj, "fileno", None)
    if fileno is None:
        return None
    try:
        fd = fileno()
        return fd if stat_mod.S_ISREG(os.fstat(fd).st_mode) else None
    except (OSError, ValueError, AttributeError):
        return None


def _ranges(size: int, sessions: int) -> list[tuple[int, int]]:
    parts = max(1, min(sessions, size // PART_MIN))
    step = -(-size // parts)
    return [(off, min(step, size - off)) for off in range(0, size, step)]


# ------------------------------------------------------------------ descriptors
def download_to_fd(pool: SessionPool, remote: str, fd: int, size: int, *, local_offset: int = 0,
                   offset: int = 0, sessions: int | None = None, progress: Progress = None) -> int:
    """Move ``size`` bytes of ``remote`` (from ``offset``) into ``fd`` at ``local_offset`` with
    ``pwrite``; large files on several sessions in parallel.  Returns the byte count."""
    sessions = pool.max_sessions if sessions is None else max(1, sessions)
    if size < PARALLEL_MIN or sessions == 1:
        return pool.run(lambda s: s.download_to_fd(remote, fd, offset, size, local_offset=local_offset,
                                                    progress=progress))

    def part(rng: tuple[int, int]) -> int:
        start, length = rng
        return pool.run(lambda s: s.download_to_fd(remote, fd, offset + start, length,
                                                   local_offset=local_offset + start, progress=progress))

    return sum(parallel_map(part, _ranges(size, sessions), sessions))


def upload_from_fd(pool: SessionPool, fd: int, remote: str, size: int, *, local_offset: int = 0,
                   sessions: int | None = None, progress: Progress = None) -> int:
    """Replace ``remote`` with ``size`` bytes of ``fd`` from ``local_offset`` (``sendfile``); large
    files as ranges on several sessions.  The file is truncated once *before* the ranged parts
    start, so no part can be cut off by another part's truncation."""
    sessions = pool.max_sessions if sessions is None else max(1, sessions)
    if size < PARALLEL_MIN or sessions == 1:
        return pool.run(lambda s: s.upload_from_fd(fd, remote, local_offset, size, progress=progress),
                        idempotent=False)
    pool.run(lambda s: s.write(remote, b"", 0, truncate=True), idempotent=False)

    def part(rng: tuple[int, int]) -> int:
        start, length = rng
        return pool.run(lambda s: s.upload_from_fd(fd, remote, local_offset + start, length, remote_offset=start,
                                                   truncate=False, progress=progress), idempotent=False)

    return sum(parallel_map(part, _ranges(size, sessions), sessions))


# ------------------------------------------------------------------ files
def _local_digest(path: str, algo: str) -> str:
    name = {"SHA-1": "sha1", "SHA-256": "sha256", "SHA-512": "sha512", "MD5": "md5"}[algo]
    with open(path, "rb") as f:
        return hashlib.file_digest(f, name).hexdigest()


def _verify(pool: SessionPool, remote: str, local: str, algo: str = "SHA-256") -> None:
    server = pool.run(lambda s: s.checksum(remote, algo))
    if server != _local_digest(local, algo):
        raise IntegrityError(f"{algo} of {remote!r} differs between server and {local!r}")


def download_file(pool: SessionPool, remote: str, local_path: str | os.PathLike, *, size: int | None = None,
                  mtime: float | None = None, sessions: int | None = None, streams: int | None = None,
                  verify: bool | None = None, preserve: bool | None = None, progress: Progress = None) -> int:
    """Download one remote file to ``local_path``; it appears under that name only when complete."""
    local_path = os.fspath(local_path)
    sessions = pool.max_sessions if sessions is None else sessions
    with oserrors(remote):
        engine = transfer_engine()
        if engine is not None:
            result = engine.download(pool.endpoint, remote, local_path,
                                     **_engine_options(sessions, streams, verify, preserve, progress))
            return int(result.bytes)
        if size is None:
            info = pool.run(lambda s: s.stat(remote))
            if info.is_dir:
                raise IsADirectoryError(21, "Is a directory", remote)
            size, mtime = info.size, info.mtime
        with PartialFile(local_path, size) as part:
            got = download_to_fd(pool, remote, part.fd, size, sessions=sessions, progress=progress)
            if got != size:
                raise OSError(5, f"download of {remote} ended after {got} of {size} bytes", remote)
            part.commit(mtime=mtime if preserve else None)
        if verify:
            _verify(pool, remote, local_path)
        return got


def upload_file(pool: SessionPool, local_path: str | os.PathLike, remote: str, *, sessions: int | None = None,
                streams: int | None = None, verify: bool | None = None, preserve: bool | None = None,
                progress: Progress = None) -> int:
    """Upload one local file to ``remote`` (replacing it)."""
    local_path = os.fspath(local_path)
    sessions = pool.max_sessions if sessions is None else sessions
    with oserrors(remote):
        engine = transfer_engine()
        if engine is not None:
            result = engine.upload(pool.endpoint, local_path, remote,
                                   **_engine_options(sessions, streams, verify, preserve, progress))
            return int(result.bytes)
        with open(local_path, "rb") as f:
            st = os.fstat(f.fileno())
            sent = upload_from_fd(pool, f.fileno(), remote, st.st_size, sessions=sessions, progress=progress)
        if preserve:
            pool.run(lambda s: s.set_mtime(remote, st.st_mtime), idempotent=False)
        if verify:
            _verify(pool, remote, local_path)
        return sent


def download_many(pool: SessionPool, pairs: list[tuple[str, str]], *, sessions: int | None = None,
                  streams: int | None = None, verify: bool | None = None, preserve: bool | None = None,
                  progress: Progress = None) -> int:
    """Several ``(remote, local)`` files over up to ``sessions`` sessions at once: one engine call,
    whose sessions are opened once for the whole batch."""
    if not pairs:
        return 0
    sessions = pool.max_sessions if sessions is None else sessions
    engine = transfer_engine()
    if engine is not None and hasattr(engine, "download_many"):
        with oserrors(pairs[0][0]):
            return int(engine.download_many(pool.endpoint, pairs, **_engine_options(
                sessions, streams, verify, preserve, progress)).bytes)
    for _, local in pairs:
        os.makedirs(os.path.dirname(os.path.abspath(local)), exist_ok=True)
    return sum(parallel_map(lambda p: download_file(pool, p[0], p[1], sessions=1, streams=streams, verify=verify,
                                                    preserve=preserve, progress=progress), pairs, sessions))


def upload_many(pool: SessionPool, pairs: list[tuple[str, str]], *, sessions: int | None = None,
                streams: int | None = None, verify: bool | None = None, preserve: bool | None = None,
                progress: Progress = None) -> int:
    """Several ``(local, remote)`` files over up to ``sessions`` sessions at once (remote parent
    directories are created)."""
    if not pairs:
        return 0
    sessions = pool.max_sessions if sessions is None else sessions
    engine = transfer_engine()
    if engine is not None and hasattr(engine, "upload_many"):
        with oserrors(pairs[0][1]):
            return int(engine.upload_many(pool.endpoint, pairs, **_engine_options(
                sessions, streams, verify, preserve, progress)).bytes)
    for parent in sorted({posixpath.dirname(r) for _, r in pairs} - {"", "/", "."}):
        pool.run(lambda s, p=parent: s.makedirs(p), idempotent=False)
    return sum(parallel_map(lambda p: upload_file(pool, p[0], p[1], sessions=1, streams=streams, verify=verify,
                                                  preserve=preserve, progress=progress), pairs, sessions))


__all__ = [
    "download_file",
    "download_many",
    "download_to_fd",
    "parallel_map",
    "regular_fd",
    "run_batch",
    "transfer_engine",
    "upload_file",
    "upload_from_fd",
    "upload_many",
]
