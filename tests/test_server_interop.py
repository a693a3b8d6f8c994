"""Third-party clients against the server: Python ftplib and curl (spec §15.2)."""

from __future__ import annotations

import ftplib
import hashlib
import io
import os
import shutil
import subprocess

import pytest

try:
    from .test_server_support import new_secret, root, uftpd
except ImportError:
    from test_server_support import new_secret, root, uftpd  # noqa: F401

CURL = shutil.which("curl") or "/usr/bin/curl"
needs_curl = pytest.mark.skipif(not os.path.exists(CURL), reason="curl not installed")


@pytest.fixture
def job(uftpd, root):
    def _job(**kwargs) -> str:
        secret = new_secret()
        uftpd.add_job(secret, "demouser", file=kwargs.pop("file", str(root) + "/"), **kwargs)
        return secret
    return _job


def test_ftplib_session(uftpd, root, job):
    ftp = ftplib.FTP()
    ftp.connect("127.0.0.1", uftpd.port, timeout=10)
    assert ftp.getwelcome() == "220 UFTPD 3.5.3, https://www.unicore.eu"
    assert ftp.login("anonymous", job()) == "230 Login successful"
    assert ftp.pwd() == str(root)
    received = io.BytesIO()
    assert ftp.retrbinary("RETR a.txt", received.write) == "226 File transfer successful"
    assert received.getvalue() == b"hello world\n"
    blob = os.urandom(300000)
    assert ftp.storbinary("STOR up.bin", io.BytesIO(blob)) == "226 File transfer successful"
    assert (root / "up.bin").read_bytes() == blob
    names = {name: facts for name, facts in ftp.mlsd()}
    assert names["up.bin"]["size"] == "300000" and names["sub"]["type"] == "dir"
    lines: list[str] = []
    ftp.retrlines("LIST", lines.append)
    assert sorted(line.split()[-1] for line in lines) == ["a.txt", "empty.txt", "sub", "up.bin"]
    assert ftp.cwd("sub") == "200 OK"
    assert ftp.pwd() == f"{root}/sub"
    assert ftp.mkd("newdir") == f"{root}/sub/newdir"
    with pytest.raises(ftplib.error_perm, match="^500 .*SIZE"):
        ftp.size("b.bin")  # broken in 3.5.x
    with pytest.raises(ftplib.error_perm, match="^502"):
        ftp.nlst()
    ftp.close()  # quit() would get EOF: QUIT has no reply


def test_ftplib_rest_download(uftpd, job):
    ftp = ftplib.FTP()
    ftp.connect("127.0.0.1", uftpd.port, timeout=10)
    ftp.login("anonymous", job())
    received = io.BytesIO()
    ftp.retrbinary("RETR a.txt", received.write, rest=6)
    assert received.getvalue() == b"world\n"
    ftp.close()


def curl(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([CURL, "-sS", "--max-time", "30", *args], capture_output=True, timeout=60, check=False)


@needs_curl
def test_curl_download_upload_list(uftpd, root, job, tmp_path):
    base = f"ftp://anonymous:{{}}@127.0.0.1:{uftpd.port}"
    result = curl(base.format(job()) + "/a.txt")
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"hello world\n"
    source = tmp_path / "upload.bin"
    source.write_bytes(os.urandom(200000))
    result = curl("-T", str(source), base.format(job()) + "/sub/curl.bin")
    assert result.returncode == 0, result.stderr
    assert (root / "sub" / "curl.bin").read_bytes() == source.read_bytes()
    result = curl(base.format(job()) + "/sub/")
    assert result.returncode == 0, result.stderr
    assert sorted(line.split()[-1] for line in result.stdout.decode().splitlines()) == ["b.bin", "curl.bin"]
    result = curl("-r", "2-5", base.format(job()) + "/a.txt")
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"llo "
    result = curl("-Q", "MKD made-by-curl", base.format(job()) + "/a.txt")
    assert result.returncode == 0 and (root / "made-by-curl").is_dir()


@needs_curl
def test_curl_large_download_sendfile(uftpd, root, job, tmp_path):
    blob = os.urandom(64 * 1024 * 1024)
    (root / "big.bin").write_bytes(blob)
    target = tmp_path / "big.out"
    result = curl("-o", str(target), f"ftp://anonymous:{job()}@127.0.0.1:{uftpd.port}/big.bin")
    assert result.returncode == 0, result.stderr
    assert hashlib.sha256(target.read_bytes()).digest() == hashlib.sha256(blob).digest()


@needs_curl
def test_curl_append_fails_like_uftpd(uftpd, job, tmp_path):
    source = tmp_path / "x"
    source.write_bytes(b"more")
    result = curl("-a", "-T", str(source), f"ftp://anonymous:{job()}@127.0.0.1:{uftpd.port}/a.txt")
    assert result.returncode != 0
