"""``TYPE ARCHIVE`` uploads: unpack an uncompressed tar stream below a directory (§3.5.6).

Streaming mode (``r|``), so the data connection is read strictly sequentially and nothing
is buffered beyond one tar block.  Every member path goes through the session's path
policy (534 outside the base directory).  Directory members are created, intermediate
directories as needed; regular files are written; links and device nodes are skipped.
gzip/zip streams fail inside :mod:`tarfile` (uftpd: ``500 ... truncated header``-style).
"""

from __future__ import annotations

import logging
import os
import tarfile
from collections.abc import Callable

log = logging.getLogger(__name__)

_COPY_CHUNK = 1024 * 1024


def extract_tar_stream(reader, target_dir: str, resolve: Callable[[str], str]) -> tuple[int, int]:
    """Extract the tar stream read from ``reader`` (needs ``read(n)``) below ``target_dir``.

    Returns ``(number of files, number of payload bytes)``.
    """
    with tarfile.open(mode="r|", fileobj=reader) as tar:  # does not close ``reader``
        return _extract_members(tar, target_dir, resolve)


def _extract_members(tar: tarfile.TarFile, target_dir: str, resolve: Callable[[str], str]) -> tuple[int, int]:
    files = 0
    total = 0
    while True:
        entry = tar.next()
        if entry is None:
            break
        pathname = resolve(os.path.join(target_dir, entry.name))
        if entry.isdir():
            try:
                os.makedirs(pathname, exist_ok=True)
            except OSError as exc:
                log.debug("error creating directory %s: %s", pathname, exc)
            continue
        if not entry.isfile():
            log.debug("skipping tar member %s (not a regular file)", entry.name)
            continue
        parent = os.path.dirname(pathname)
        try:
            os.makedirs(parent, exist_ok=True)
        except OSError as exc:
            log.debug("error creating directory %s: %s", parent, exc)
        source = tar.extractfile(entry)
        with open(pathname, "wb") as target:
            remaining = entry.size
            while remaining > 0 and source is not None:
                data = source.read(min(_COPY_CHUNK, remaining))
                if not data:
                    break
                target.write(data)
                remaining -= len(data)
                total += len(data)
        files += 1
    return files, total
