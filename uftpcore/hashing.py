"""Local digests that can be compared with the server's ``HASH`` (spec §3.5.7).

uftpd names its algorithms ``MD5``, ``SHA-1``, ``SHA-256`` and ``SHA-512``; hashlib spells them
differently.  Local ranges are hashed by reading the file with ``preadv`` into one reusable
buffer, so verifying a file of any size costs a fixed amount of memory and runs without the GIL
(hashlib releases it for large updates).
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

from .errors import UFTPError

#: uftpd algorithm name -> hashlib constructor name.
HASHLIB_NAMES = {"MD5": "md5", "SHA-1": "sha1", "SHA-256": "sha256", "SHA-512": "sha512"}
READ_BLOCK = 1 << 20


def normalize_algo(algo: str) -> str:
    """``sha256`` / ``SHA256`` / ``SHA-256`` -> ``SHA-256`` (the spelling ``OPTS HASH`` wants)."""
    key = algo.upper().replace("_", "-")
    if key not in HASHLIB_NAMES:
        key = {"SHA1": "SHA-1", "SHA256": "SHA-256", "SHA512": "SHA-512"}.get(key, key)
    if key not in HASHLIB_NAMES:
        raise ValueError(f"unsupported hash algorithm {algo!r}; use one of {sorted(HASHLIB_NAMES)}")
    return key


def new_hasher(algo: str) -> Any:
    return hashlib.new(HASHLIB_NAMES[normalize_algo(algo)])


def empty_digest(algo: str) -> str:
    return new_hasher(algo).hexdigest()


def hash_fd_range(fd: int, offset: int, length: int, hasher: Any, buf: bytearray | None = None) -> None:
    """Feed ``length`` bytes of ``fd`` from ``offset`` into ``hasher``.

    A local file shorter than the range is an error, not a silently shorter digest: the caller
    compares the result with a server digest of exactly this range.
    """
    if buf is None:
        buf = bytearray(min(READ_BLOCK, max(length, 1)))
    view = memoryview(buf)
    pos = offset
    end = offset + length
    while pos < end:
        want = min(len(view), end - pos)
        n = os.preadv(fd, [view[:want]], pos) if hasattr(os, "preadv") else _pread_into(fd, view[:want], pos)
        if n <= 0:
            raise UFTPError(f"local file ended at byte {pos} while hashing up to {end}")
        hasher.update(view[:n])
        pos += n


def digest_fd_range(fd: int, offset: int, length: int, algo: str, buf: bytearray | None = None) -> str:
    hasher = new_hasher(algo)
    hash_fd_range(fd, offset, length, hasher, buf)
    return hasher.hexdigest()


def _pread_into(fd: int, view: memoryview, offset: int) -> int:
    data = os.pread(fd, len(view), offset)
    view[: len(data)] = data
    return len(data)
