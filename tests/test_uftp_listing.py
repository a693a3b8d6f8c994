"""Parsers of uftpd's listing formats (spec §3.6)."""

from __future__ import annotations

import stat
import time

import pytest

from uftpcore.errors import ProtocolError
from uftpcore.listing import parse_facts_line, parse_mlsd, parse_modify, parse_stat_line


def test_modify_is_local_time_and_matches_mktime():
    for value in ("20261128002354", "20260330021500", "19991231235959", "20260101000000"):
        assert parse_modify(value) == time.mktime(time.strptime(value, "%Y%m%d%H%M%S"))
    assert parse_modify("20261128002354.25") == pytest.approx(parse_modify("20261128002354") + 0.25)


@pytest.mark.parametrize("bad", ["", "2026", "2026112800235x", "20261128006099", "20261328000000"])
def test_bad_modify_is_protocol_error(bad):
    with pytest.raises(ProtocolError):
        parse_modify(bad)


def test_mlsd_lines_from_the_spec():
    text = ("size=4096;modify=20261128002354;type=dir;perm=lwe;UNIX.mode=40777; sub\n"
            "size=12;modify=20261128002354;type=file;perm=rw;UNIX.mode=100666; a.txt\n"
            "size=3;modify=20261128002354;type=file;perm=r; name with spaces; and semicolons\n")
    sub, a, odd = parse_mlsd(text)
    assert sub.is_dir and stat.S_ISDIR(sub.mode) and stat.S_IMODE(sub.mode) == 0o777
    assert (a.name, a.size, a.is_dir, a.mode) == ("a.txt", 12, False, 0o100666)
    assert odd.name == "name with spaces; and semicolons" and stat.S_ISREG(odd.mode) and odd.mode & 0o444


def test_mlst_root_and_cdir_entries():
    assert parse_facts_line(" size=4096;modify=20261128002354;type=dir;perm=lwe; /").name == "/"
    assert parse_mlsd("type=cdir;modify=20261128002354; .\nsize=1;type=file; x\n")[0].name == "x"


def test_stat_lines_use_epoch_milliseconds():
    info = parse_stat_line(" -rw- 12 1795825434000 a file.txt")
    assert (info.name, info.size, info.mtime, info.is_dir) == ("a file.txt", 12, 1795825434.0, False)
    assert parse_stat_line(" drwx 4096 1795825434000 sub").is_dir


@pytest.mark.parametrize("bad", ["garbage", "size=x;type=file; f", " -rw- x 1 f", "novalue; f"])
def test_garbled_listing_lines(bad):
    with pytest.raises(ProtocolError):
        (parse_stat_line if bad.startswith(" -") else parse_facts_line)(bad)
