"""FEAT, reply framing and the non-transfer commands of §3.5 (exact reply texts)."""

from __future__ import annotations

import os
import stat
import time

import pytest

from uftpcore.server import UFTPD

try:
    from .test_server_support import RawFTP, connect, root, uftpd
except ImportError:
    from test_server_support import RawFTP, connect, root, uftpd  # noqa: F401

FEAT_353 = (
    "211-Features:\n PASV\n EPSV\n RANG STREAM\n REST STREAMMFMT\n MLSD\n MLST\n APPE\n"
    " MFF Modify;UNIX.mode;KEEP-ALIVE\n ARCHIVE\n UTF-8\n HASH MD5*;SHA-1;SHA-256;SHA-512\n211 END\n"
)


def err(code: int, verb: str, message: str) -> str:
    return f"{code} Error processing command '{verb}': {message}\n"


# -- FEAT -------------------------------------------------------------------------------
def test_feat_exact_bytes(connect):
    client = connect()
    client.send("FEAT")
    assert client.read_reply() == FEAT_353.encode()


def test_feat_with_key_and_hash_selection(connect):
    client = connect(key=b"0123456789abcdef0123456789abcdef0123456789abcdef")  # 48 bytes -> AES
    assert client.cmd("OPTS HASH sha-256") == "200 HASH=sha-256\n"
    assert client.cmd("FEAT") == FEAT_353.replace(
        " HASH MD5*;SHA-1;SHA-256;SHA-512\n", " CRYPTED-AES\n HASH MD5;SHA-1;SHA-256*;SHA-512\n"
    )


def test_feat_blowfish_key_and_explicit_algo(connect):
    assert " CRYPTED-BLOWFISH\n" in connect(key=b"k" * 56).cmd("FEAT")
    assert " CRYPTED-BLOWFISH\n" in connect(key=b"k" * 32, algo="blowfish").cmd("FEAT")


def test_feat_of_older_versions(root):
    with UFTPD(version="3.5.2") as srv:
        srv.add_job("old", "demouser", file=str(root) + "/")
        client = RawFTP(srv.port)
        assert client.login("old") == "230 Login successful\n"
        assert client.cmd("FEAT") == FEAT_353.replace(" ARCHIVE\n", " ARCHIVE\n DPC2_LOGIN_OK\n")
        client.close()


# -- framing ----------------------------------------------------------------------------
def test_framing(connect):
    client = connect()
    client.send("")  # ignored silently
    client.send("   ")
    assert client.cmd("syst") == "215 Unix Type: L8\n"  # verbs are case-insensitive
    client.sock.sendall(b"SYST\nSYST\rNOOP\r\n")  # \n, bare \r and \r\n all end a line
    assert [client.read_reply() for _ in range(3)] == [b"215 Unix Type: L8\n", b"215 Unix Type: L8\n", b"200 OK\n"]
    for verb in ("NLST", "PORT 1,2,3,4,5,6", "EPRT |1|1.2.3.4|5|", "ABOR", "USER anonymous", "PASS x", "SITE x"):
        assert client.cmd(verb) == "502 Command not implemented.\n"


# -- session commands -------------------------------------------------------------------
def test_noop(connect):
    client = connect()
    assert client.cmd("NOOP") == "200 OK\n"
    assert client.cmd("NOOP abc") == "200 OK\n"
    assert client.cmd("NOOP 2") == "222 Opening 2 data connections\n"
    assert client.cmd("NOOP 9") == "223 Opening 4 data connections\n"
    assert client.cmd("NOOP 0") == "222 Opening 0 data connections\n"
    assert client.cmd("NOOP -1") == "222 Opening -1 data connections\n"


def test_type_and_keep_alive(connect):
    client = connect()
    for line in ("TYPE I", "TYPE A", "TYPE ARCHIVE", "TYPE NORMAL", "KEEP-ALIVE true", "KEEP-ALIVE no"):
        assert client.cmd(line) == "200 OK\n"
    assert client.cmd("TYPE") == err(500, "TYPE", "'NoneType' object has no attribute 'strip'")
    assert client.cmd("KEEP-ALIVE") == err(500, "KEEP-ALIVE", "'NoneType' object has no attribute 'lower'")


def opts_listing(rate=0, read=1048576, buf=1048576, sendfile=False, hash_="MD5") -> str:
    return (
        f"211-OPTS\n RATE_LIMIT {rate}\n FILE_READ_BUFFER_SIZE {read}\n FILE_WRITE_BUFFER_SIZE 1048576\n"
        f" BUFFER_SIZE {buf}\n SENDFILE_ENABLED {sendfile}\n HASH {hash_}\n211 END\n"
    )


def test_opts(connect):
    client = connect()
    assert client.cmd("OPTS X") == opts_listing()
    assert client.cmd("OPTS HASH") == opts_listing()  # 3.5.x lists instead of "200 <algo>"
    assert client.cmd("OPTS hash SHA-512") == "200 HASH=SHA-512\n"
    assert client.cmd("OPTS BUFFER_SIZE 65536") == "200 BUFFER_SIZE=65536\n"
    assert client.cmd("OPTS FILE_READ_BUFFER_SIZE 4096 extra") == "200 FILE_READ_BUFFER_SIZE=4096\n"
    assert client.cmd("OPTS FILE_WRITE_BUFFER_SIZE 5") == "200 FILE_WRITE_BUFFER_SIZE=5\n"  # no effect
    assert client.cmd("OPTS SENDFILE_ENABLED TRUE") == "200 SENDFILE_ENABLED=TRUE\n"
    assert client.cmd("OPTS RATE_LIMIT 5000") == "200 RATE_LIMIT=5000\n"
    assert client.cmd("OPTS KEEP_ALIVE yes") == "200 KEEP_ALIVE=yes\n"
    assert client.cmd("OPTS ARCHIVE 1") == "200 ARCHIVE=1\n"
    assert client.cmd("OPTS a") == opts_listing(rate=5000, read=4096, buf=65536, sendfile=True, hash_="SHA-512")
    assert client.cmd("OPTS HASH foo") == err(500, "OPTS", "Unsupported hash algorithm 'FOO'")
    assert client.cmd("OPTS BUFFER_SIZE -1") == err(500, "OPTS", "Need positive value")
    assert client.cmd("OPTS BUFFER_SIZE x") == err(500, "OPTS", "invalid literal for int() with base 10: 'x'")
    assert client.cmd("OPTS UTF8 ON") == err(500, "OPTS", "Unknown option 'UTF8'")
    assert client.cmd("OPTS") == err(500, "OPTS", "'NoneType' object has no attribute 'split'")


def test_opts_rate_limit_cannot_raise_job_limit(connect):
    client = connect(rate_limit=1000)
    assert client.cmd("OPTS RATE_LIMIT 5000") == "200 RATE_LIMIT=5000\n"  # echoes the request
    assert " RATE_LIMIT 1000\n" in client.cmd("OPTS X")
    assert client.cmd("OPTS RATE_LIMIT 10") == "200 RATE_LIMIT=10\n"
    assert " RATE_LIMIT 10\n" in client.cmd("OPTS X")


# -- directories ------------------------------------------------------------------------
def test_pwd_cwd_cdup(connect, root):
    client = connect()
    assert client.cmd("PWD") == f'257 "{root}"\n'
    assert client.cmd("CDUP") == err(534, "CDUP", "Can't cd up, already at base directory")
    assert client.cmd("CWD sub") == "200 OK\n"
    assert client.cmd("PWD") == f'257 "{root}/sub"\n'
    assert client.cmd("CDUP") == "200 OK\n"
    assert client.cmd("PWD") == f'257 "{root}"\n'
    assert client.cmd(f"CWD {root}/sub/") == "200 OK\n"
    assert client.cmd("CWD /") == err(534, "CWD", f"Forbidden: / not in {root}")
    assert client.cmd("CWD ../..") == err(534, "CWD", f"Forbidden: {root.parent} not in {root}")
    assert client.cmd("CWD nosuch") == err(
        550, "CWD", f"Can't cwd to directory: [Errno 2] No such file or directory: '{root}/sub/nosuch'"
    )
    assert client.cmd("CWD ../a.txt") == err(
        550, "CWD", f"Can't cwd to directory: [Errno 20] Not a directory: '{root}/a.txt'"
    )
    assert client.cmd("CWD") == err(500, "CWD", "'NoneType' object has no attribute 'strip'")


def test_mkd_rmd_dele(connect, root):
    client = connect()
    assert client.cmd("MKD new") == f'257 "{root}/new" directory created\n'
    assert (root / "new").is_dir()
    assert client.cmd("MKD new") == err(500, "MKD", f"[Errno 17] File exists: '{root}/new'")
    assert client.cmd("MKD x/y") == err(500, "MKD", f"[Errno 2] No such file or directory: '{root}/x/y'")
    assert client.cmd("RMD new") == "200 OK\n"
    assert not (root / "new").exists()
    assert client.cmd("RMD sub") == err(500, "RMD", f"[Errno 39] Directory not empty: '{root}/sub'")
    assert client.cmd("DELE a.txt") == "200 OK\n"
    assert client.cmd("DELE a.txt") == err(500, "DELE", f"[Errno 2] No such file or directory: '{root}/a.txt'")


def test_rename(connect, root):
    client = connect()
    assert client.cmd("RNTO x") == err(500, "RNTO", "'Session' object has no attribute 'rename_from_path'")
    assert client.cmd("RNFR a.txt") == "350 File action OK Please send rename-to\n"
    assert client.cmd("RNTO c.txt") == "200 OK\n"
    assert (root / "c.txt").read_bytes() == b"hello world\n"
    # the RNFR name is remembered (never cleared): a second RNTO fails on the missing source
    assert client.cmd("RNTO d.txt") == err(
        500, "RNTO", f"[Errno 2] No such file or directory: '{root}/a.txt' -> '{root}/d.txt'"
    )
    assert client.cmd("RNFR nosuch") == "350 File action OK Please send rename-to\n"  # no existence check


def test_mfmt(connect, root):
    client = connect()
    assert client.cmd("MFMT 20210102030405 a.txt") == "213 Modify=20210102030405; a.txt\n"
    expected = time.mktime(time.strptime("20210102030405", "%Y%m%d%H%M%S"))
    assert os.stat(root / "a.txt").st_mtime == expected
    assert os.stat(root / "a.txt").st_atime == expected
    (root / "my file.txt").write_text("x")
    assert client.cmd("MFMT 20210102030405 my file.txt") == err(500, "MFMT", "too many values to unpack (expected 2)")
    assert client.cmd("MFMT 2021 a.txt") == err(
        500, "MFMT", "time data '2021' does not match format '%Y%m%d%H%M%S'"
    )


def test_mff(connect, root):
    client = connect()
    assert client.cmd("MFF UNIX.mode=600;Modify=20210101000000; a.txt") == (
        "213 UNIX.mode=600;Modify=20210101000000; a.txt\n"
    )
    st = os.stat(root / "a.txt")
    assert stat.S_IMODE(st.st_mode) == 0o600
    assert st.st_mtime == time.mktime(time.strptime("20210101000000", "%Y%m%d%H%M%S"))
    assert client.cmd("MFF unix.MODE=644; a.txt") == "213 unix.MODE=644; a.txt\n"
    assert stat.S_IMODE(os.stat(root / "a.txt").st_mode) == 0o644
    assert client.cmd("MFF foo=1; a.txt") == err(500, "MFF", "Not supported: 'foo'")


def test_size_bug_and_fixed_size(connect, root, uftpd):
    client = connect()
    assert client.cmd("SIZE a.txt") == err(
        500, "SIZE", "Connector.write_message() got an unexpected keyword argument 'msg'"
    )
    assert client.cmd("SIZE nosuch") == err(550, "SIZE", "Directory/file does not exist or cannot be accessed!")
    uftpd.size_bug = False
    assert client.cmd("SIZE a.txt") == "213 12\n"
    assert client.cmd("SIZE sub/b.bin") == "213 1000\n"


# -- paths and permissions --------------------------------------------------------------
def test_path_escapes_and_prefix_quirk(connect, root):
    sibling = root.parent / (root.name + "2")
    sibling.mkdir()
    (sibling / "x.txt").write_text("prefix quirk")
    client = connect()
    for line, verb in (("RETR ../../etc/passwd", "RETR"), ("MLST /etc", "MLST"), ("STOR /tmp/x", "STOR"),
                       ("DELE //etc/passwd", "DELE"), ("LIST /", "LIST"), ("HASH /etc/hostname", "HASH")):
        reply = client.cmd(line)
        assert reply.startswith(f"534 Error processing command '{verb}': Forbidden: /"), reply
        assert reply.endswith(f" not in {root}\n")
    # string-prefix check: base /x/data admits /x/data2 (quirk 17)
    assert client.cmd(f"MLST ../{sibling.name}/x.txt").startswith(f"250- Listing {sibling}/x.txt\n")


@pytest.mark.parametrize(
    "access, allowed, denied",
    [
        ("NONE", ["RANG 0 1", "NOOP", "TYPE I", "SYST", "FEAT"], ["PWD", "MLST a.txt", "CWD sub", "STAT", "SIZE a.txt"]),
        ("INFO", ["PWD", "MLST a.txt", "STAT N .", "CWD sub"], ["RETR a.txt", "HASH a.txt", "MKD z", "ALLO 1"]),
        ("READ", ["HASH a.txt"], ["MKD z", "STOR z", "APPE z", "RNFR a.txt", "MFMT 20200101000000 a.txt",
                                  "MFF Modify=20200101000000; a.txt", "ALLO 5"]),
        ("WRITE", ["MKD z", "RNFR a.txt"], ["DELE a.txt", "RMD sub"]),
        ("FULL", ["DELE empty.txt"], []),
    ],
)
def test_access_levels(connect, access, allowed, denied):
    client = connect(access=access)
    for line in allowed:
        assert not client.cmd(line).startswith("534"), line
    for line in denied:
        verb = line.split(" ")[0]
        assert client.cmd(line) == err(534, verb, "Access denied"), line


def test_excludes_only_on_listed_commands(connect, root, uftpd):
    client = connect(excludes="*.txt")
    # UFTP_NOWRITE's $HOME/.ssh/authorized_keys comes first
    pattern = [uftpd.home_for("demouser") + "/.ssh/authorized_keys", f"{root}/*.txt"]
    for line in ("RETR a.txt", "DELE a.txt", "RNFR a.txt", "STOR new.txt", "APPE a.txt",
                 "MFMT 20200101000000 a.txt", "MFF Modify=20200101000000; a.txt"):
        verb = line.split(" ")[0]
        path = root / line.split(" ")[-1]
        assert client.cmd(line) == err(534, verb, f"Forbidden: {path} excluded via {pattern}"), line
    # not applied by MLST, STAT, SIZE, HASH, MKD
    assert client.cmd("MLST a.txt").startswith("250- ")
    assert client.cmd("STAT F a.txt").startswith("211- ")
    assert client.cmd("HASH a.txt").startswith("213 MD5 0-11 ")
    assert client.cmd("MKD d.txt") == f'257 "{root}/d.txt" directory created\n'


def test_includes(connect, root):
    client = connect(includes=["sub/*"])
    assert client.cmd("RETR a.txt") == err(
        534, "RETR", f"Forbidden: {root}/a.txt not included in  ['{root}/sub/*']"
    )
    assert client.cmd("CWD sub") == err(534, "CWD", f"Forbidden: {root}/sub not included in  ['{root}/sub/*']")
    assert client.cmd("DELE sub/b.bin") == "200 OK\n"


def test_nowrite_excludes_authorized_keys(connect, root, uftpd):
    (root / ".ssh").mkdir()
    (root / ".ssh" / "authorized_keys").write_text("key")
    uftpd.home_dirs["demouser"] = str(root)
    client = connect()
    reply = client.cmd("RETR .ssh/authorized_keys")
    assert reply.startswith(f"534 Error processing command 'RETR': Forbidden: {root}/.ssh/authorized_keys excluded via")


def test_empty_file_quirk(connect, root, uftpd):
    uftpd.home_dirs["demouser"] = str(root)
    client = connect(file="")
    assert client.cmd("PWD") == '257 "/"\n'  # but relative paths resolve against $HOME
    assert client.cmd("MLST a.txt").startswith(f"250- Listing {root}/a.txt\n")
    assert client.cmd("CDUP") == "200 OK\n"  # chdir("..") of the process directory "/"
    assert client.cmd("PWD") == '257 "/"\n'
    assert client.cmd(f"CWD {root}/sub") == "200 OK\n"
    assert client.cmd("PWD") == f'257 "{root}/sub"\n'


def test_relative_file_and_missing_trailing_slash(connect, root, uftpd):
    uftpd.home_dirs["demouser"] = str(root.parent)
    assert connect(file=root.name + "/").cmd("PWD") == f'257 "{root}"\n'
    # file= without a trailing slash roots the session at the parent (quirk 18)
    assert connect(file=str(root / "sub")).cmd("PWD") == f'257 "{root}"\n'
    assert connect(file="bare-name").cmd("PWD") == '257 "/"\n'
