"""Byte-exact listing entries of uftpd (spec §3.6).

* MLSD/MLST facts: ``size=..;modify=YYYYMMDDhhmmss;type=dir|file;perm=..;UNIX.mode=<octal>; name``
  with ``modify`` in the *server's local time zone* (quirk 10);
* LIST: ``drwx------   3 dummy dummy 4096 Nov 28 00:23 sub`` (``\\r\\n`` added by the caller);
* STAT: ``-rw- 12 1795825434000 a.txt`` (mtime in epoch milliseconds).

Permissions are the *session user's effective* access (``os.access``), as in uftpd.
Every function raises ``OSError`` for entries that cannot be stat'ed; callers skip them.
"""

from __future__ import annotations

import os
import stat as _stat
import time

#: LIST shows ``HH:MM`` for files modified within this many seconds, else the year
RECENT_SECONDS = 15811200


def _entry_name(path: str) -> str:
    return path if path == "/" else os.path.basename(path)


def _perm(path: str, is_dir: bool, empty: str, mlst: bool) -> str:
    readable = "l" if (mlst and is_dir) else "r"
    searchable = "e" if (mlst and is_dir) else "x"
    return (
        (readable if os.access(path, os.R_OK) else empty)
        + ("w" if os.access(path, os.W_OK) else empty)
        + (searchable if os.access(path, os.X_OK) else empty)
    )


def mlst_facts(path: str) -> str:
    """One MLSD line / the MLST fact line (without leading blank or line end)."""
    st = os.stat(path)
    is_dir = _stat.S_ISDIR(st.st_mode)
    modify = time.strftime("%Y%m%d%H%M%S", time.localtime(st.st_mtime))
    kind = "dir" if is_dir else "file"
    perm = _perm(path, is_dir, "", True)
    return f"size={st.st_size};modify={modify};type={kind};perm={perm};UNIX.mode={st.st_mode:o}; {_entry_name(path)}"


def list_line(path: str, now: float | None = None) -> str:
    """One ``ls -l`` style LIST line without the ``\\r\\n``."""
    st = os.stat(path)
    is_dir = _stat.S_ISDIR(st.st_mode)
    if now is None:
        now = time.time()
    if st.st_mtime < int(now) - RECENT_SECONDS:
        date = time.strftime("%b %d %Y", time.localtime(st.st_mtime))
    else:
        date = time.strftime("%b %d %H:%M", time.localtime(st.st_mtime))
    kind, links = ("d", "3") if is_dir else ("-", "1")
    perm = _perm(path, is_dir, "-", False)
    return f"{kind}{perm}------   {links} dummy dummy {st.st_size} {date} {os.path.basename(path)}"


def stat_line(path: str) -> str:
    """One STAT entry without the leading blank: type+perm, size, epoch millis, name."""
    st = os.stat(path)
    is_dir = _stat.S_ISDIR(st.st_mode)
    name = _entry_name(path) or "."
    kind = "d" if is_dir else "-"
    return f"{kind}{_perm(path, is_dir, '-', False)} {st.st_size} {1000 * int(st.st_mtime)} {name}"
