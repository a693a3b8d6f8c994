"""Pacing of bulk transfers: a shared bandwidth budget and adaptive chunk sizes.

The data channel's hot loops (Cython, GIL released) cannot be throttled from inside, so bulk
transfers are cut into chunks, each one ``RANG`` + ``RETR``/``STOR``.  Two things decide the
chunk size:

* a ``TokenBucket`` shared by all sessions of a transfer: a worker reserves a chunk's bytes
  *before* moving it and sleeps off any debt, so the aggregate rate stays at the limit however
  many sessions run.  Chunks are kept at about a tenth of the limit so the pauses stay short
  and the rate is smooth at one-second resolution;
* a ``ChunkSizer`` per worker that aims at chunks of about half a second: long enough to hide
  the per-chunk round trips (EPSV, RANG, RETR, 226), short enough that a retry redoes little
  and progress reports arrive often.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

#: chunk sizes are multiples of this (64 KiB = 4 JPARSS blocks), so multi-stream encrypted
#: transfers stay block-aligned except at the very end of a file (spec §6.5).
ALIGN = 64 * 1024


class TokenBucket:
    """A bytes/s budget shared across threads; ``consume(n)`` blocks until ``n`` bytes fit."""

    def __init__(self, rate: float, burst: float | None = None, clock: Callable[[], float] = time.monotonic):
        if rate <= 0:
            raise ValueError("a bandwidth limit must be positive")
        self.rate = float(rate)
        self.burst = float(burst) if burst is not None else max(self.rate / 10.0, 1.0)
        self._clock = clock
        self._tokens = self.burst
        self._stamp = clock()
        self._lock = threading.Lock()

    def reserve(self, n: int) -> float:
        """Take ``n`` bytes from the budget (it may go into debt); returns the seconds to wait.

        Debts add up across threads, so the caller that comes second waits for both: the
        aggregate rate is the limit whatever the number of sessions.
        """
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            self._tokens -= n
            return 0.0 if self._tokens >= 0 else -self._tokens / self.rate

    def consume(self, n: int, cancel: threading.Event | None = None) -> float:
        """Reserve ``n`` bytes and sleep off the debt (returns early if ``cancel`` is set)."""
        wait = self.reserve(n)
        if wait > 0:
            if cancel is not None:
                cancel.wait(wait)
            else:
                time.sleep(wait)
        return wait

    def chunk_cap(self) -> int:
        """The largest chunk that keeps the pacing smooth (about 1/10 s of budget)."""
        return max(16 * 1024, int(self.rate / 10) // (16 * 1024) * (16 * 1024))


class ChunkSizer:
    """Chooses the next chunk length for one worker from the rate it observed."""

    def __init__(self, fixed: int | None = None, cap: int | None = None, *, initial: int = 8 << 20,
                 minimum: int = 1 << 20, maximum: int = 128 << 20, target_seconds: float = 0.5):
        if fixed is not None and fixed <= 0:
            raise ValueError("chunk_size must be positive")
        self.fixed = fixed
        self.cap = cap
        self.minimum = minimum if cap is None else min(minimum, cap)
        self.maximum = maximum if cap is None else min(maximum, cap)
        self.target = target_seconds
        self.size = self._clamp(initial)

    def _clamp(self, n: float) -> int:
        n = int(max(self.minimum, min(self.maximum, n)))
        return max(ALIGN, n // ALIGN * ALIGN) if n >= ALIGN else max(1, n)

    def next(self, remaining: int) -> int:
        size = self.fixed if self.fixed is not None else self.size
        if self.fixed is None and self.cap is not None:
            size = min(size, self.cap)
        return max(1, min(remaining, size))

    def observe(self, nbytes: int, seconds: float) -> None:
        """Adapt towards ``target_seconds`` per chunk, at most doubling or halving per step."""
        if self.fixed is not None or nbytes < self.size // 2:
            return  # a short tail chunk says nothing about the link
        ideal = nbytes / seconds * self.target if seconds > 0 else self.size * 2
        self.size = self._clamp(max(self.size / 2, min(self.size * 2, ideal)))
