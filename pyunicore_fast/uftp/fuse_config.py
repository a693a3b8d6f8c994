"""Tunables of the UFTP FUSE driver and the parsing of ``-o key=value`` mount options.

One dataclass holds everything the driver can be told, so that the Python API
(``UFTPDriver(host, port, password, cache_size=...)``), the mount command
(``-o cache_size=512M``) and the PyFilesystem opener share the same names and defaults.
Options the driver does not know are passed on to libfuse unchanged.
"""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass, field
from typing import Any

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB

_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kKmMgGtT]?)(?:i?[bB])?\s*$")
_UNITS = {"": 1, "k": KiB, "m": MiB, "g": GiB, "t": 1024 * GiB}


def parse_size(value: Any) -> int:
    """``"256M"``, ``"1.5GiB"``, ``"131072"`` or an int -> bytes (binary units, as rclone and dd)."""
    if isinstance(value, bool):
        raise TypeError(f"not a size: {value!r}")
    if isinstance(value, (int, float)):
        return int(value)
    m = _SIZE_RE.match(str(value))
    if not m:
        raise ValueError(f"not a size: {value!r} (use e.g. 131072, 128K, 256M, 1G)")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def parse_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on", ""):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"not a boolean: {value!r}")


@dataclass
class FuseDriverConfig:
    """Everything the UFTP FUSE driver can be tuned with (defaults follow mountpoint-s3).

    Sizes are bytes; ``-o`` accepts ``K``/``M``/``G`` suffixes.  Times are seconds.
    """

    #: network timeout of every UFTP operation: a dead or frozen server yields EIO after this.
    timeout: float = 30.0
    #: UFTP sessions (logins with the persistent secret) shared by all open files.
    max_sessions: int = 8
    #: memory cap of the LRU block cache shared by all files.
    cache_size: int = 256 * MiB
    #: cap of prefetched-but-not-yet-read data over all open files (None: half the cache).
    prefetch_budget: int | None = None
    #: cache granularity; also the size of a random-read fetch (the kernel asks for <=128 KiB).
    block_size: int = 128 * KiB
    #: first read-ahead window: 1 MiB plus 128 KiB to absorb the kernel's own readahead.
    prefetch_initial: int = MiB + 128 * KiB
    #: the window doubles while reads stay sequential, up to this.
    prefetch_max: int = 64 * MiB
    #: largest single range read; <= uftpcore's keep-alive limit so the data connection is reused.
    request_size: int = 4 * MiB
    #: most range reads in flight per sequential stream; more than one is used only when the
    #: request timings show a latency-bound link (1 disables that).
    prefetch_streams: int = 4
    #: fetch unit of random (non-sequential) reads: a 4 KiB read costs a 16 KiB fetch, not a block.
    random_size: int = 16 * KiB
    #: a forward jump up to this still counts as sequential (the stream skips ahead).
    seek_forward: int = 16 * MiB
    #: a backward jump up to this still counts as sequential (served from the cache).
    seek_back: int = 1 * MiB
    #: attribute cache lifetime.
    attr_ttl: float = 5.0
    #: directory listing lifetime (None: same as attr_ttl).
    dir_ttl: float | None = None
    #: lifetime of "does not exist" answers (None: same as attr_ttl).
    negative_ttl: float | None = None
    #: non-streamed writes are coalesced up to this before one ranged upload.
    write_buffer: int = 8 * MiB
    #: uftpcore implementation ("cython"/"python"); None = the process default.
    implementation: str | None = None
    #: owner reported for every file (the mounting user by default).
    uid: int = field(default_factory=lambda: os.getuid() if hasattr(os, "getuid") else 0)
    gid: int = field(default_factory=lambda: os.getgid() if hasattr(os, "getgid") else 0)
    #: if set, write this to the mount's /sys/class/bdi/<dev>/read_ahead_kb (root only; the
    #: kernel caps FUSE readahead at 128 KiB otherwise, whatever max_readahead says).
    read_ahead_kb: int | None = None

    def __post_init__(self) -> None:
        if self.dir_ttl is None:
            self.dir_ttl = self.attr_ttl
        if self.negative_ttl is None:
            self.negative_ttl = self.attr_ttl
        if self.prefetch_budget is None:
            self.prefetch_budget = max(self.cache_size // 2, self.prefetch_initial)
        if self.block_size <= 0 or self.block_size & (self.block_size - 1):
            raise ValueError("block_size must be a power of two")
        if self.max_sessions < 1:
            raise ValueError("max_sessions must be at least 1")
        self.random_size = min(self.random_size, self.block_size)
        if self.random_size <= 0 or self.block_size % self.random_size:
            raise ValueError("random_size must divide block_size")
        self.request_size = max(self.block_size, self.request_size - self.request_size % self.block_size)
        self.prefetch_max = max(self.prefetch_max, self.prefetch_initial)

    @classmethod
    def field_names(cls) -> set[str]:
        return {f.name for f in dataclasses.fields(cls)}

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> FuseDriverConfig:
        """Build from ``-o`` strings or Python values (sizes with suffixes allowed)."""
        kwargs: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if f.name not in options:
                continue
            value = options[f.name]
            kwargs[f.name] = _coerce(f.name, value)
        return cls(**kwargs)


_SIZE_FIELDS = {"cache_size", "prefetch_budget", "block_size", "prefetch_initial", "prefetch_max", "request_size",
                "seek_forward", "seek_back", "write_buffer", "random_size"}
_FLOAT_FIELDS = {"timeout", "attr_ttl", "dir_ttl", "negative_ttl"}
_INT_FIELDS = {"max_sessions", "uid", "gid", "read_ahead_kb", "prefetch_streams"}

#: short aliases accepted by ``-o`` (rclone/uftp-client style names).
OPTION_ALIASES = {
    "sessions": "max_sessions",
    "threads": "max_sessions",
    "cache": "cache_size",
    "impl": "implementation",
    "readahead_kb": "read_ahead_kb",
}


def _coerce(name: str, value: Any) -> Any:
    if value is None:
        return None
    if name in _SIZE_FIELDS:
        return parse_size(value)
    if name in _FLOAT_FIELDS:
        return float(value)
    if name in _INT_FIELDS:
        return int(value)
    return value


def split_mount_options(options: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split ``-o`` options into (driver options, libfuse options)."""
    names = FuseDriverConfig.field_names()
    driver: dict[str, Any] = {}
    kernel: dict[str, Any] = {}
    for key, value in options.items():
        key = OPTION_ALIASES.get(key, key)
        (driver if key in names else kernel)[key] = value
    return driver, kernel


def parse_option_string(text: str | None) -> dict[str, Any]:
    """``"ro,max_read=131072,cache_size=1G"`` -> ``{"ro": True, "max_read": "131072", ...}``.

    Same convention as PyUNICORE's ``_parse_args``: a bare key is a flag (True).
    """
    result: dict[str, Any] = {}
    if not text:
        return result
    for opt in text.split(","):
        opt = opt.strip()
        if not opt:
            continue
        key, sep, value = opt.partition("=")
        result[key.strip()] = value if sep else True
    return result


def kernel_defaults(config: FuseDriverConfig, fuse_major: int, fsname: str) -> dict[str, Any]:
    """libfuse options we mount with unless told otherwise.

    1 MiB requests (the kernel still caps them at 32 pages without FUSE_MAX_PAGES, i.e. 128 KiB
    with libfuse2), ``auto_cache`` (keep the page cache across opens unless size/mtime changed),
    and kernel attribute/entry timeouts shorter than ours so remote changes show up.
    ``big_writes``/``max_write``/``max_readahead`` are libfuse2 mount options; libfuse3
    removed them (it negotiates 1 MiB requests itself) and refuses a ``max_read`` that init()
    does not repeat.
    """
    opts: dict[str, Any] = {
        "fsname": fsname,
        "subtype": "uftp",
        "auto_cache": True,
        "attr_timeout": min(1.0, config.attr_ttl),
        "entry_timeout": min(1.0, config.attr_ttl),
        "negative_timeout": min(1.0, config.negative_ttl or 0.0),
    }
    if fuse_major == 2:
        opts.update({"max_read": MiB, "big_writes": True, "max_write": MiB, "max_readahead": MiB})
    return opts
