"""Resumable downloads: a stable partial file plus a record of which byte ranges arrived.

A download with ``resume=True`` writes into ``<target>.uftp-resume`` (not a random temporary
name), so the next run finds it.  Beside it, ``<target>.uftp-resume.json`` records the remote
file's identity (path, size, mtime) and the *extents* that were written.  Parallel ranged
downloads leave holes, so a single "bytes so far" number would not do.

The record is only a hint: before a run continues, every recorded extent is checked against the
server with ``RANG`` + ``HASH`` (``uftpcore.transfer`` does that), and only what matches is kept.
The record never claims a range before its ``pwrite`` finished, and it is rewritten atomically
(temporary file + rename), at most a few times per second.

The helpers at the top work on *extent lists*: sorted, non-overlapping ``(start, end)`` pairs
with exclusive ends.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .localfile import preallocate

log = logging.getLogger(__name__)

RESUME_SUFFIX = ".uftp-resume"
SIDECAR_SUFFIX = ".uftp-resume.json"
FORMAT = 1
Extent = tuple[int, int]


# ------------------------------------------------------------------------------ extent lists
def merge(extents: Iterable[Extent]) -> list[Extent]:
    """Sorted, non-overlapping, adjacent ranges joined; empty ranges dropped."""
    out: list[Extent] = []
    for start, end in sorted((int(s), int(e)) for s, e in extents if e > s):
        if out and start <= out[-1][1]:
            if end > out[-1][1]:
                out[-1] = (out[-1][0], end)
        else:
            out.append((start, end))
    return out


def clip(extents: Iterable[Extent], size: int) -> list[Extent]:
    return merge((max(0, s), min(size, e)) for s, e in extents)


def complement(extents: Iterable[Extent], size: int) -> list[Extent]:
    """The holes of ``extents`` inside ``[0, size)``."""
    holes: list[Extent] = []
    pos = 0
    for start, end in clip(extents, size):
        if start > pos:
            holes.append((pos, start))
        pos = max(pos, end)
    if pos < size:
        holes.append((pos, size))
    return holes


def subtract(extents: Iterable[Extent], start: int, end: int) -> list[Extent]:
    """``extents`` without ``[start, end)``."""
    out: list[Extent] = []
    for s, e in merge(extents):
        if e <= start or s >= end:
            out.append((s, e))
            continue
        if s < start:
            out.append((s, start))
        if e > end:
            out.append((end, e))
    return out


def total(extents: Iterable[Extent]) -> int:
    return sum(e - s for s, e in extents)


def split(extents: Iterable[Extent], piece: int) -> list[Extent]:
    """Cut every extent into pieces of at most ``piece`` bytes (nearly equal within an extent)."""
    out: list[Extent] = []
    for start, end in extents:
        length = end - start
        count = max(1, -(-length // max(1, piece)))
        step = -(-length // count)
        pos = start
        while pos < end:
            out.append((pos, min(end, pos + step)))
            pos += step
    return out


# ------------------------------------------------------------------------------ the files
@dataclass(frozen=True)
class RemoteIdentity:
    """What must not have changed for a partial download to be worth continuing."""

    path: str
    size: int
    mtime: float

    def matches(self, doc: dict[str, Any]) -> bool:
        return (doc.get("remote") == self.path and doc.get("size") == self.size
                and abs(float(doc.get("mtime", -1)) - self.mtime) < 1e-6)


def resume_paths(final_path: str) -> tuple[str, str]:
    return final_path + RESUME_SUFFIX, final_path + SIDECAR_SUFFIX


class ResumeFile:
    """The download target under its stable resume name, with its extent record.

    Same duties as ``localfile.PartialFile`` (pre-allocated, renamed into place only by
    ``commit``) but ``suspend`` keeps the data and the record for the next run.
    """

    FLUSH_INTERVAL = 0.5

    def __init__(self, final_path: str | os.PathLike, identity: RemoteIdentity, algo: str | None = None):
        self.final_path = os.fspath(final_path)
        self.data_path, self.meta_path = resume_paths(self.final_path)
        self.identity = identity
        self.size = identity.size
        self.algo = algo
        self.fd = -1
        self._done: list[Extent] = []
        self._lock = threading.Lock()
        self._last_flush = 0.0
        self._dirty = False

    def open(self) -> list[Extent]:
        """Open (or create) the data file; returns the extents the record claims (unverified).

        A record for another remote file (different path, size or mtime), or none at all, means
        starting over: the old data would only ever fail the HASH check.
        """
        doc = self._load()
        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
        self.fd = os.open(self.data_path, flags, 0o644)
        try:
            have = os.fstat(self.fd).st_size
            claimed: list[Extent] = []
            if doc is not None and self.identity.matches(doc):
                claimed = clip((tuple(x) for x in doc.get("done", [])), min(have, self.size))  # type: ignore[misc]
            elif have:
                log.info("resume data %s belongs to another version of %s; starting over",
                         self.data_path, self.identity.path)
            if not claimed and have:
                os.ftruncate(self.fd, 0)
            if have > self.size:
                os.ftruncate(self.fd, self.size)
            if self.size > 0:
                preallocate(self.fd, self.size)
        except BaseException:
            os.close(self.fd)
            self.fd = -1
            raise
        self._done = list(claimed)
        self.flush(force=True)  # the record now describes *this* remote file
        return claimed

    def _load(self) -> dict[str, Any] | None:
        try:
            with open(self.meta_path, encoding="utf-8") as f:
                doc = json.load(f)
            return doc if isinstance(doc, dict) and doc.get("format") == FORMAT else None
        except (OSError, ValueError):
            return None

    @property
    def done(self) -> list[Extent]:
        with self._lock:
            return list(self._done)

    def set_done(self, extents: Iterable[Extent]) -> None:
        """Replace the record (after verification kept only what matched)."""
        with self._lock:
            self._done = clip(extents, self.size)
            self._dirty = True
        self.flush(force=True)

    def record(self, start: int, end: int) -> None:
        """``[start, end)`` is on disk.  Written to the record at most every FLUSH_INTERVAL."""
        with self._lock:
            self._done = merge(self._done + [(start, end)])
            self._dirty = True
        self.flush()

    def forget(self, start: int, end: int) -> None:
        """``[start, end)`` turned out bad (integrity check): never offer it for resuming."""
        with self._lock:
            self._done = subtract(self._done, start, end)
            self._dirty = True
        self.flush(force=True)

    def flush(self, force: bool = False) -> None:
        with self._lock:
            now = time.monotonic()
            if not force and (not self._dirty or now - self._last_flush < self.FLUSH_INTERVAL):
                return
            doc = {"format": FORMAT, "remote": self.identity.path, "size": self.identity.size,
                   "mtime": self.identity.mtime, "algo": self.algo, "done": [list(x) for x in self._done]}
            tmp = self.meta_path + ".tmp"
            with open(tmp, "w", encoding="utf-8") as f:
                json.dump(doc, f)
            os.replace(tmp, self.meta_path)
            self._last_flush = now
            self._dirty = False

    def commit(self, mtime: float | None = None) -> None:
        """Trim, set the mtime, move into place, drop the record."""
        os.ftruncate(self.fd, self.size)
        if mtime is not None:
            os.utime(self.fd, (mtime, mtime))
        os.close(self.fd)
        self.fd = -1
        os.replace(self.data_path, self.final_path)
        for path in (self.meta_path, self.meta_path + ".tmp"):
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass

    def suspend(self) -> None:
        """Stop for now: write the record, close, keep both files for the next run."""
        if self.fd < 0:
            return
        try:
            self.flush(force=True)
        finally:
            os.close(self.fd)
            self.fd = -1
        log.info("partial download kept in %s (%d of %d bytes)", self.data_path, total(self._done), self.size)
