"""Sizes, byte ranges, rates and durations as people type and read them.

Binary units throughout (``1K`` = 1024 bytes), as the Java ``uftp`` client, rclone and dd
use them, so ``-B 1M-2M`` means the same thing here as there.
"""

from __future__ import annotations

import re

KiB = 1 << 10
MiB = 1 << 20
GiB = 1 << 30

_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kKmMgGtT]?)(?:i?[bB])?\s*$")
_UNITS = {"": 1, "k": KiB, "m": MiB, "g": GiB, "t": 1 << 40}


def parse_size(text: str | int) -> int:
    """``"256M"``, ``"1.5GiB"``, ``"1k"``, ``"4096"`` -> bytes.  Raises ``ValueError``."""
    if isinstance(text, int):
        return text
    m = _SIZE_RE.match(text)
    if not m:
        raise ValueError(f"not a size: {text!r} (use e.g. 4096, 128K, 256M, 1G)")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def parse_byte_range(spec: str) -> tuple[int, int | None, bool]:
    """The Java client's ``-B`` syntax -> ``(offset, length or None = to the end, at_offset)``.

    ``start-end`` is inclusive, ``start-`` runs to the end of the file, a single number ``N``
    means bytes ``0..N``; a third field ``p`` (``1K-2K-p``) writes the range at the same offset
    of the local file instead of into a file of its own.
    """
    parts = spec.strip().split("-")
    at_offset = False
    if len(parts) == 3 and parts[2].lower() == "p":
        at_offset = True
        parts = parts[:2]
    try:
        if len(parts) == 1:
            end = parse_size(parts[0])
            return 0, end + 1, at_offset
        if len(parts) != 2:
            raise ValueError
        start = parse_size(parts[0]) if parts[0] else 0
        if parts[1] == "":
            return start, None, at_offset
        end = parse_size(parts[1])
    except ValueError:
        raise ValueError(f"not a byte range: {spec!r} (use start-end, start- or N; e.g. 0-1023, 1M-, 4K-8K-p)")\
            from None
    if end < start:
        raise ValueError(f"byte range {spec!r} ends before it starts")
    return start, end - start + 1, at_offset


def human_size(n: float, decimals: int = 1) -> str:
    """``1536`` -> ``"1.5 KiB"``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} B" if unit == "B" else f"{n:.{decimals}f} {unit}"
        n /= 1024
    return f"{n:.{decimals}f} TiB"  # pragma: no cover - loop always returns


def human_rate(nbytes: float, seconds: float) -> str:
    """Throughput as ``"123.4 MiB/s"`` (``"-"`` when nothing was timed)."""
    if seconds <= 0:
        return "-"
    return human_size(nbytes / seconds) + "/s"


def rate_mib_s(nbytes: float, seconds: float) -> float:
    """MiB/s rounded for tables and JSON (0.0 when nothing was timed)."""
    return round(nbytes / seconds / MiB, 2) if seconds > 0 else 0.0
