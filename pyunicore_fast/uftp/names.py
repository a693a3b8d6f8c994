"""Directory names with one control-channel round trip: ``STAT N <dir>``.

Why not ``MLSD`` for a names-only listing (fsspec ``ls(detail=False)``, PyFilesystem
``listdir``): ``MLSD`` needs a data connection (EPSV + connect) and its ``modify`` facts are
local-time strings that cost a ``strptime`` + ``mktime`` per entry to parse; ``STAT N`` answers
on the control connection with epoch milliseconds.  For 1,000 files on loopback that is ~9.6 ms
instead of ~16 ms.  Detailed listings keep ``MLSD``: only it reports the exact ``UNIX.mode``
(``STAT`` gives owner permission flags only).

One quirk: ``STAT N`` of a *file* lists that file, which looks exactly like a directory whose
only entry has the directory's own name.  That single ambiguous case is settled with ``MLST``.
"""

from __future__ import annotations

import posixpath

from uftpcore import Session
from uftpcore.errors import NotFoundError, ReplyError


def list_names(session: Session, path: str) -> tuple[list[str], bool]:
    """``(names, ambiguous)`` for directory ``path``; ``ambiguous`` means "maybe ``path`` is a file
    named like its only entry" (ask ``MLST``).  Raises ``NotFoundError`` for a missing path."""
    try:
        entries = session.stat_listing(path)
    except ReplyError as exc:
        if exc.code in (500, 550) and "does not exist" in exc.text:
            raise NotFoundError(exc.code, exc.text, "STAT") from exc
        raise
    entries = [e for e in entries if e.name not in (".", "..")]
    base = posixpath.basename(path.rstrip("/"))
    ambiguous = len(entries) == 1 and not entries[0].is_dir and entries[0].name == base
    return [e.name for e in entries], ambiguous
