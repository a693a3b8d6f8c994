"""File metadata as UFTPD reports it, and the parsers for its listing formats.

uftpd writes ``modify`` facts in the *server's local time zone* (not UTC as RFC 3659 says,
spec §3.6, quirk 10).  Like the Java and Python reference clients we interpret them in the
local zone of this process; ``STAT`` listings carry zone-free epoch milliseconds instead.
"""

from __future__ import annotations

import functools
import stat as _stat
import time
from dataclasses import dataclass

from .errors import ProtocolError


@dataclass(frozen=True)
class FileInfo:
    """One directory entry or the result of a stat."""

    name: str
    size: int
    mtime: float
    is_dir: bool
    #: full ``st_mode`` (type bits included) when the server reports ``UNIX.mode``, else
    #: a mode synthesised from ``perm``.
    mode: int
    #: the ``perm`` fact (``rwx`` subset for files, ``lwe`` subset for directories).
    perm: str = ""
    #: absolute server path when known (MLST header), else "".
    path: str = ""

    @property
    def is_file(self) -> bool:
        return not self.is_dir

    def as_stat_dict(self, uid: int = 0, gid: int = 0) -> dict:
        """The ``os.stat``-like dict PyUNICORE's ``UFTP.stat`` returns."""
        return {
            "st_size": self.size,
            "st_uid": uid,
            "st_gid": gid,
            "st_mode": self.mode,
            "st_mtime": int(self.mtime),
            "st_atime": int(self.mtime),
        }


def parse_modify(value: str) -> float:
    """``YYYYMMDDhhmmss[.fff]`` in the server's (assumed local) zone -> epoch seconds.

    Listings repeat the same hours over and over, and ``strptime``+``mktime`` cost ~9 us an
    entry: the hour is converted once (zone offsets only change on hour boundaries) and the
    minutes and seconds are added.
    """
    base, _, frac = value.partition(".")
    if len(base) != 14 or not base.isdigit():
        raise ProtocolError(f"bad modify fact {value!r}")
    minutes, seconds = int(base[10:12]), int(base[12:14])
    if minutes > 59 or seconds > 60:
        raise ProtocolError(f"bad modify fact {value!r}")
    try:
        return _hour_epoch(base[:10]) + minutes * 60 + seconds + (float("0." + frac) if frac else 0.0)
    except ValueError as exc:
        raise ProtocolError(f"bad modify fact {value!r}") from exc


@functools.lru_cache(maxsize=4096)
def _hour_epoch(hour: str) -> float:
    try:
        return time.mktime(time.strptime(hour, "%Y%m%d%H"))
    except OverflowError as exc:
        raise ValueError(str(exc)) from exc


def format_modify(epoch: float) -> str:
    """Epoch seconds -> ``YYYYMMDDhhmmss`` in local time (what MFMT expects from uftpd)."""
    return time.strftime("%Y%m%d%H%M%S", time.localtime(epoch))


def _mode_from_perm(is_dir: bool, perm: str) -> int:
    bits = 0
    if is_dir:
        bits |= _stat.S_IFDIR
        if "l" in perm or "r" in perm:
            bits |= 0o444
        if "w" in perm:
            bits |= 0o200
        if "e" in perm or "x" in perm:
            bits |= 0o111
    else:
        bits |= _stat.S_IFREG
        if "r" in perm:
            bits |= 0o444
        if "w" in perm:
            bits |= 0o200
        if "x" in perm:
            bits |= 0o111
    return bits


def parse_facts_line(line: str, path: str = "") -> FileInfo:
    """Parse one MLSD/MLST fact line: ``size=12;modify=...;type=file;perm=rw;UNIX.mode=100644; name``.

    The name is everything after the first ``"; "`` (names may contain spaces and ``;``).
    """
    line = line.rstrip("\r\n")
    if line.startswith(" "):
        line = line[1:]
    facts_part, sep, name = line.partition(" ")
    if not sep:
        raise ProtocolError(f"bad listing line {line!r}")
    facts: dict[str, str] = {}
    for fact in facts_part.split(";"):
        if not fact:
            continue
        key, eq, value = fact.partition("=")
        if not eq:
            raise ProtocolError(f"bad fact {fact!r} in listing line")
        facts[key.lower()] = value
    kind = facts.get("type", "file").lower()
    is_dir = kind in ("dir", "cdir", "pdir")
    try:
        size = int(facts.get("size", "0"))
    except ValueError as exc:
        raise ProtocolError(f"bad size fact in {line!r}") from exc
    mtime = parse_modify(facts["modify"]) if "modify" in facts else 0.0
    perm = facts.get("perm", "")
    if "unix.mode" in facts:
        try:
            mode = int(facts["unix.mode"], 8)
        except ValueError as exc:
            raise ProtocolError(f"bad UNIX.mode fact in {line!r}") from exc
        if not _stat.S_IFMT(mode):
            mode |= _stat.S_IFDIR if is_dir else _stat.S_IFREG
    else:
        mode = _mode_from_perm(is_dir, perm)
    return FileInfo(name=name, size=size, mtime=mtime, is_dir=is_dir, mode=mode, perm=perm, path=path)


def parse_stat_line(line: str) -> FileInfo:
    """Parse one ``STAT`` entry: `` -rw- 12 1795825434000 a.txt`` (mtime in epoch ms)."""
    parts = line.strip("\r\n").lstrip(" ").split(" ", 3)
    if len(parts) != 4 or len(parts[0]) != 4:
        raise ProtocolError(f"bad STAT line {line!r}")
    flags, size, millis, name = parts
    is_dir = flags[0] == "d"
    perm = flags[1:].replace("-", "")
    try:
        return FileInfo(
            name=name,
            size=int(size),
            mtime=int(millis) / 1000.0,
            is_dir=is_dir,
            mode=_mode_from_perm(is_dir, perm),
            perm=perm,
        )
    except ValueError as exc:
        raise ProtocolError(f"bad STAT line {line!r}") from exc


def parse_mlsd(text: str) -> list[FileInfo]:
    """Parse a whole MLSD listing (``\\n`` or ``\\r\\n`` separated); skips ``.``/``..`` entries."""
    out = []
    for line in text.splitlines():
        if not line.strip():
            continue
        info = parse_facts_line(line)
        if info.name in (".", ".."):
            continue
        out.append(info)
    return out
