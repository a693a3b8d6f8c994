"""Caches of the UFTP FUSE driver: file metadata with a TTL, and file data in LRU blocks.

Why: every kernel ``lookup``/``getattr`` would otherwise cost a UFTP round trip.  ``ls -l`` of a
directory asks for the attributes of every entry right after ``readdir``; one ``MLSD`` already
carries them all, so :meth:`MetadataCache.put_listing` files each entry, and the lookups that
follow never reach the server.  A fresh listing also answers "does not exist" for names it
does not contain (negative entries), as does a recent ``550`` from ``MLST``.

The block cache keeps file data read from the server (fixed-size, aligned blocks) so that
re-reads, backward seeks and several readers of one file share one download.  It is bounded in
bytes and evicts the least recently used block.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

from uftpcore.listing import FileInfo

#: what :meth:`MetadataCache.lookup` returns for a path known not to exist.
MISSING: Any = object()


def parent_of(path: str) -> str:
    """Parent of a FUSE path (``/a/b`` -> ``/a``, ``/a`` -> ``/``)."""
    parent = path.rsplit("/", 1)[0]
    return parent or "/"


def name_of(path: str) -> str:
    return path.rsplit("/", 1)[-1]


class MetadataCache:
    """Attributes by path, directory listings, and negative entries, each with a lifetime.

    Thread-safe; bounded to ``max_entries`` attribute entries (oldest dropped first) so a
    crawl over millions of files cannot grow without limit.
    """

    def __init__(self, ttl: float = 5.0, dir_ttl: float | None = None, negative_ttl: float | None = None,
                 max_entries: int = 500_000):
        self.ttl = ttl
        self.dir_ttl = ttl if dir_ttl is None else dir_ttl
        self.negative_ttl = ttl if negative_ttl is None else negative_ttl
        self.max_entries = max_entries
        self._attrs: OrderedDict[str, tuple[float, Any]] = OrderedDict()  # path -> (expiry, FileInfo|MISSING)
        self._dirs: dict[str, tuple[float, dict[str, FileInfo]]] = {}
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    # -- reads ----------------------------------------------------------------------------
    def lookup(self, path: str) -> FileInfo | Any | None:
        """FileInfo, ``MISSING`` (known not to exist), or None (unknown: ask the server)."""
        now = time.monotonic()
        with self._lock:
            entry = self._attrs.get(path)
            if entry is not None:
                if entry[0] > now:
                    self.hits += 1
                    return entry[1]
                del self._attrs[path]
            if path != "/":
                listing = self._dirs.get(parent_of(path))
                if listing is not None:
                    if listing[0] > now:
                        self.hits += 1
                        info = listing[1].get(name_of(path))
                        return MISSING if info is None else info
                    del self._dirs[parent_of(path)]
            self.misses += 1
            return None

    def listing(self, path: str) -> list[FileInfo] | None:
        now = time.monotonic()
        with self._lock:
            entry = self._dirs.get(path)
            if entry is None:
                return None
            if entry[0] <= now:
                del self._dirs[path]
                return None
            return list(entry[1].values())

    # -- writes ---------------------------------------------------------------------------
    def put(self, path: str, info: FileInfo) -> None:
        with self._lock:
            self._store(path, time.monotonic() + self.ttl, info)

    def put_missing(self, path: str) -> None:
        if self.negative_ttl <= 0:
            return
        with self._lock:
            self._store(path, time.monotonic() + self.negative_ttl, MISSING)

    def put_listing(self, path: str, entries: list[FileInfo]) -> None:
        """Remember a directory listing and file every entry's attributes (one MLSD = one
        ``ls -l``)."""
        now = time.monotonic()
        base = "" if path == "/" else path
        with self._lock:
            self._dirs[path] = (now + self.dir_ttl, {e.name: e for e in entries})
            expiry = now + self.ttl
            for e in entries:
                self._store(f"{base}/{e.name}", expiry, e)

    def _store(self, path: str, expiry: float, value: Any) -> None:
        attrs = self._attrs
        if path in attrs:
            attrs.move_to_end(path)
        attrs[path] = (expiry, value)
        while len(attrs) > self.max_entries:
            attrs.popitem(last=False)

    def invalidate(self, path: str) -> None:
        """Forget ``path`` (attributes, negative entry, its own listing) and its parent's
        listing: call after anything that creates, removes or changes it."""
        with self._lock:
            self._attrs.pop(path, None)
            self._dirs.pop(path, None)
            self._dirs.pop(parent_of(path), None)

    def invalidate_tree(self, path: str) -> None:
        """Forget ``path`` and everything below it (renamed or removed directories)."""
        prefix = path.rstrip("/") + "/"
        with self._lock:
            for key in [k for k in self._attrs if k == path or k.startswith(prefix)]:
                del self._attrs[key]
            for key in [k for k in self._dirs if k == path or k.startswith(prefix)]:
                del self._dirs[key]
            self._dirs.pop(parent_of(path), None)

    def clear(self) -> None:
        with self._lock:
            self._attrs.clear()
            self._dirs.clear()


@dataclass
class BlockCacheStats:
    hits: int = 0
    misses: int = 0
    evictions: int = 0
    inserted_bytes: int = 0


class BlockCache:
    """LRU of file blocks, keyed ``(file_id, block_index)``, bounded to ``capacity`` bytes.

    Blocks are read-only buffers (often slices of one larger range read, which saves a copy:
    the larger buffer is freed once all its slices are gone).  ``file_id`` is whatever
    identifies one *version* of a file; the driver derives it from the path and a generation
    bumped by every local change, so stale data is never served after a write.
    """

    def __init__(self, capacity: int = 256 << 20):
        self.capacity = capacity
        self._blocks: OrderedDict[tuple[Hashable, int], memoryview] = OrderedDict()
        self._by_file: dict[Hashable, set[int]] = {}
        self._bytes = 0
        self._lock = threading.Lock()
        self.stats = BlockCacheStats()

    @property
    def bytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._blocks)

    def get(self, file_id: Hashable, index: int) -> memoryview | None:
        key = (file_id, index)
        with self._lock:
            block = self._blocks.get(key)
            if block is None:
                self.stats.misses += 1
                return None
            self._blocks.move_to_end(key)
            self.stats.hits += 1
            return block

    def contains(self, file_id: Hashable, index: int) -> bool:
        with self._lock:
            return (file_id, index) in self._blocks

    def put(self, file_id: Hashable, index: int, block: memoryview) -> None:
        if self.capacity <= 0:
            return
        key = (file_id, index)
        size = len(block)
        with self._lock:
            old = self._blocks.pop(key, None)
            if old is not None:
                self._bytes -= len(old)
            self._blocks[key] = block
            self._by_file.setdefault(file_id, set()).add(index)
            self._bytes += size
            self.stats.inserted_bytes += size
            while self._bytes > self.capacity and self._blocks:
                (fid, idx), victim = self._blocks.popitem(last=False)
                self._bytes -= len(victim)
                self.stats.evictions += 1
                indexes = self._by_file.get(fid)
                if indexes is not None:
                    indexes.discard(idx)
                    if not indexes:
                        del self._by_file[fid]

    def invalidate_file(self, file_id: Hashable) -> None:
        with self._lock:
            for idx in self._by_file.pop(file_id, ()):
                block = self._blocks.pop((file_id, idx), None)
                if block is not None:
                    self._bytes -= len(block)

    def invalidate_where(self, predicate: Any) -> None:
        """Drop every file whose id satisfies ``predicate(file_id)`` (e.g. all versions of a path)."""
        with self._lock:
            victims = [fid for fid in self._by_file if predicate(fid)]
        for fid in victims:
            self.invalidate_file(fid)

    def clear(self) -> None:
        with self._lock:
            self._blocks.clear()
            self._by_file.clear()
            self._bytes = 0
