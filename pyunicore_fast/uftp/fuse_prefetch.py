"""Read-ahead for one open file, in the style of mountpoint-s3's prefetcher.

Why: FUSE hands us reads of at most 128 KiB (libfuse2), one after the other; fetching each
on demand costs a round trip per request and leaves the network idle while the application
works.  A stream per open file therefore fetches ahead, in the background, with exact UFTP
range reads on a pooled session:

* the first request covers 1 MiB + 128 KiB from the first read offset (the extra 128 KiB
  absorbs the kernel's own readahead), and the window doubles each time the reader has
  consumed a whole window sequentially, up to ``prefetch_max`` (64 MiB);
* a jump forward of up to ``seek_forward`` (16 MiB) or back of up to ``seek_back`` (1 MiB)
  keeps the stream (skipped blocks are dropped, earlier ones come from the block cache); a
  larger jump resets it to the initial window — and the stream then waits for a second
  contiguous read before prefetching again, so random reads fetch one block each instead of a
  megabyte each;
* backpressure: the stream never holds more than its window of unread data, and all streams
  together never more than the global prefetch budget; a stalled reader stalls its fetcher.

Blocks the reader has passed move into the shared LRU :class:`~.fuse_cache.BlockCache`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable
from concurrent.futures import Executor
from dataclasses import dataclass

from .fuse_cache import BlockCache

log = logging.getLogger(__name__)

#: fetch(path, buffer, offset): fill ``buffer`` exactly with the file's bytes at ``offset``.
Fetcher = Callable[[str, memoryview, int], None]


@dataclass
class PrefetchConfig:
    block_size: int = 128 * 1024
    initial_window: int = 1024 * 1024 + 128 * 1024
    max_window: int = 64 * 1024 * 1024
    request_size: int = 4 * 1024 * 1024
    seek_forward: int = 16 * 1024 * 1024
    seek_back: int = 1024 * 1024
    #: how long a reader waits for a block the background fetch is bringing (then reads itself).
    wait_timeout: float = 60.0
    #: most range reads in flight per stream (each on its own pooled session), used when the
    #: link turns out to be latency-bound (see ``ReadStream._timed``).
    parallel: int = 4
    #: first range read of a stream; each next one doubles up to ``request_size`` (a reader
    #: waiting for its first block waits for one small read, not for a 4 MiB one)
    first_request: int = 256 * 1024
    #: contiguous bytes a reader must have read after a seek before read-ahead resumes
    restart_after: int = 512 * 1024
    #: unit of reads outside a stream (random access): smaller than a block, since fetching
    #: 128 KiB for a 4 KiB read costs more than the chance of a neighbour being read next.
    random_size: int = 16 * 1024


class PrefetchBudget:
    """Bytes of prefetched-but-unread data all streams may hold together."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self._used = 0
        self._lock = threading.Lock()

    def try_reserve(self, nbytes: int) -> bool:
        with self._lock:
            if self._used + nbytes > self.capacity and self._used > 0:
                return False
            self._used += nbytes
            return True

    def release(self, nbytes: int) -> None:
        with self._lock:
            self._used = max(0, self._used - nbytes)

    @property
    def used(self) -> int:
        return self._used


@dataclass
class StreamStats:
    reads: int = 0
    resets: int = 0
    prefetched_bytes: int = 0
    sync_fetches: int = 0
    waits: int = 0


class ReadStream:
    """Sequential-read detection, background read-ahead and block assembly for one open file."""

    def __init__(self, path: str, size: int, file_id: Hashable, fetch: Fetcher, cache: BlockCache,
                 executor: Executor | None, budget: PrefetchBudget, config: PrefetchConfig):
        self.path = path
        self.size = size
        self.file_id = file_id
        self._fetch = fetch
        self._cache = cache
        self._executor = executor
        self._budget = budget
        self.config = config
        self._bs = config.block_size
        self._rs = min(config.random_size, config.block_size)
        self._cond = threading.Condition(threading.Lock())
        self._ready: dict[int, memoryview] = {}  # prefetched blocks not yet passed by the reader
        self._ready_bytes = 0
        self._low = 0  # no ready block below this index has been left behind
        self._inflight: set[int] = set()
        self._next_fetch = 0  # next block index the background fetch will request
        self._pos: int | None = None  # end of the furthest read so far (None: nothing read yet)
        self._anchor = 0  # start of the furthest read: the window counts from here
        self._window = config.initial_window
        self._seq_bytes = 0  # bytes read sequentially since the window last grew
        self._run_start = 0  # where the current contiguous run of reads began
        self._request = config.first_request  # size of the next range read (ramps up)
        self._small: tuple[int, float] | None = None  # (bytes, seconds) of the stream's first request
        self._parallel = 1  # requests in flight once the window allows (see _timed)
        self._streaming = False  # read-ahead active (sequential access detected)
        self._tasks = 0  # background fetch tasks running for the current epoch
        self._epoch = 0  # bumped on every reset; stale background results are dropped
        self._error: BaseException | None = None
        self._closed = False
        self.stats = StreamStats()

    # ------------------------------------------------------------------ public
    def read_into(self, view: memoryview, offset: int) -> int:
        """Copy the file's bytes at ``offset`` into ``view``; returns the count (short at EOF)."""
        n = min(len(view), self.size - offset)
        if n <= 0:
            return 0
        end = offset + n
        bs = self._bs
        with self._cond:
            self.stats.reads += 1
            self._observe(offset, end)
            streaming = self._streaming
        if not streaming and self._rs < bs:
            self._read_random(view, offset, end)
            return n
        first = offset // bs
        last = (end - 1) // bs
        done = 0
        idx = first
        while idx <= last:
            block = self._block(idx, last)
            start = idx * bs
            a = offset + done - start
            b = min(end - start, len(block))
            view[done:done + b - a] = block[a:b]
            done += b - a
            idx += 1
        with self._cond:
            self._passed(end)
        return n

    def retarget(self, size: int, file_id: Hashable) -> None:
        """The file changed (a local write, a new size): drop everything read so far."""
        with self._cond:
            self.size = size
            self.file_id = file_id
            self._reset_locked()

    def close(self) -> None:
        """Stop the background fetch; unread prefetched blocks go to the shared cache."""
        with self._cond:
            if self.stats.reads:
                log.debug("read stream %s closed: %s", self.path, self.stats)
            self._closed = True
            self._epoch += 1
            self._streaming = False
            for idx, block in self._ready.items():
                self._cache.put(self.file_id, idx, block)
            self._drop_ready()
            self._inflight.clear()
            self._cond.notify_all()

    # ------------------------------------------------------------------ access pattern
    def _observe(self, offset: int, end: int) -> None:
        """Classify this read (sequential / seek) and keep the background fetch going."""
        cfg = self.config
        pos = self._pos
        if pos is None:
            # a first read at the start is the common "read the whole file" case; files of
            # one block are cheaper to read directly than through the background fetch
            self._run_start = offset
            if offset == 0 and self.size > self._bs:
                self._start_stream(offset)
        elif pos - cfg.seek_back <= offset <= pos + cfg.seek_forward:
            if not self._streaming:
                # after a seek, read-ahead resumes once the reader has shown a contiguous run:
                # the kernel itself reads a little ahead of random reads, which is no stream
                if 0 <= offset - pos <= self._rs:
                    if end - self._run_start >= cfg.restart_after:
                        self._start_stream(offset)
                else:
                    self._run_start = offset
            elif offset > pos:
                self._skip_to(offset)
        else:
            self.stats.resets += 1
            self._reset_locked()
            self._run_start = offset
        if pos is None or end > pos or not self._streaming:
            self._pos = end
            self._anchor = offset
        if self._streaming:
            # the window doubles per window of data actually read (jumps do not count)
            self._seq_bytes += end - offset
            if self._seq_bytes >= self._window and self._window < cfg.max_window:
                self._window = min(cfg.max_window, self._window * 2)
                self._seq_bytes = 0
            self._schedule()

    def _start_stream(self, offset: int) -> None:
        self._streaming = True
        self._window = self.config.initial_window
        self._seq_bytes = 0
        self._request = min(self.config.first_request, self.config.request_size)
        self._small = None
        self._next_fetch = offset // self._bs
        self._low = self._next_fetch
        self._error = None

    def _skip_to(self, offset: int) -> None:
        """Forward jump within tolerance: blocks wholly before ``offset`` are not needed."""
        first_needed = offset // self._bs
        if self._next_fetch < first_needed and not self._inflight:
            self._next_fetch = first_needed

    def _reset_locked(self) -> None:
        """Forget the stream (a seek or a changed file); the next contiguous read restarts it."""
        self._epoch += 1
        self._streaming = False
        self._tasks = 0
        self._drop_ready()
        self._inflight.clear()
        self._window = self.config.initial_window
        self._error = None
        self._cond.notify_all()

    def _drop_ready(self) -> None:
        if self._ready_bytes:
            self._budget.release(self._ready_bytes)
        self._ready.clear()
        self._ready_bytes = 0

    # ------------------------------------------------------------------ background fetch
    def _next_request(self) -> tuple[int, int] | None:
        """(first block, block count) the fetcher may request now, or None (backpressure/EOF)."""
        bs = self._bs
        start = self._next_fetch
        cache = self._cache
        # blocks already cached (re-read, another handle) need no fetch
        while start * bs < self.size and (start in self._ready or cache.contains(self.file_id, start)):
            start += 1
        self._next_fetch = start
        limit = min(self.size, self._anchor + self._window)
        if start * bs >= limit:
            return None
        nbytes = min(self._request, limit - start * bs)
        count = max(1, -(-nbytes // bs))
        count = min(count, -(-(self.size - start * bs) // bs))
        if not self._budget.try_reserve(min(count * bs, self.size - start * bs)):
            return None
        self._next_fetch = start + count
        self._request = min(self.config.request_size, self._request * 2)
        self._inflight.update(range(start, start + count))
        return start, count

    def _schedule(self) -> None:
        if self._executor is None or self._closed or self._error is not None:
            return
        # one task first; a second once the window is larger than one request
        limit = 1 if self._window <= self.config.request_size else self._parallel
        while self._tasks < limit:
            request = self._next_request()
            if request is None:
                return
            self._tasks += 1
            try:
                self._executor.submit(self._run, self._epoch, request)
            except RuntimeError:  # executor shut down (unmounting)
                self._tasks -= 1
                start, count = request
                self._inflight.difference_update(range(start, start + count))
                self._budget.release(min(count * self._bs, self.size - start * self._bs))
                return

    def _run(self, epoch: int, request: tuple[int, int]) -> None:
        bs = self._bs
        while True:
            start, count = request
            offset = start * bs
            nbytes = min(count * bs, self.size - offset)
            buf = bytearray(nbytes)
            t0 = time.monotonic()
            try:
                self._fetch(self.path, memoryview(buf), offset)
            except BaseException as exc:  # noqa: BLE001 - handed to the readers waiting for it
                with self._cond:
                    self._budget.release(nbytes)
                    if epoch == self._epoch:
                        self._inflight.difference_update(range(start, start + count))
                        self._error = exc
                        self._tasks -= 1
                        self._next_fetch = min(self._next_fetch, start)
                        self._cond.notify_all()
                log.debug("read-ahead of %s at %d failed: %s", self.path, offset, exc)
                return
            view = memoryview(buf).toreadonly()
            with self._cond:
                if epoch != self._epoch:
                    self._budget.release(nbytes)
                    return
                self.stats.prefetched_bytes += nbytes
                self._timed(nbytes, time.monotonic() - t0)
                for i in range(count):
                    block = view[i * bs:min((i + 1) * bs, nbytes)]
                    self._ready[start + i] = block
                    self._inflight.discard(start + i)
                self._ready_bytes += nbytes
                self._cond.notify_all()
                request = self._next_request() if self._streaming and not self._closed else None
                if request is None:
                    self._tasks -= 1
                    return

    def _timed(self, nbytes: int, seconds: float) -> None:
        """Decide from two request timings whether the link is latency-bound.

        The ramp gives a small and a large request: with duration = overhead + bytes / rate,
        two points yield the per-request overhead (about one round trip).  When it is a
        large part of a full request, one request at a time leaves the link idle that long,
        so up to ``parallel`` requests go out at once; on a fast local link it stays at one
        (more threads would only compete for the CPU).
        """
        if self._small is None:  # the very first request also pays for warming up a session
            self._small = (0, 0.0)
            return
        if self._small[0] == 0:
            self._small = (nbytes, seconds)
            return
        if nbytes < self.config.request_size or self.config.parallel <= 1:
            return
        small_bytes, small_s = self._small
        if nbytes <= small_bytes:
            return
        overhead = (small_s * nbytes - seconds * small_bytes) / (nbytes - small_bytes)
        # a 2 ms floor: below that, parallel requests only add CPU contention
        latency_bound = overhead > max(0.25 * seconds, 0.002)
        wanted = self.config.parallel if latency_bound else 1
        if wanted != self._parallel:
            log.debug("read-ahead of %s: request overhead %.1f ms of %.1f ms -> %d parallel requests",
                      self.path, overhead * 1e3, seconds * 1e3, wanted)
            self._parallel = wanted

    # ------------------------------------------------------------------ block assembly
    def _block(self, idx: int, last: int) -> memoryview:
        """Block ``idx`` from the stream, the shared cache, or (missing) a direct read."""
        with self._cond:
            while True:
                block = self._ready.get(idx)
                if block is not None:
                    return block
                if idx not in self._inflight:
                    break
                self.stats.waits += 1
                if not self._cond.wait(self.config.wait_timeout):
                    break
        block = self._cache.get(self.file_id, idx)
        if block is not None:
            return block
        return self._fetch_direct(idx, last)

    def _fetch_direct(self, idx: int, last: int) -> memoryview:
        """Read the missing blocks ``idx..last`` now (random access, or read-ahead failed)."""
        bs = self._bs
        stop = idx + 1
        while stop <= last and not self._cache.contains(self.file_id, stop):
            stop += 1
        offset = idx * bs
        nbytes = min((stop - idx) * bs, self.size - offset)
        buf = bytearray(nbytes)
        self.stats.sync_fetches += 1
        self._fetch(self.path, memoryview(buf), offset)
        if self._error is not None:
            with self._cond:
                self._error = None  # the server answers again: let read-ahead resume
        view = memoryview(buf).toreadonly()
        for i in range(stop - idx):
            self._cache.put(self.file_id, idx + i, view[i * bs:min((i + 1) * bs, nbytes)])
        return view[0:min(bs, nbytes)]

    def _read_random(self, view: memoryview, offset: int, end: int) -> None:
        """A read outside any stream: whole cached blocks, else cached or fetched sub-blocks of
        ``random_size`` (keys ``(file_id, -1 - sub_index)``, so they never collide with blocks)."""
        bs, rs = self._bs, self._rs
        cache, fid = self._cache, self.file_id
        sub = offset // rs
        last = (end - 1) // rs
        per_block = bs // rs
        while sub <= last:
            start = sub * rs
            block = cache.get(fid, sub // per_block)
            if block is not None:
                base = (sub // per_block) * bs
                lo, hi = max(offset, start), min(end, base + len(block))
                view[lo - offset:hi - offset] = block[lo - base:hi - base]
                sub = (sub // per_block + 1) * per_block
                continue
            piece = cache.get(fid, -1 - sub)
            if piece is None:
                stop = sub + 1  # fetch the run of missing sub-blocks in one range read
                while stop <= last and not cache.contains(fid, -1 - stop) \
                        and not cache.contains(fid, stop // per_block):
                    stop += 1
                nbytes = min((stop - sub) * rs, self.size - start)
                buf = bytearray(nbytes)
                self.stats.sync_fetches += 1
                self._fetch(self.path, memoryview(buf), start)
                whole = memoryview(buf).toreadonly()
                for i in range(stop - sub):
                    cache.put(fid, -1 - (sub + i), whole[i * rs:min((i + 1) * rs, nbytes)])
                a = max(offset, start) - start
                b = min(end, start + nbytes) - start
                view[start + a - offset:start + b - offset] = whole[a:b]
                sub = stop
                continue
            a = max(offset, start) - start
            b = min(end - start, len(piece))
            view[start + a - offset:start + b - offset] = piece[a:b]
            sub += 1

    def _passed(self, end: int) -> None:
        """Move prefetched blocks the reader has completely passed into the shared cache."""
        ready = self._ready
        limit = end // self._bs
        low, self._low = self._low, max(self._low, limit)
        if not ready:
            return
        released = 0
        for idx in range(low, limit):
            block = ready.pop(idx, None)
            if block is not None:
                released += len(block)
                self._cache.put(self.file_id, idx, block)
        if released:
            self._ready_bytes -= released
            self._budget.release(released)
            if self._streaming:
                self._schedule()
