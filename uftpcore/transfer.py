"""High-level bulk transfers: what REST storages, the CLI, FUSE and fsspec call.

One call moves a file, a list of files or a directory tree, using everything the protocol
offers for speed and safety:

* **Parallel sessions** (Java client ``-t``/``-T`` style, spec §11.3, §11.5).  A file of at
  least ``split_threshold`` bytes is cut into byte ranges; each range goes over its own session
  (``RANG`` + ``RETR`` written with ``pwrite`` into one pre-allocated temporary file, or ``RANG``
  + ``STOR``, which never truncates, §3.7).  Many small files are spread over the sessions, one
  thread per session, pulling from a shared queue.  ``streams`` adds JPARSS streams per session.
* **Server limits**: a ``223`` lowers the stream count (recorded in ``streams_used``); a refused
  login (``500 Too many ...``) lowers the session count, and the result says what was used.
* **Verification** (on by default): every range moved is compared with the server's ``HASH``
  of the same range; a mismatch raises ``IntegrityError`` and a download's final file is never
  created.  Files moved in one piece report their whole-file digest in ``checksums``.
* **Resume**: downloads keep their partial data under ``<target>.uftp-resume`` with a JSON
  record of the ranges that arrived (``uftpcore.resume``); uploads compare the remote file's
  prefix with the local one.  Either way the existing data is checked with ``RANG`` + ``HASH``
  before it is trusted, and only the rest is moved.  With ``resume=True`` a file that is
  already complete at the destination is checked and skipped.
* **Retries**: a lost or stalled connection costs one chunk, redone on a new session after a
  capped exponential backoff (``uftpcore.retry``).
* **Pacing**: an optional bandwidth limit shared by all sessions, and chunk sizes that adapt to
  the link so progress is reported about twice a second per session (``uftpcore.ratelimit``).
* **Trees** keep modification times and permission bits (``preserve``), refuse remote names
  that would escape the local target (``uftpcore.trees``), and can upload in archive mode
  (``TYPE ARCHIVE``, one tar stream per session).

Memory stays constant whatever the file sizes: data goes from socket to file (or file to
socket), and the only per-transfer buffers are one 1 MiB hashing buffer per session.

Every function returns a ``TransferResult``.
"""

from __future__ import annotations

import logging
import os
import posixpath
import stat as stat_mod
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from . import trees
from .crew import Crew, Worker
from .endpoint import Endpoint
from .errors import (
    ConnectionClosedError,
    IntegrityError,
    NotFoundError,
    ReplyError,
    TransferIncompleteError,
    UFTPError,
)
from .hashing import digest_fd_range, empty_digest, hash_fd_range, new_hasher, normalize_algo
from .localfile import PartialFile
from .progress import Progress, ProgressCallback, ProgressTracker
from .ratelimit import ChunkSizer, TokenBucket
from .resume import Extent, RemoteIdentity, ResumeFile, complement, merge, split, total
from .retry import RetryPolicy
from .session import Session
from .sessionpool import Cancelled, SessionPool

log = logging.getLogger(__name__)

__all__ = [
    "Progress",
    "TransferOptions",
    "TransferResult",
    "download",
    "download_many",
    "download_tree",
    "upload",
    "upload_many",
    "upload_tree",
]

DEFAULT_SPLIT_THRESHOLD = 64 << 20
#: a file's ranges are checked in blocks of at least this size when a resumed part mismatches.
RESUME_CHECK_BLOCK = 4 << 20


# ------------------------------------------------------------------------------ API types
@dataclass
class TransferResult:
    """What a bulk transfer did.  ``bytes`` counts payload moved in *this* run."""

    bytes: int = 0
    files: int = 0
    seconds: float = 0.0
    #: ``bytes / seconds``.
    rate: float = 0.0
    #: sessions that worked in parallel (fewer than asked if the server limits sessions).
    sessions_used: int = 0
    #: data connections per session the server granted (0 if no data moved).
    streams_used: int = 0
    #: every byte of every file was compared with the server's HASH.
    verified: bool = False
    algo: str | None = None
    #: whole-file hex digests of files moved in one piece, by name (split files: per-range only).
    checksums: dict[str, str] = field(default_factory=dict)
    #: bytes that were already in place (resumed partial data, complete files skipped).
    resumed_bytes: int = 0
    retries: int = 0
    #: files found complete at the destination (``resume=True``) and not moved again.
    skipped: int = 0
    #: human-readable remarks: session limits met, symlinks skipped, attributes not preserved.
    notes: list[str] = field(default_factory=list)

    @property
    def checksum(self) -> str | None:
        """The digest of a single-file transfer (None for several files or a split file)."""
        return next(iter(self.checksums.values())) if len(self.checksums) == 1 else None


@dataclass(frozen=True)
class TransferOptions:
    """The knobs shared by all bulk functions (see the module docstring for their meaning)."""

    sessions: int = 1
    streams: int | None = None
    split_threshold: int = DEFAULT_SPLIT_THRESHOLD
    verify: bool = True
    algo: str = "SHA-256"
    resume: bool = False
    progress: ProgressCallback | None = None
    retries: int = 3
    backoff: tuple[float, float] = (0.5, 8.0)
    bandwidth_limit: float | None = None
    preserve: bool = True
    #: fixed chunk length per RANG+RETR/STOR; None adapts to the link.
    chunk_size: int | None = None

    def __post_init__(self) -> None:
        if self.sessions < 1:
            raise ValueError("sessions must be >= 1")
        if self.streams is not None and self.streams < 1:
            raise ValueError("streams must be >= 1")
        if self.split_threshold < 1:
            raise ValueError("split_threshold must be positive")
        if self.bandwidth_limit is not None and self.bandwidth_limit <= 0:
            raise ValueError("bandwidth_limit must be positive (bytes/s) or None")
        normalize_algo(self.algo)


# ------------------------------------------------------------------------------ work items
@dataclass(eq=False)
class _FileTask:
    """One file to move, and its state while its pieces are in flight."""

    remote: str
    local: str
    name: str
    size: int | None = None
    mtime: float | None = None
    mode: int | None = None
    fd: int = -1
    target: PartialFile | ResumeFile | None = None
    #: upload: the chunk at offset 0 truncates the remote file (``ALLO``), nothing else does.
    truncate_first: bool = False
    pieces_left: int = 0
    #: moved as one piece covering the whole file: that piece's digest is the file's.
    whole: bool = False
    digest: str | None = None
    verified: bool = True
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass(frozen=True, eq=False)
class _Piece:
    task: _FileTask
    start: int
    end: int


class _ShortChunk(ConnectionClosedError):
    """Fewer bytes arrived than the (unchanged) remote file holds: the data connection broke."""


# ------------------------------------------------------------------------------ the engine
class _Bulk:
    """One bulk operation: options, sessions, workers, counters and cleanup."""

    def __init__(self, endpoint: Endpoint, opts: TransferOptions):
        self.opts = opts
        self.algo = normalize_algo(opts.algo)
        self.verify = opts.verify
        self.cancel = threading.Event()
        self.policy = RetryPolicy(opts.retries, (float(opts.backoff[0]), float(opts.backoff[1])))
        self.bucket = TokenBucket(opts.bandwidth_limit) if opts.bandwidth_limit else None
        cap = self.bucket.chunk_cap() if self.bucket is not None else None
        self.pool = SessionPool(endpoint, streams=opts.streams, policy=self.policy, cancel=self.cancel)
        self.crew = Crew(self.pool, self.policy, self.cancel, lambda: ChunkSizer(opts.chunk_size, cap))
        self.pool.on_retry = self.crew.count_retry
        self.tracker = ProgressTracker(opts.progress)
        self.result = TransferResult(algo=self.algo if opts.verify else None)
        self._lock = threading.Lock()
        self._open: set[_FileTask] = set()
        self._unverified = 0
        self._t0 = time.monotonic()

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> _Bulk:  # noqa: PYI034 - private class, never subclassed outside
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            for task in list(self._open):
                self._abandon(task)
        finally:
            self.pool.close_all()

    def start(self) -> Worker:
        """The primary session (metadata, listings); also checks what the server can verify."""
        worker = self.crew.start()
        assert worker.session is not None
        features = worker.session.features
        if self.verify:
            if not features.hash_algorithms:
                self.verify = False
                self.result.algo = None
                self.note("server offers no HASH command: transfers are NOT verified")
            elif self.algo not in features.hash_algorithms:
                raise UFTPError(f"server cannot compute {self.algo} (it offers {features.hash_algorithms}); "
                                "choose another algo= or verify=False")
        return worker

    def note(self, text: str) -> None:
        log.warning("%s", text)
        with self._lock:
            self.result.notes.append(text)

    def finish(self) -> TransferResult:
        r = self.result
        r.seconds = time.monotonic() - self._t0
        r.rate = r.bytes / r.seconds if r.seconds > 0 else 0.0
        r.sessions_used = len(self.crew.workers)
        r.streams_used = self.crew.streams_used
        r.retries = self.crew.retries
        r.verified = self.verify and self._unverified == 0
        if self.pool.limit is not None:
            r.notes.append(f"server limits sessions per user: used {r.sessions_used} of the {self.opts.sessions} "
                           f"requested ({self.pool.refused} refused)")
        log.info("transfer done: %d files, %d bytes in %.2f s (%.1f MB/s), %d sessions x %d streams, "
                 "%d resumed bytes, %d retries, verified=%s", r.files, r.bytes, r.seconds, r.rate / 1e6,
                 r.sessions_used, r.streams_used, r.resumed_bytes, r.retries, r.verified)
        return r

    # ------------------------------------------------------------------ bookkeeping
    def _add_bytes(self, n: int, name: str | None) -> None:
        with self._lock:
            self.result.bytes += n
        self.tracker.add(n, name)

    def _add_resumed(self, n: int, name: str) -> None:
        if n:
            with self._lock:
                self.result.resumed_bytes += n
            self.tracker.add_resumed(n)
            log.info("%s: %d bytes already in place", name, n)

    def _file_done(self, task: _FileTask, skipped: bool = False) -> None:
        with self._lock:
            self._open.discard(task)
            self.result.files += 1
            if skipped:
                self.result.skipped += 1
            if task.digest is not None:
                self.result.checksums[task.name] = task.digest
            if not task.verified:
                self._unverified += 1
        self.tracker.file_done(task.name)

    def _piece_size(self, size: int) -> int:
        """Java ``-T`` style: big files are cut into at least ``sessions`` ranges, each at most
        ``split_threshold`` long; small files (or one session) stay whole."""
        t = self.opts.sessions
        if t <= 1 or size < self.opts.split_threshold:
            return max(size, 1)
        pieces = max(t, -(-size // self.opts.split_threshold))
        return -(-size // pieces)

    def _useful_sessions(self, tasks: Iterable[_FileTask]) -> int:
        work = 0
        for task in tasks:
            size = task.size or 0
            work += max(1, -(-size // self._piece_size(size)))
            if work >= self.opts.sessions:
                break
        return max(1, min(self.opts.sessions, work))

    def _set_totals(self, tasks: list[_FileTask]) -> None:
        self.tracker.set_total(sum(t.size or 0 for t in tasks), len(tasks))

    # ------------------------------------------------------------------ shared piece machinery
    def _dispatch(self, worker: Worker, task: _FileTask, kept: list[Extent],
                  before: Callable[[list[Extent]], None] | None = None) -> None:
        """Queue the ranges of ``task`` not covered by ``kept`` (or finish it right away)."""
        assert task.size is not None
        self._add_resumed(total(kept), task.name)
        if kept and not self.verify:
            task.verified = False  # trusted without a HASH check
        pieces = split(complement(kept, task.size), self._piece_size(task.size))
        task.whole = not kept and len(pieces) == 1
        if before is not None:
            before(pieces)
        if not pieces:
            self._finish(worker, task)
            return
        task.pieces_left = len(pieces)
        self.crew.push([_Piece(task, s, e) for s, e in pieces])

    def _run_piece(self, worker: Worker, piece: _Piece, mover: Callable[[Session, _FileTask, int, int], int],
                   verb: str) -> None:
        """Move one range chunk by chunk, hash it locally as it goes, compare with the server."""
        task = piece.task
        hasher = new_hasher(self.algo) if self.verify else None
        pos = piece.start
        while pos < piece.end:
            if self.cancel.is_set():
                raise Cancelled()
            n = worker.sizer.next(piece.end - pos)
            if self.bucket is not None:
                self.bucket.consume(n, self.cancel)
            t0 = time.monotonic()
            moved = worker.call(lambda s, pos=pos, n=n: mover(s, task, pos, n), f"{verb} {task.name} @{pos}+{n}")
            worker.sizer.observe(moved, time.monotonic() - t0)
            if hasher is not None:
                hash_fd_range(task.fd, pos, moved, hasher, worker.buf)
            if isinstance(task.target, ResumeFile):
                task.target.record(pos, pos + moved)
            pos += moved
            self._add_bytes(moved, task.name)
        if hasher is not None:
            local = hasher.hexdigest()
            try:
                self._compare(worker, task, piece.start, piece.end - piece.start, local)
            except IntegrityError:
                if isinstance(task.target, ResumeFile):
                    task.target.forget(piece.start, piece.end)
                raise
            if task.whole:
                task.digest = local
        with task.lock:
            task.pieces_left -= 1
            last = task.pieces_left == 0
        if last:
            self._finish(worker, task)

    def _remote_digest(self, worker: Worker, task: _FileTask, offset: int, length: int | None) -> str:
        if length == 0 or (length is None and task.size == 0):
            return empty_digest(self.algo)
        return worker.call(lambda s: s.checksum(task.remote, self.algo, offset, length).lower(),
                           f"HASH {task.name}")

    def _compare(self, worker: Worker, task: _FileTask, offset: int, length: int, local: str) -> None:
        remote = self._remote_digest(worker, task, offset, length)
        if remote != local:
            raise IntegrityError(
                f"{task.name}: {self.algo} of bytes [{offset}, {offset + length}) differs "
                f"(local {local}, server {remote})")

    def _range_matches(self, worker: Worker, task: _FileTask, start: int, end: int) -> bool:
        local = digest_fd_range(task.fd, start, end - start, self.algo, worker.buf)
        return self._remote_digest(worker, task, start, end - start) == local

    def _check_extents(self, worker: Worker, task: _FileTask, claimed: list[Extent],
                       known_bad: bool = False) -> list[Extent]:
        """Keep the parts of ``claimed`` whose local bytes match the server (RANG + HASH).

        One HASH per extent in the common case; a mismatching extent is re-checked in blocks
        so that one bad block does not throw away a whole resumed download.
        """
        if not claimed:
            return []
        if not self.verify:
            return claimed
        block = max(RESUME_CHECK_BLOCK, -(-total(claimed) // 64))
        kept: list[Extent] = []
        for start, end in claimed:
            if not known_bad and self._range_matches(worker, task, start, end):
                kept.append((start, end))
                continue
            blocks = split([(start, end)], block)
            if len(blocks) > 1:
                kept.extend(b for b in blocks if self._range_matches(worker, task, *b))
        kept = merge(kept)
        dropped = total(claimed) - total(kept)
        if dropped:
            log.warning("%s: %d bytes of existing data do not match the server and will be moved again",
                        task.name, dropped)
        return kept

    def _finish(self, worker: Worker, task: _FileTask) -> None:
        raise NotImplementedError

    def _abandon(self, task: _FileTask) -> None:
        raise NotImplementedError


class _Downloads(_Bulk):
    """Downloads: remote files into pre-allocated temporary (or resume) files."""

    def run(self, tasks: list[_FileTask]) -> None:
        unsized = [t for t in tasks if t.size is None]
        if unsized:
            self.crew.grow(min(self.opts.sessions, len(unsized)))
            self.crew.run(unsized, self._stat)
        self._set_totals(tasks)
        self.crew.grow(self._useful_sessions(tasks))
        tasks = sorted(tasks, key=lambda t: t.size or 0, reverse=True)
        self.crew.run(tasks, self._handle)

    def _stat(self, worker: Worker, task: _FileTask) -> None:
        info = worker.call(lambda s: s.stat(task.remote), f"MLST {task.remote}")
        if info.is_dir:
            raise UFTPError(f"{task.remote!r} is a directory; use download_tree()")
        task.size, task.mtime, task.mode = info.size, info.mtime, info.mode

    def _handle(self, worker: Worker, item: _FileTask | _Piece) -> None:
        if isinstance(item, _Piece):
            self._run_piece(worker, item, self._move, "RETR")
        else:
            self._prepare(worker, item)

    def _prepare(self, worker: Worker, task: _FileTask) -> None:
        assert task.size is not None
        if self.opts.resume and self._already_complete(worker, task):
            return
        claimed: list[Extent] = []
        with self._lock:
            self._open.add(task)
        if self.opts.resume:
            target: PartialFile | ResumeFile = ResumeFile(
                task.local, RemoteIdentity(task.remote, task.size, task.mtime or 0.0), self.algo)
            claimed = target.open()
        else:
            target = PartialFile(task.local, task.size).__enter__()
        task.target, task.fd = target, target.fd
        kept = self._check_extents(worker, task, claimed)
        if isinstance(target, ResumeFile) and claimed:
            target.set_done(kept)
        self._dispatch(worker, task, kept)

    def _move(self, session: Session, task: _FileTask, pos: int, n: int) -> int:
        got = session.download_to_fd(task.remote, task.fd, pos, n, local_offset=pos, streams=self.opts.streams)
        if got < n:
            size = session.stat(task.remote).size
            if size < pos + n:
                raise TransferIncompleteError(f"{task.remote!r} shrank to {size} bytes during the download",
                                              pos + n, pos + got)
            raise _ShortChunk(f"data connection ended after {got} of {n} bytes of {task.remote!r}")
        return got

    def _already_complete(self, worker: Worker, task: _FileTask) -> bool:
        """resume=True: a regular file of the right size (and digest, or mtime) is kept."""
        try:
            st = os.lstat(task.local)
        except FileNotFoundError:
            return False
        if not stat_mod.S_ISREG(st.st_mode) or st.st_size != task.size:
            return False
        if self.verify:
            fd = os.open(task.local, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0))
            try:
                local = digest_fd_range(fd, 0, task.size or 0, self.algo, worker.buf)
            finally:
                os.close(fd)
            if self._remote_digest(worker, task, 0, None) != local:
                return False
            task.digest = local
        else:
            if task.mtime is None or abs(st.st_mtime - task.mtime) > 1.0:
                return False
            task.verified = False
        if self.opts.preserve:
            self._apply_local_attrs(task.local, task)
        self._add_resumed(task.size or 0, task.name)
        self._file_done(task, skipped=True)
        return True

    def _apply_local_attrs(self, path_or_fd: str | int, task: _FileTask) -> None:
        # setuid/setgid/sticky bits from a remote listing are never applied
        if task.mode is not None:
            os.chmod(path_or_fd, task.mode & 0o777)
        if task.mtime is not None and isinstance(path_or_fd, str):
            os.utime(path_or_fd, (task.mtime, task.mtime))

    def _finish(self, worker: Worker, task: _FileTask) -> None:
        target = task.target
        assert target is not None
        if task.size == 0 and self.verify:
            task.digest = empty_digest(self.algo)
        if self.opts.preserve:
            self._apply_local_attrs(task.fd, task)
        target.commit(mtime=task.mtime if self.opts.preserve else None)
        task.fd, task.target = -1, None
        self._file_done(task)

    def _abandon(self, task: _FileTask) -> None:
        target, task.target, task.fd = task.target, None, -1
        if isinstance(target, ResumeFile):
            target.suspend()
        elif isinstance(target, PartialFile):
            target.__exit__(UFTPError, None, None)  # removes the temporary file
        with self._lock:
            self._open.discard(task)


class _Uploads(_Bulk):
    """Uploads: local files into remote files, ranged so that sessions can share a file."""

    def run(self, tasks: list[_FileTask]) -> None:
        for task in tasks:
            if task.size is None:
                task.size = os.stat(task.local).st_size
        self._set_totals(tasks)
        self.crew.grow(self._useful_sessions(tasks))
        tasks = sorted(tasks, key=lambda t: t.size or 0, reverse=True)
        self.crew.run(tasks, self._handle)

    def _handle(self, worker: Worker, item: _FileTask | _Piece) -> None:
        if isinstance(item, _Piece):
            self._run_piece(worker, item, self._move, "STOR")
        else:
            self._prepare(worker, item)

    def _prepare(self, worker: Worker, task: _FileTask) -> None:
        with self._lock:
            self._open.add(task)
        task.fd = os.open(task.local, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        st = os.fstat(task.fd)
        if not stat_mod.S_ISREG(st.st_mode):
            raise UFTPError(f"{task.local!r} is not a regular file")
        task.size, task.mtime, task.mode = st.st_size, st.st_mtime, st.st_mode
        kept: list[Extent] = []
        must_truncate = True
        if self.opts.resume:
            info = self._remote_info(worker, task)
            if info is not None and not info.is_dir and info.size <= task.size:
                # the remote file is not longer than ours: ranged writes leave it at the right size
                must_truncate = False
                known_bad = False
                if info.size == task.size:
                    if self._already_complete(worker, task, info.mtime):
                        return
                    known_bad = self.verify
                kept = self._check_extents(worker, task, [(0, info.size)] if info.size else [], known_bad)

        def create_or_truncate(pieces: list[Extent]) -> None:
            if not must_truncate:
                return
            if len(pieces) == 1 and pieces[0][0] == 0:
                task.truncate_first = True  # the first chunk's ALLO truncates: no extra round trip
            else:  # ranged writes never truncate (spec §3.7): empty the target first
                worker.call(lambda s: s.write(task.remote, b"", 0, truncate=True), f"create {task.name}")

        self._dispatch(worker, task, kept, create_or_truncate)

    def _remote_info(self, worker: Worker, task: _FileTask) -> Any:
        def op(s: Session) -> Any:
            try:
                return s.stat(task.remote)
            except NotFoundError:
                return None
        return worker.call(op, f"MLST {task.remote}")

    def _already_complete(self, worker: Worker, task: _FileTask, remote_mtime: float) -> bool:
        if self.verify:
            local = digest_fd_range(task.fd, 0, task.size or 0, self.algo, worker.buf)
            if self._remote_digest(worker, task, 0, None) != local:
                return False
            task.digest = local
        else:
            if task.mtime is None or abs(remote_mtime - task.mtime) > 1.0:
                return False
            task.verified = False
        self._add_resumed(task.size or 0, task.name)
        self._finish(worker, task, skipped=True)
        return True

    def _move(self, session: Session, task: _FileTask, pos: int, n: int) -> int:
        truncate = task.truncate_first and pos == 0
        return session.upload_from_fd(task.fd, task.remote, pos, n, remote_offset=pos, truncate=truncate,
                                      streams=self.opts.streams)

    def _finish(self, worker: Worker, task: _FileTask, skipped: bool = False) -> None:
        if task.size == 0 and self.verify and task.digest is None:
            task.digest = empty_digest(self.algo)
        if self.opts.preserve:
            set_remote_attrs(self, worker, task.remote, task.mtime, task.mode)
        if task.fd >= 0:
            os.close(task.fd)
            task.fd = -1
        self._file_done(task, skipped=skipped)

    def _abandon(self, task: _FileTask) -> None:
        if task.fd >= 0:
            os.close(task.fd)
            task.fd = -1
        with self._lock:
            self._open.discard(task)

    # ------------------------------------------------------------------ archive mode
    def run_archive(self, members: list[trees.TarMember], remote_dir: str) -> None:
        """``TYPE ARCHIVE``: one tar stream per session, unpacked by the server (spec §3.5.6).

        Saves the per-file round trips of many small files.  The server ignores the members'
        times and modes, so ``preserve`` and verification follow per file afterwards.
        """
        self.tracker.set_total(sum(m.size for m in members), len(members))
        self.crew.grow(min(self.opts.sessions, max(1, len(members))))
        groups = _balance(members, len(self.crew.workers))
        digests: dict[str, str] = {}
        chunk = self.bucket.chunk_cap() if self.bucket is not None else trees.TarStream.CHUNK

        def send(worker: Worker, group: list[trees.TarMember]) -> None:
            def op(s: Session) -> dict[str, Any]:
                hashers: dict[str, Any] = {}
                sent = [0]

                def on_data(m: trees.TarMember, data: memoryview) -> None:
                    if self.cancel.is_set():
                        raise Cancelled()
                    if self.bucket is not None:
                        self.bucket.consume(len(data), self.cancel)
                    if self.verify:
                        h = hashers.get(m.rel)
                        if h is None:
                            h = hashers[m.rel] = new_hasher(self.algo)
                        h.update(data)
                    sent[0] += len(data)
                    self._add_bytes(len(data), m.rel)

                s.command("TYPE ARCHIVE", (200,))
                try:
                    s.upload_fileobj(trees.TarStream(group, on_data, chunk), remote_dir)
                except BaseException:
                    self._add_bytes(-sent[0], None)  # this attempt's bytes do not count
                    if not s.closed:
                        try:
                            s.command("TYPE NORMAL", (200,))
                        except UFTPError:
                            pass
                    raise
                s.command("TYPE NORMAL", (200,))  # archive mode would stay on for the session
                return hashers

            hashers = worker.call(op, f"archive upload of {len(group)} files")
            with self._lock:
                digests.update((rel, h.hexdigest()) for rel, h in hashers.items())

        def post(worker: Worker, m: trees.TarMember) -> None:
            task = _FileTask(posixpath.join(remote_dir, m.rel), m.path, m.rel, m.size, m.mtime, m.mode)
            if self.verify:
                task.digest = digests.get(m.rel, empty_digest(self.algo))
                self._compare_whole(worker, task, task.digest)
            if self.opts.preserve:
                set_remote_attrs(self, worker, task.remote, m.mtime, m.mode)
            self._file_done(task)

        self.crew.run([g for g in groups if g], send)
        self.crew.run(members, post)

    def _compare_whole(self, worker: Worker, task: _FileTask, local: str) -> None:
        remote = self._remote_digest(worker, task, 0, None)
        if remote != local:
            raise IntegrityError(f"{task.name}: {self.algo} differs after the archive upload "
                                 f"(local {local}, server {remote})")


def set_remote_attrs(bulk: _Bulk, worker: Worker, remote: str, mtime: float | None, mode: int | None) -> None:
    """MFMT + MFF UNIX.mode.  A failure here is reported, not fatal: the data arrived intact."""
    try:
        if mtime is not None:
            worker.call(lambda s: s.set_mtime(remote, mtime), f"MFMT {remote}")
        if mode is not None:
            worker.call(lambda s: s.chmod(remote, mode & 0o777), f"MFF {remote}")
    except UFTPError as exc:
        # refused by the server (ReplyError) or not addressable (names with spaces, quirk 20);
        # connection failures that outlived their retries still abort the transfer
        if not isinstance(exc, ReplyError) and type(exc) is not UFTPError:
            raise
        bulk.note(f"could not preserve mtime/mode of {remote!r}: {exc}")


def _balance(members: list[trees.TarMember], n: int) -> list[list[trees.TarMember]]:
    """Longest-first greedy split into ``n`` groups of similar byte totals."""
    groups: list[list[trees.TarMember]] = [[] for _ in range(max(1, n))]
    sizes = [0] * len(groups)
    for m in sorted(members, key=lambda m: m.size, reverse=True):
        i = sizes.index(min(sizes))
        groups[i].append(m)
        sizes[i] += m.size + 512
    for g in groups:
        g.sort(key=lambda m: m.rel)
    return groups


def _mkdir_tolerant(session: Session, path: str) -> None:
    """MKD that accepts an existing directory (a retried MKD may find its own work done)."""
    try:
        session.mkdir(path)
    except ReplyError as exc:
        try:
            info = session.stat(path)
        except NotFoundError:
            raise exc from None
        if not info.is_dir:
            raise UFTPError(f"remote {path!r} exists and is not a directory") from exc


def _remote_join(base: str, rel: str) -> str:
    return posixpath.join(base, rel) if base not in ("", ".") else rel


# ------------------------------------------------------------------------------ public API
def _options(**kw: Any) -> TransferOptions:
    return TransferOptions(**kw)


def download(endpoint: Endpoint, remote: str, local: str | os.PathLike, *, sessions: int = 1,
             streams: int | None = None, split_threshold: int = DEFAULT_SPLIT_THRESHOLD, verify: bool = True,
             algo: str = "SHA-256", resume: bool = False, progress: ProgressCallback | None = None,
             retries: int = 3, backoff: tuple[float, float] = (0.5, 8.0), bandwidth_limit: float | None = None,
             preserve: bool = True, chunk_size: int | None = None) -> TransferResult:
    """Download one file.  ``local`` may be an existing directory (the remote name is kept).

    With ``sessions > 1`` a file of at least ``split_threshold`` bytes is fetched as parallel
    ranges into one pre-allocated temporary file, renamed into place only when complete and
    verified.
    """
    opts = _options(sessions=sessions, streams=streams, split_threshold=split_threshold, verify=verify, algo=algo,
                    resume=resume, progress=progress, retries=retries, backoff=backoff,
                    bandwidth_limit=bandwidth_limit, preserve=preserve, chunk_size=chunk_size)
    local = os.fspath(local)
    if os.path.isdir(local):
        local = os.path.join(local, posixpath.basename(remote.rstrip("/")))
    with _Downloads(endpoint, opts) as bulk:
        bulk.start()
        bulk.run([_FileTask(remote, os.path.abspath(local), remote)])
        return bulk.finish()


def download_many(endpoint: Endpoint, pairs: Iterable[tuple[str, str | os.PathLike]], *, sessions: int = 4,
                  streams: int | None = None, split_threshold: int = DEFAULT_SPLIT_THRESHOLD, verify: bool = True,
                  algo: str = "SHA-256", resume: bool = False, progress: ProgressCallback | None = None,
                  retries: int = 3, backoff: tuple[float, float] = (0.5, 8.0), bandwidth_limit: float | None = None,
                  preserve: bool = True, chunk_size: int | None = None) -> TransferResult:
    """Download ``(remote, local)`` pairs over ``sessions`` parallel sessions (local parent
    directories are created).  Large files among them are split like in ``download``."""
    opts = _options(sessions=sessions, streams=streams, split_threshold=split_threshold, verify=verify, algo=algo,
                    resume=resume, progress=progress, retries=retries, backoff=backoff,
                    bandwidth_limit=bandwidth_limit, preserve=preserve, chunk_size=chunk_size)
    tasks = _pair_tasks(pairs, local_side=1)
    for task in tasks:
        os.makedirs(os.path.dirname(task.local), exist_ok=True)
    with _Downloads(endpoint, opts) as bulk:
        bulk.start()
        bulk.run(tasks)
        return bulk.finish()


def download_tree(endpoint: Endpoint, remote_dir: str, local_dir: str | os.PathLike, *, sessions: int = 4,
                  streams: int | None = None, split_threshold: int = DEFAULT_SPLIT_THRESHOLD, verify: bool = True,
                  algo: str = "SHA-256", resume: bool = False, progress: ProgressCallback | None = None,
                  retries: int = 3, backoff: tuple[float, float] = (0.5, 8.0), bandwidth_limit: float | None = None,
                  preserve: bool = True, chunk_size: int | None = None,
                  max_depth: int = trees.MAX_DEPTH) -> TransferResult:
    """Download the *contents* of ``remote_dir`` into ``local_dir`` (created if missing).

    Remote names that could escape ``local_dir`` and local symlinks leading out of it are
    refused with ``UFTPError`` before anything is written.  ``preserve`` keeps mtimes and
    permission bits of files and subdirectories (``local_dir`` itself is left alone).
    """
    opts = _options(sessions=sessions, streams=streams, split_threshold=split_threshold, verify=verify, algo=algo,
                    resume=resume, progress=progress, retries=retries, backoff=backoff,
                    bandwidth_limit=bandwidth_limit, preserve=preserve, chunk_size=chunk_size)
    with _Downloads(endpoint, opts) as bulk:
        worker = bulk.start()
        info = worker.call(lambda s: s.stat(remote_dir), f"MLST {remote_dir}")
        if not info.is_dir:
            raise UFTPError(f"{remote_dir!r} is not a directory; use download()")
        dirs, files = worker.call(lambda s: trees.walk_remote(s.listdir, remote_dir, max_depth),
                                  f"listing {remote_dir}")
        target = trees.LocalTarget(local_dir)
        paths = [target.file_path(f.rel) for f in files]  # all checked before anything is written
        for d in dirs:
            target.make_dir(d.rel)
        tasks = [_FileTask(_remote_join(remote_dir, f.rel), path, f.rel, f.size, f.mtime, f.mode)
                 for f, path in zip(files, paths)]
        bulk.run(tasks)
        if preserve:
            for d in reversed(dirs):  # children first: setting a parent's mode may lock us out
                path = target.path(d.rel)
                os.chmod(path, d.mode & 0o777)
                os.utime(path, (d.mtime, d.mtime))
        return bulk.finish()


def upload(endpoint: Endpoint, local: str | os.PathLike, remote: str, *, sessions: int = 1,
           streams: int | None = None, split_threshold: int = DEFAULT_SPLIT_THRESHOLD, verify: bool = True,
           algo: str = "SHA-256", resume: bool = False, progress: ProgressCallback | None = None,
           retries: int = 3, backoff: tuple[float, float] = (0.5, 8.0), bandwidth_limit: float | None = None,
           preserve: bool = True, chunk_size: int | None = None) -> TransferResult:
    """Upload one file.  ``remote`` may name an existing directory (or end with ``/``).

    The target is created/truncated first unless a resume keeps part of it; the ranges are
    then written in parallel with ``RANG`` + ``STOR`` (which never truncates).
    """
    opts = _options(sessions=sessions, streams=streams, split_threshold=split_threshold, verify=verify, algo=algo,
                    resume=resume, progress=progress, retries=retries, backoff=backoff,
                    bandwidth_limit=bandwidth_limit, preserve=preserve, chunk_size=chunk_size)
    local = os.fspath(local)
    if os.path.isdir(local):
        raise UFTPError(f"{local!r} is a directory; use upload_tree()")
    with _Uploads(endpoint, opts) as bulk:
        worker = bulk.start()
        name = os.path.basename(local)
        if remote.endswith("/"):
            remote = remote + name
        else:
            def is_dir(s: Session) -> bool:
                try:
                    return s.stat(remote).is_dir
                except NotFoundError:
                    return False
            if worker.call(is_dir, f"MLST {remote}"):
                remote = posixpath.join(remote, name)
        bulk.run([_FileTask(remote, local, remote)])
        return bulk.finish()


def upload_many(endpoint: Endpoint, pairs: Iterable[tuple[str | os.PathLike, str]], *, sessions: int = 4,
                streams: int | None = None, split_threshold: int = DEFAULT_SPLIT_THRESHOLD, verify: bool = True,
                algo: str = "SHA-256", resume: bool = False, progress: ProgressCallback | None = None,
                retries: int = 3, backoff: tuple[float, float] = (0.5, 8.0), bandwidth_limit: float | None = None,
                preserve: bool = True, chunk_size: int | None = None) -> TransferResult:
    """Upload ``(local, remote)`` pairs over ``sessions`` parallel sessions (remote parent
    directories are created)."""
    opts = _options(sessions=sessions, streams=streams, split_threshold=split_threshold, verify=verify, algo=algo,
                    resume=resume, progress=progress, retries=retries, backoff=backoff,
                    bandwidth_limit=bandwidth_limit, preserve=preserve, chunk_size=chunk_size)
    tasks = _pair_tasks(pairs, local_side=0)
    with _Uploads(endpoint, opts) as bulk:
        worker = bulk.start()
        for parent in sorted({posixpath.dirname(t.remote) for t in tasks} - {"", "/", "."}):
            worker.call(lambda s, p=parent: s.makedirs(p), f"MKD {parent}")
        bulk.run(tasks)
        return bulk.finish()


def upload_tree(endpoint: Endpoint, local_dir: str | os.PathLike, remote_dir: str, *, sessions: int = 4,
                streams: int | None = None, split_threshold: int = DEFAULT_SPLIT_THRESHOLD, verify: bool = True,
                algo: str = "SHA-256", resume: bool = False, progress: ProgressCallback | None = None,
                retries: int = 3, backoff: tuple[float, float] = (0.5, 8.0), bandwidth_limit: float | None = None,
                preserve: bool = True, chunk_size: int | None = None, archive: bool = False,
                follow_symlinks: bool = False) -> TransferResult:
    """Upload the *contents* of ``local_dir`` into ``remote_dir`` (created if missing).

    Symlinks are skipped unless ``follow_symlinks`` (listed in ``notes``).  ``archive=True``
    sends the files as uncompressed tar streams (``TYPE ARCHIVE``, one per session) that the
    server unpacks; it needs ``ARCHIVE`` in the server's FEAT and does not combine with
    ``resume``.
    """
    opts = _options(sessions=sessions, streams=streams, split_threshold=split_threshold, verify=verify, algo=algo,
                    resume=resume, progress=progress, retries=retries, backoff=backoff,
                    bandwidth_limit=bandwidth_limit, preserve=preserve, chunk_size=chunk_size)
    if archive and resume:
        raise ValueError("archive mode re-sends whole tar streams; it cannot resume (use archive=False)")
    dirs, files, skipped = trees.walk_local(local_dir, follow_symlinks)
    with _Uploads(endpoint, opts) as bulk:
        worker = bulk.start()
        assert worker.session is not None
        if archive and not worker.session.features.archive:
            raise UFTPError("the server does not support archive mode (no ARCHIVE in its FEAT reply); "
                            "use archive=False")
        if skipped:
            bulk.note(f"skipped {len(skipped)} symlinks or special files, e.g. {skipped[0]!r}")
        if remote_dir not in ("", ".", "/"):
            worker.call(lambda s: s.makedirs(remote_dir), f"MKD {remote_dir}")
        for d, _ in dirs:
            path = _remote_join(remote_dir, d.rel)
            worker.call(lambda s, p=path: _mkdir_tolerant(s, p), f"MKD {path}")
        if archive:
            bulk.run_archive([trees.TarMember(e.rel, path, e.size, e.mtime, e.mode) for e, path in files],
                             remote_dir or ".")
        else:
            bulk.run([_FileTask(_remote_join(remote_dir, e.rel), path, e.rel, e.size) for e, path in files])
        if preserve and dirs:
            bulk.crew.run([d for d, _ in dirs], lambda w, d: set_remote_attrs(
                bulk, w, _remote_join(remote_dir, d.rel), d.mtime, d.mode))
        return bulk.finish()


def _pair_tasks(pairs: Iterable[tuple[Any, Any]], local_side: int) -> list[_FileTask]:
    tasks: list[_FileTask] = []
    seen: set[str] = set()
    for pair in pairs:
        local = os.path.abspath(os.fspath(pair[local_side]))
        remote = str(pair[1 - local_side])
        key = local if local_side == 1 else remote
        if key in seen:
            raise ValueError(f"{key!r} appears twice as a destination")
        seen.add(key)
        tasks.append(_FileTask(remote, local, remote))
    return tasks
