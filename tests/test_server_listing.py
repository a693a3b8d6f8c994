"""Listing formats of §3.6, byte for byte: MLST, MLSD, LIST, STAT."""

from __future__ import annotations

import os
import time

import pytest

try:
    from .test_server_support import RawFTP, connect, recv_all, root, uftpd
except ImportError:
    from test_server_support import RawFTP, connect, recv_all, root, uftpd  # noqa: F401

OLD = time.mktime((2020, 3, 4, 5, 6, 7, 0, 0, -1))


def local_stamp(epoch: float) -> str:
    return time.strftime("%Y%m%d%H%M%S", time.localtime(epoch))


def perm(path, is_dir: bool, mlst: bool, empty: str = "") -> str:
    r = "l" if mlst and is_dir else "r"
    x = "e" if mlst and is_dir else "x"
    return ((r if os.access(path, os.R_OK) else empty) + ("w" if os.access(path, os.W_OK) else empty)
            + (x if os.access(path, os.X_OK) else empty))


def facts(path, name=None) -> str:
    st = os.stat(path)
    is_dir = os.path.isdir(path)
    return (f"size={st.st_size};modify={local_stamp(st.st_mtime)};type={'dir' if is_dir else 'file'};"
            f"perm={perm(path, is_dir, True)};UNIX.mode={st.st_mode:o}; {name or os.path.basename(path)}")


@pytest.fixture
def tree(root):
    os.chmod(root / "a.txt", 0o640)
    os.utime(root / "a.txt", (OLD, OLD))
    os.utime(root / "sub", (OLD + 60, OLD + 60))
    os.symlink(root / "missing-target", root / "dangling")
    return root


def test_mlst_exact(connect, tree):
    client = connect()
    expected = f"250- Listing {tree}/a.txt\n {facts(tree / 'a.txt')}\n250 End\n"
    assert client.cmd("MLST a.txt") == expected
    assert "type=file;perm=rw;UNIX.mode=100640; a.txt" in expected  # what uftpd shows as the server user
    assert client.cmd("MLST sub") == f"250- Listing {tree}/sub\n {facts(tree / 'sub')}\n250 End\n"
    assert client.cmd("MLST") == f"250- Listing {tree}\n {facts(tree)}\n250 End\n"
    assert client.cmd("MLST sub/") == f"250- Listing {tree}/sub\n {facts(tree / 'sub')}\n250 End\n"


def test_mlst_root_name(connect):
    client = connect(file="/")
    assert client.cmd("MLST /") == f"250- Listing /\n {facts('/', name='/')}\n250 End\n"


def test_mlst_missing_closes_data(connect):
    client = connect()
    data = client.open_data()
    assert client.cmd("MLST nosuch") == (
        "550 Error processing command 'MLST': Directory/file does not exist or cannot be accessed!\n"
    )
    assert recv_all(data) == b""  # the data connection was closed with the error


def test_mlsd_exact(connect, tree):
    client = connect()
    data = client.open_data()
    assert client.cmd("MLSD") == "150 OK\n"
    payload = recv_all(data)
    assert client.read_reply() == b"226 File transfer successful\n"
    lines = payload.decode().split("\n")
    assert lines[-1] == ""  # \n-terminated, no \r
    assert b"\r" not in payload
    assert sorted(lines[:-1]) == sorted(facts(tree / n) for n in ("a.txt", "sub", "empty.txt"))


def test_list_exact(connect, tree):
    now = time.time()
    os.utime(tree / "empty.txt", (now, now))
    client = connect()
    data = client.open_data("PASV")
    assert client.cmd("LIST") == "150 OK\n"
    payload = recv_all(data)
    assert client.read_reply() == b"226 File transfer successful\n"
    assert payload.endswith(b"\r\n")
    lines = sorted(payload.decode().split("\r\n")[:-1])
    sub_date = time.strftime("%b %d %Y", time.localtime(OLD + 60))
    a_date = time.strftime("%b %d %Y", time.localtime(OLD))
    e_date = time.strftime("%b %d %H:%M", time.localtime(now))
    assert lines == sorted([
        f"-{perm(tree / 'a.txt', False, False, '-')}------   1 dummy dummy 12 {a_date} a.txt",
        f"d{perm(tree / 'sub', True, False, '-')}------   3 dummy dummy {os.stat(tree / 'sub').st_size} {sub_date} sub",
        f"-{perm(tree / 'empty.txt', False, False, '-')}------   1 dummy dummy 0 {e_date} empty.txt",
    ])


def test_list_variants(connect, tree):
    client = connect()
    data = client.open_data()
    assert client.cmd("LIST -a") == "150 OK\n"
    assert recv_all(data).count(b"\r\n") == 3
    assert client.read_reply() == b"226 File transfer successful\n"
    data = client.open_data()
    assert client.cmd("LIST sub") == "150 OK\n"
    assert recv_all(data).endswith(b" b.bin\r\n")
    client.read_reply()


@pytest.mark.parametrize("verb", ["LIST", "MLSD"])
def test_listing_errors_close_data(connect, verb):
    client = connect()
    for target in ("nosuch", "a.txt"):
        data = client.open_data()
        assert client.cmd(f"{verb} {target}") == (
            f"550 Error processing command '{verb}': Directory does not exist.\n"
        )
        assert recv_all(data) == b""


def test_listing_always_closes_even_with_keep_alive(connect):
    client = connect()
    assert client.cmd("KEEP-ALIVE true") == "200 OK\n"
    data = client.open_data()
    client.cmd("MLSD")
    assert recv_all(data) != b""  # EOF after the listing: closed despite keep-alive
    assert client.read_reply() == b"226 File transfer successful\n"


def test_listing_without_data_connection(connect):
    client = connect()
    assert client.cmd("LIST") == "150 OK\n"
    assert client.read_reply() == b"226 File transfer successful\n"


def stat_entry(path, name=None) -> str:
    st = os.stat(path)
    is_dir = os.path.isdir(path)
    return (f" {'d' if is_dir else '-'}{perm(path, is_dir, False, '-')} {st.st_size} "
            f"{1000 * int(st.st_mtime)} {name or os.path.basename(path)}")


def test_stat(connect, tree):
    client = connect()
    listing = client.cmd("STAT N .").split("\n")
    assert listing[0] == "211- Sending file list"
    assert listing[-2:] == ["211 End of file list", ""]
    assert sorted(listing[1:-2]) == sorted(stat_entry(tree / n) for n in ("a.txt", "sub", "empty.txt"))
    assert client.cmd("STAT F a.txt") == f"211- Sending file list\n{stat_entry(tree / 'a.txt')}\n211 End of file list\n"
    assert client.cmd("STAT N a.txt") == f"211- Sending file list\n{stat_entry(tree / 'a.txt')}\n211 End of file list\n"
    # the first token is always the mode: "STAT a.txt" describes "." (quirk 13)
    assert client.cmd("STAT a.txt") == f"211- Sending file list\n{stat_entry(tree)}\n211 End of file list\n"
    assert client.cmd("STAT") == f"211- Sending file list\n{stat_entry(tree)}\n211 End of file list\n"
    assert client.cmd("STAT N nosuch") == (
        "500 Error processing command 'STAT': Directory/file does not exist or cannot be accessed!\n"
    )
