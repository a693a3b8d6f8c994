"""Progress reporting for bulk transfers.

Workers report every finished chunk from their own threads.  The tracker keeps the counters
under a lock and calls the user's callback with an immutable ``Progress`` snapshot; calls are
serialised, so a callback that draws a progress bar needs no locking of its own.  An exception
raised by the callback aborts the transfer (that is how a caller cancels one).

The rate is measured over a sliding window of recent chunks, so the ETA follows a link that
speeds up or slows down instead of averaging over the whole run.  Resumed bytes count towards
``bytes_done`` (the fraction stays meaningful) but not towards the rate.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Progress:
    """One snapshot, handed to the progress callback."""

    bytes_done: int
    total: int | None
    #: bytes/s over the last few seconds (0.0 before the first chunk).
    rate: float
    #: seconds left at the current rate, None when unknown.
    eta: float | None
    current_file: str | None
    files_done: int = 0
    files_total: int | None = None

    @property
    def fraction(self) -> float | None:
        if not self.total:
            return None if self.total is None else 1.0
        return min(1.0, self.bytes_done / self.total)


ProgressCallback = Callable[[Progress], None]


class ProgressTracker:
    """Thread-safe counters plus the (optional) user callback."""

    def __init__(self, callback: ProgressCallback | None = None, *, window: float = 5.0,
                 clock: Callable[[], float] = time.monotonic):
        self.callback = callback
        self.window = window
        self._clock = clock
        self._lock = threading.Lock()
        self._call_lock = threading.Lock()
        self.total: int | None = None
        self.files_total: int | None = None
        self.bytes_done = 0
        self.moved = 0
        self.files_done = 0
        self._start = clock()
        self._samples: deque[tuple[float, int]] = deque([(self._start, 0)], maxlen=64)

    def set_total(self, total: int | None, files_total: int | None = None) -> None:
        with self._lock:
            self.total = total
            self.files_total = files_total

    def add_resumed(self, n: int) -> None:
        """Bytes that were already in place (resume): progress, but not rate."""
        with self._lock:
            self.bytes_done += n

    def add(self, n: int, current_file: str | None = None) -> None:
        """``n`` bytes moved (negative to take back a failed attempt's bytes)."""
        with self._lock:
            self.bytes_done += n
            self.moved += n
            self._samples.append((self._clock(), self.moved))
        self._emit(current_file)

    def file_done(self, current_file: str | None = None) -> None:
        with self._lock:
            self.files_done += 1
        self._emit(current_file)

    def snapshot(self, current_file: str | None = None) -> Progress:
        with self._lock:
            return self._snapshot(current_file, self._clock())

    def _rate(self, now: float) -> float:
        samples = self._samples
        while len(samples) > 2 and now - samples[1][0] > self.window:
            samples.popleft()
        t0, b0 = samples[0]
        span = now - t0
        if span < 0.05:  # too short to measure: use the whole run
            span, b0 = now - self._start, 0
        return max(0.0, (self.moved - b0) / span) if span > 0 else 0.0

    def _snapshot(self, current_file: str | None, now: float) -> Progress:
        rate = self._rate(now)
        eta = None
        if self.total is not None and rate > 0:
            eta = max(0.0, (self.total - self.bytes_done) / rate)
        return Progress(self.bytes_done, self.total, rate, eta, current_file, self.files_done, self.files_total)

    def _emit(self, current_file: str | None) -> None:
        # the snapshot is taken inside the call lock, so callbacks see monotonic counters
        if self.callback is not None:
            with self._call_lock:
                self.callback(self.snapshot(current_file))
