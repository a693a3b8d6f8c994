"""A small pool of reusable transfer buffers.

Transfers receive into pooled ``bytearray`` scratch space so that a long-running process
(a FUSE mount, a bulk staging script) allocates its big buffers once, and a transfer's memory
stays constant whatever the file size.
"""

from __future__ import annotations

import threading


class BufferPool:
    """Hands out ``bytearray`` objects of one size; keeps at most ``keep`` idle ones."""

    def __init__(self, size: int = 1 << 20, keep: int = 4):
        if size <= 0:
            raise ValueError("buffer size must be positive")
        self.size = size
        self.keep = keep
        self._free: list[bytearray] = []
        self._lock = threading.Lock()

    def get(self) -> bytearray:
        with self._lock:
            if self._free:
                return self._free.pop()
        return bytearray(self.size)

    def put(self, buf: bytearray) -> None:
        if len(buf) != self.size:
            return
        with self._lock:
            if len(self._free) < self.keep:
                self._free.append(buf)
