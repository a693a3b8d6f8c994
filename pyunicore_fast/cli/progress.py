"""Progress bars (tqdm) for long transfers: bytes, rate and ETA, like ``rclone -P``.

Shown only when stdout is a terminal (scripts and CI logs stay clean) unless forced with
``-D/--progress``; never with ``--quiet``.  Bars are drawn on stderr so that ``--json``
output on stdout stays parseable.  The callback is thread-safe: parallel sessions all
report into one bar.
"""

from __future__ import annotations

import sys
import threading
from typing import Any


def wanted(force: bool = False, quiet: bool = False) -> bool:
    """Whether to draw a bar: forced, or stdout is a TTY, and never when quiet."""
    if quiet:
        return False
    if force:
        return True
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False


class Progress:
    """A byte counter with an optional tqdm bar; ``update(n)`` adds ``n`` bytes."""

    def __init__(self, total: int | None, label: str, enabled: bool):
        self._lock = threading.Lock()
        self.done = 0
        self._bar: Any = None
        if enabled:
            try:
                from tqdm import tqdm
            except ImportError:  # the 'progress' extra is not installed: count silently
                return
            self._bar = tqdm(total=total, desc=label, unit="B", unit_scale=True, unit_divisor=1024,
                             file=sys.stderr, dynamic_ncols=True, leave=True, miniters=1, mininterval=0.2,
                             smoothing=0.1)

    def update(self, n: int) -> None:
        if n <= 0:
            return
        with self._lock:
            self.done += n
            if self._bar is not None:
                self._bar.update(n)

    def __call__(self, report: Any) -> None:
        """Progress callback of both kinds: an int (bytes just moved, ``Session`` style) or a
        ``uftpcore.progress.Progress`` snapshot (absolute ``bytes_done``, engine style)."""
        if isinstance(report, int):
            self.update(report)
            return
        done = int(getattr(report, "bytes_done", 0))
        total = getattr(report, "total", None)
        with self._lock:
            delta = done - self.done
            self.done = done
            if self._bar is not None:
                if total is not None and self._bar.total != total:
                    self._bar.total = total
                files_total = getattr(report, "files_total", None)
                if files_total and files_total > 1:
                    self._bar.set_postfix_str(f"{getattr(report, 'files_done', 0)}/{files_total} files",
                                              refresh=False)
                self._bar.update(delta)

    def set_total(self, total: int) -> None:
        if self._bar is not None:
            with self._lock:
                self._bar.total = total
                self._bar.refresh()

    def set_label(self, label: str) -> None:
        if self._bar is not None:
            self._bar.set_description_str(label, refresh=False)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> Progress:  # noqa: PYI034 - typing.Self needs Python 3.11
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
