"""UFTP file commands (``cp``, ``ls``, ``mkdir``, ``rm``, ``checksum``, ``cat``) in the style of
the Java ``uftp`` client, against ``pyunicore-fast serve``."""

from __future__ import annotations

import hashlib
import json
import os

import pytest

from .cli_support import (
    assert_fails,
    check_cp_summary,
    check_types,
    json_out,
    ok,
    run_cli,
    user_env,
)


def read_file(path: str, binary: bool = False) -> str | bytes:
    with open(path, "rb" if binary else "r") as f:
        return f.read()

pytest_plugins = ["tests.cli_fixtures"]  # fixtures: cli_home, cli_site

@pytest.fixture(scope="module")
def env(cli_home):
    return user_env(cli_home)


def cli(base_env, *args, env=None, **kw):
    return run_cli(*args, home=base_env["HOME"], env=env or base_env, **kw)


def sha256(path) -> str:
    return hashlib.sha256(read_file(path, binary=True)).hexdigest()


@pytest.fixture
def data(tmp_path):
    path = tmp_path / "data.bin"
    path.write_bytes(os.urandom(300_000) + b"tail")
    return path


def test_ls_mkdir_rm(env, cli_site):
    ok(cli(env, "mkdir", cli_site.uftp("lsdir")))
    assert_fails(cli(env, "mkdir", cli_site.uftp("lsdir")), 1)  # exists
    ok(cli(env, "mkdir", "-p", cli_site.uftp("lsdir/a/b")))
    ok(cli(env, "mkdir", "-p", cli_site.uftp("lsdir/a/b")))  # -p: no error if it exists
    with open(os.path.join(cli_site.home_dir, "lsdir", "f1.txt"), "w") as f:
        f.write("12345")
    assert ok(cli(env, "ls", cli_site.uftp("lsdir"))).stdout.split() == ["a/", "f1.txt"]
    long = ok(cli(env, "ls", "-l", cli_site.uftp("lsdir"))).stdout.splitlines()
    assert long[0].startswith("d") and long[1].startswith("-rw") and " 5 " in long[1]
    assert ok(cli(env, "ls", cli_site.uftp("lsdir/*.txt"))).stdout.split() == ["f1.txt"]
    doc = json_out(cli(env, "ls", "--json", cli_site.uftp("lsdir")))
    check_types(doc, {"schema": int, "command": str, "listings": list})
    listing = doc["listings"][0]
    check_types(listing, {"url": str, "is_dir": bool, "entries": list})
    entry = {e["name"]: e for e in listing["entries"]}["f1.txt"]
    check_types(entry, {"name": str, "path": str, "size": int, "mtime": (float, int), "is_dir": bool,
                        "mode": str, "perm": str})
    assert entry["size"] == 5 and entry["path"] == "lsdir/f1.txt"
    assert_fails(cli(env, "rm", cli_site.uftp("lsdir")), 2, "is a directory (use -r)")
    assert_fails(cli(env, "rm", cli_site.uftp("lsdir/nope")), 1, "no such file")
    ok(cli(env, "rm", "-f", cli_site.uftp("lsdir/nope")))
    doc = json_out(cli(env, "rm", "-r", "--json", cli_site.uftp("lsdir")))
    assert len(doc["removed"]) == 4 and not os.path.exists(os.path.join(cli_site.home_dir, "lsdir"))
    assert_fails(cli(env, "ls", cli_site.uftp("lsdir")), 1, "no such file or directory")


def test_checksum_remote_and_local(env, cli_site, data):
    ok(cli(env, "cp", str(data), cli_site.uftp("sum.bin")))
    remote = ok(cli(env, "checksum", cli_site.uftp("sum.bin"))).stdout.split()
    local = ok(cli(env, "checksum", str(data))).stdout.split()
    assert remote[0] == local[0] == sha256(data)
    doc = json_out(cli(env, "checksum", "-a", "MD5", "--json", cli_site.uftp("sum.bin")))
    check_types(doc, {"schema": int, "command": str, "algorithm": str, "files": list})
    check_types(doc["files"][0], {"url": str, "size": int, "algorithm": str, "checksum": str})
    assert doc["files"][0]["checksum"] == hashlib.md5(data.read_bytes()).hexdigest()
    ok(cli(env, "mkdir", cli_site.uftp("sumdir")))
    ok(cli(env, "cp", str(data), cli_site.uftp("sumdir/")))
    assert_fails(cli(env, "checksum", cli_site.uftp("sumdir")), 2, "use -r")
    assert sha256(data) in ok(cli(env, "checksum", "-r", cli_site.uftp("sumdir"))).stdout
    assert_fails(cli(env, "checksum", "-a", "CRC32", cli_site.uftp("sum.bin")), 2, "invalid choice")


def test_cp_upload_download_json_summary(env, cli_site, data, tmp_path):
    doc = json_out(cli(env, "cp", "--json", "-t", "2", "-T", "64K", str(data), cli_site.uftp("cp1.bin")))
    check_cp_summary(doc)
    assert doc["direction"] == "upload" and doc["files"] == 1 and doc["bytes"] == data.stat().st_size
    assert doc["verified"] is True and doc["checksum"] == "SHA-256" and doc["ok"] is True
    assert doc["sessions"] == 2 and doc["sessions_used"] == 2 and doc["rate"] > 0
    assert sha256(os.path.join(cli_site.home_dir, "cp1.bin")) == sha256(data)
    out = tmp_path / "back.bin"
    doc = json_out(cli(env, "cp", "--json", "-t", "3", "-T", "100K", cli_site.uftp("cp1.bin"), str(out)))
    check_cp_summary(doc)
    assert doc["direction"] == "download" and doc["verified"] is True and sha256(out) == sha256(data)
    # into an existing directory, under the remote name; quiet without a terminal, no summary line
    res = ok(cli(env, "cp", cli_site.uftp("cp1.bin"), str(tmp_path)))
    assert res.stdout == "" and res.stderr == ""
    assert sha256(tmp_path / "cp1.bin") == sha256(data)


def test_cp_streams_encryption_compression(env, cli_site, data, tmp_path):
    for i, flags in enumerate((["-n", "2"], ["-E"], ["-C"], ["-E", "-C"], ["-n", "4", "-E"])):
        ok(cli(env, "cp", *flags, str(data), cli_site.uftp(f"opt{i}.bin")))
        assert sha256(os.path.join(cli_site.home_dir, f"opt{i}.bin")) == sha256(data), flags
        out = tmp_path / f"opt{i}.bin"
        doc = json_out(cli(env, "cp", "--json", *flags, cli_site.uftp(f"opt{i}.bin"), str(out)))
        assert sha256(out) == sha256(data), flags
        assert doc["encryption"] == ("AES" if "-E" in flags else None)
        assert doc["compression"] is ("-C" in flags)
    blowfish = dict(env, UFTP_ENCRYPTION_ALGORITHM="BLOWFISH")
    doc = json_out(cli(env, "cp", "--json", "-E", str(data), cli_site.uftp("bf.bin"), env=blowfish))
    assert doc["encryption"] == "BLOWFISH" and doc["verified"]
    assert_fails(cli(env, "cp", "-E", str(data), cli_site.uftp("x.bin"), env=dict(env, UFTP_ENCRYPTION_ALGORITHM="ROT13")),
                 2, "UFTP_ENCRYPTION_ALGORITHM")


def test_cp_recursive_and_dry_run(env, cli_site, tmp_path):
    tree = tmp_path / "tree"
    (tree / "a" / "b").mkdir(parents=True)
    for rel, text in (("x.txt", "x"), ("a/y.txt", "yy"), ("a/b/z.txt", "zzz")):
        (tree / rel).write_text(text)
    assert_fails(cli(env, "cp", str(tree), cli_site.uftp()), 2, "use -r")
    doc = json_out(cli(env, "cp", "-r", "--dry-run", "--json", str(tree), cli_site.uftp()))
    check_cp_summary(doc)
    assert doc["dry_run"] and doc["files"] == 3 and doc["bytes"] == 6 and doc["items"][0]["status"] == "planned"
    assert not os.path.exists(os.path.join(cli_site.home_dir, "tree"))
    text = ok(cli(env, "cp", "-r", "--dry-run", str(tree), cli_site.uftp())).stdout
    assert text.startswith("would copy") and "3 files" in text
    doc = json_out(cli(env, "cp", "-r", "-t", "2", "--json", str(tree), cli_site.uftp()))
    assert doc["files"] == 3 and doc["verified"]
    assert read_file(os.path.join(cli_site.home_dir, "tree", "a", "b", "z.txt")) == "zzz"
    back = tmp_path / "back"
    doc = json_out(cli(env, "cp", "-r", "--json", cli_site.uftp("tree"), str(back)))
    check_cp_summary(doc)
    assert doc["files"] == 3 and (back / "a" / "b" / "z.txt").read_text() == "zzz"
    assert_fails(cli(env, "cp", cli_site.uftp("tree"), str(tmp_path)), 2, "is a directory (use -r)")


def test_cp_byte_ranges(env, cli_site, data, tmp_path):
    ok(cli(env, "cp", str(data), cli_site.uftp("rng.bin")))
    raw = data.read_bytes()
    out = tmp_path / "part"
    doc = json_out(cli(env, "cp", "--json", "-B", "1K-2K", cli_site.uftp("rng.bin"), str(out)))
    assert out.read_bytes() == raw[1024:2049] and doc["range"] == {"offset": 1024, "length": 1025}
    assert doc["verified"] and doc["items"][0]["kind"] == "range"
    ok(cli(env, "cp", "-B", "299000-", cli_site.uftp("rng.bin"), str(out)))
    assert out.read_bytes() == raw[299000:]
    # -p: the range lands at its own offset of an existing local file
    patched = tmp_path / "patched"
    patched.write_bytes(b"\0" * len(raw))
    ok(cli(env, "cp", "-B", "100-199-p", cli_site.uftp("rng.bin"), str(patched)))
    assert patched.read_bytes()[100:200] == raw[100:200] and patched.read_bytes()[:100] == b"\0" * 100
    # ranged upload writes at the offset, without truncating the remote file
    local = tmp_path / "upd"
    local.write_bytes(b"A" * 1000)
    ok(cli(env, "cp", "-B", "10-19", str(local), cli_site.uftp("rng.bin")))
    remote = read_file(os.path.join(cli_site.home_dir, "rng.bin"), binary=True)
    assert remote[10:20] == b"A" * 10 and remote[20:] == raw[20:] and len(remote) == len(raw)


def test_cp_resume(env, cli_site, data, tmp_path):
    raw = data.read_bytes()
    with open(os.path.join(cli_site.home_dir, "res.bin"), "wb") as f:
        f.write(raw[:100_000])  # an interrupted upload
    doc = json_out(cli(env, "cp", "-R", "--json", str(data), cli_site.uftp("res.bin")))
    assert doc["resume"] and doc["resumed_bytes"] == 100_000 and doc["bytes"] == len(raw) - 100_000
    assert sha256(os.path.join(cli_site.home_dir, "res.bin")) == sha256(data) and doc["verified"]
    out = tmp_path / "res.bin"
    out.write_bytes(raw)
    doc = json_out(cli(env, "cp", "-R", "--json", cli_site.uftp("res.bin"), str(out)))  # already complete
    assert doc["bytes"] == 0 and doc["resumed_bytes"] == len(raw)


def test_cp_stdin_stdout_and_cat(env, cli_site):
    payload = os.urandom(70_000)
    ok(cli(env, "cp", "-", cli_site.uftp("stdin.bin"), input=payload))
    assert read_file(os.path.join(cli_site.home_dir, "stdin.bin"), binary=True) == payload
    res = ok(cli(env, "cp", cli_site.uftp("stdin.bin"), "-", input=b""))
    assert res.stdout == payload
    res = ok(cli(env, "cp", "--json", "-B", "0-9", cli_site.uftp("stdin.bin"), "-", input=b""))
    assert res.stdout == payload[:10]  # data on stdout, the summary on stderr
    assert json.loads(res.stderr)["bytes"] == 10
    assert ok(cli(env, "cat", cli_site.uftp("stdin.bin"), input=b"")).stdout == payload


def test_cp_no_verify_progress_and_bwlimit(env, cli_site, data, tmp_path):
    doc = json_out(cli(env, "cp", "--json", "--no-verify", str(data), cli_site.uftp("nv.bin")))
    assert doc["verified"] is False and doc["checksum"] is None and doc["ok"]
    res = ok(cli(env, "cp", "-D", "-K", "10M", cli_site.uftp("nv.bin"), str(tmp_path / "nv.bin")))
    assert "100%" in res.stderr and "verified SHA-256" in res.stderr  # forced bar and summary line
    assert ok(cli(env, "cp", "-q", "-D", cli_site.uftp("nv.bin"), str(tmp_path / "q.bin"))).stderr == ""


def test_cp_through_storage_endpoint(env, cli_site, data, tmp_path):
    storage = cli_site.core_url + "/storages/HOME"
    doc = json_out(cli(env, "cp", "--json", "-t", "2", "-T", "64K", str(data), f"{storage}:/st/"))
    assert doc["verified"] and sha256(os.path.join(cli_site.home_dir, "st", "data.bin")) == sha256(data)
    out = tmp_path / "st.bin"
    ok(cli(env, "cp", "-E", f"{storage}:st/data.bin", str(out)))
    assert sha256(out) == sha256(data)
    assert ok(cli(env, "ls", f"{storage}:/st")).stdout.split() == ["data.bin"]


def test_cp_errors(env, cli_site, data, tmp_path):
    assert_fails(cli(env, "cp", cli_site.uftp("a"), cli_site.uftp("b")), 2, "remote-to-remote")
    assert_fails(cli(env, "cp", cli_site.uftp("no-such-file"), str(tmp_path)), 1, "no such file or directory")
    assert_fails(cli(env, "cp", str(tmp_path / "missing"), cli_site.uftp()), 1, "No such file or directory")
    assert_fails(cli(env, "cp", str(data), str(data), cli_site.uftp("single-file-name")), 2, "must be a directory")
    assert_fails(cli(env, "cp", str(data), cli_site.core_url + "/storages/HOME/files/x", cli_site.uftp()), 2)
    assert_fails(cli(env, "cp", "-", cli_site.uftp(), input=b"x"), 2, "single named remote file")
