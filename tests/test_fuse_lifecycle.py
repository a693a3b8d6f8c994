"""Mount lifecycle: unmounting with open files, signals, a dying or frozen server, the Python
API of PyUNICORE's README and the ``uftpmount://`` PyFilesystem opener."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from .conftest import make_file
from .fuse_support import (  # noqa: F401 - fixture
    ROOT,
    live_sessions,
    mount_factory,
    mounted,
    new_secret,
    require_fuse,
    unmount,
)

MiB = 1 << 20


def _wait(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def _close_quietly(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass


def test_sigterm_with_open_files(uftpd, workdir, mount_factory):  # noqa: F811
    """SIGTERM: the driver unmounts although files are open, delivers what was written, logs
    out every session and exits 0."""
    make_file(workdir / "r.bin", 8 * MiB, seed=1)
    m = mount_factory(workdir)
    rfd = os.open(m / "r.bin", os.O_RDONLY)
    wfd = os.open(m / "w.bin", os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        assert len(os.read(rfd, MiB)) == MiB
        os.write(wfd, b"delivered on unmount" * 1000)  # a streamed upload is open now
        m.proc.send_signal(signal.SIGTERM)
        assert m.proc.wait(20) == 0, m.log()
        assert not mounted(m.path)
    finally:
        _close_quietly(rfd)
        _close_quietly(wfd)
    assert (workdir / "w.bin").read_bytes() == b"delivered on unmount" * 1000
    assert _wait(lambda: live_sessions(uftpd, m.secret) == 0, 10), "sessions left open on the server"


def test_lazy_unmount_with_open_files(uftpd, workdir, mount_factory):  # noqa: F811
    m = mount_factory(workdir)
    fd = os.open(m / "late.txt", os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        os.write(fd, b"before ")
        tool = "fusermount3" if subprocess.run(["which", "fusermount3"], capture_output=True, check=False).returncode == 0 \
            else "fusermount"
        busy = subprocess.run([tool, "-u", str(m.path)], capture_output=True, text=True, timeout=30, check=False)
        assert busy.returncode != 0 and mounted(m.path)  # busy: refused, nothing lost
        subprocess.run([tool, "-u", "-z", str(m.path)], check=True, timeout=30)
        assert not mounted(m.path)
        os.write(fd, b"and after the lazy unmount")  # the open file still works
    finally:
        os.close(fd)
    assert (workdir / "late.txt").read_bytes() == b"before and after the lazy unmount"
    assert m.proc.wait(20) == 0, m.log()
    assert _wait(lambda: live_sessions(uftpd, m.secret) == 0, 10)


@pytest.fixture
def private_uftpd():
    """A server of its own, which the test may stop."""
    from uftpcore.server import UFTPD

    srv = UFTPD(host="127.0.0.1", port=0, cmd_host="127.0.0.1", cmd_port=0, max_connections=100)
    srv.start()
    yield srv
    srv.stop()


def test_server_dies_under_the_mount(private_uftpd, workdir, mount_factory):  # noqa: F811
    make_file(workdir / "data.bin", 64 * MiB, seed=2)
    timeout = 3.0
    m = mount_factory(workdir, options=f"timeout={timeout}", server=private_uftpd)
    fd = os.open(m / "data.bin", os.O_RDONLY)
    wfd = os.open(m / "out.bin", os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        assert len(os.pread(fd, MiB, 0)) == MiB
        os.write(wfd, b"x" * 100_000)
        private_uftpd.stop()
        for action in (lambda: os.pread(fd, 65536, 40 * MiB),  # far beyond any read-ahead
                       lambda: os.stat(m / "never-seen-before"),
                       lambda: os.listdir(m / "."),
                       lambda: os.close(wfd)):  # the upload cannot complete: EIO on close
            t0 = time.monotonic()
            with pytest.raises(OSError) as info:
                action()
            assert info.value.errno == errno.EIO, info.value
            assert time.monotonic() - t0 < timeout + 1.5
    finally:
        _close_quietly(fd)
        _close_quietly(wfd)
    assert "EIO" in m.log() or "failed" in m.log()  # every EIO leaves a log line
    assert m.stop() == 0, m.log()


def _all_threads_stopped(pid: int) -> bool:
    tasks = os.listdir(f"/proc/{pid}/task")
    states = []
    for t in tasks:
        try:
            with open(f"/proc/{pid}/task/{t}/stat") as f:
                states.append(f.read().rsplit(")", 1)[1].split()[0])
        except FileNotFoundError:
            continue
    return bool(states) and all(s in ("T", "t") for s in states)


def _start_server_process(root) -> tuple[subprocess.Popen, int, int]:
    proc = subprocess.Popen([sys.executable, "-m", "uftpcore.server", "--port", "0", "--cmd-port", "0",
                             "--root", str(root)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            cwd=str(ROOT), env=dict(os.environ, PYTHONPATH=str(ROOT)))
    line = proc.stdout.readline().decode()
    # "UFTPD listening on 127.0.0.1:P, command port 127.0.0.1:C"
    port = int(line.split(",")[0].rsplit(":", 1)[1])
    cmd_port = int(line.rsplit(":", 1)[1])
    return proc, port, cmd_port


def test_frozen_server_gives_eio_within_the_timeout(workdir, tmp_path):
    """A server that stops answering (SIGSTOP) must not hang the mount: EIO after the timeout."""
    from uftpcore.server.commandport import send_request
    from uftpcore.server.jobs import request_from_arguments

    from .fuse_support import start_mount

    require_fuse(tmp_path)
    make_file(workdir / "data.bin", 64 * MiB, seed=3)
    server, port, cmd_port = _start_server_process(workdir)
    mnt = None
    try:
        secret = new_secret()
        reply = send_request("127.0.0.1", cmd_port, request_from_arguments(
            secret, "tester", file=str(workdir) + "/", persistent=True).items())
        assert reply.startswith("OK"), reply
        timeout = 2.0
        mnt = start_mount(port, secret, tmp_path / "frozen", options=f"timeout={timeout}")
        fd = os.open(mnt / "data.bin", os.O_RDONLY)
        try:
            assert len(os.pread(fd, 65536, 0)) == 65536
            server.send_signal(signal.SIGSTOP)
            # the stop takes effect asynchronously: wait until every thread is stopped
            assert _wait(lambda: _all_threads_stopped(server.pid), 10)
            for name, action in (("pread", lambda: os.pread(fd, 65536, 50 * MiB)),
                                 ("stat", lambda: os.stat(mnt / "unknown"))):
                t0 = time.monotonic()
                try:
                    result = action()
                except OSError as exc:
                    assert exc.errno == errno.EIO, (name, exc)
                else:
                    pytest.fail(f"{name} on a frozen server returned {str(result)[:80]}; log: {mnt.log()}")
                elapsed = time.monotonic() - t0
                assert elapsed < timeout + 1.5, f"{name} took {elapsed:.1f} s"
        finally:
            _close_quietly(fd)
    finally:
        server.send_signal(signal.SIGCONT)
        if mnt is not None:
            mnt.stop()
        server.terminate()
        server.wait(10)


def test_python_api_as_in_the_readme(uftpd, workdir, tmp_path):
    """``FUSE(UFTPDriver(host, port, password), mountpoint, foreground=True, nothreads=True)``."""
    require_fuse(tmp_path)
    (workdir / "hello.txt").write_text("hello from uftp")
    secret = new_secret()
    uftpd.add_job(secret=secret, user="tester", file=str(workdir) + "/", persistent=True)
    mnt = tmp_path / "api"
    mnt.mkdir()
    code = textwrap.dedent(f"""
        import pyunicore_fast.uftpfuse as uc_fuse
        uc_fuse.FUSE(uc_fuse.UFTPDriver("127.0.0.1", {uftpd.port}, {secret!r}), {str(mnt)!r},
                     foreground=True, nothreads=True)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=str(ROOT), env=dict(os.environ, PYTHONPATH=str(ROOT)),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        assert _wait(lambda: mounted(mnt) or proc.poll() is not None, 20)
        assert mounted(mnt), proc.stdout.read().decode(errors="replace")
        assert (mnt / "hello.txt").read_text() == "hello from uftp"
    finally:
        unmount(mnt)
        assert proc.wait(20) == 0
    assert _wait(lambda: live_sessions(uftpd, secret) == 0, 10)


def test_command_line_errors(tmp_path, uftpd):
    env = {k: v for k, v in os.environ.items() if k != "UFTP_PASSWORD"}
    env["PYTHONPATH"] = str(ROOT)
    run = [sys.executable, "-m", "pyunicore_fast.uftp.uftpfuse"]
    res = subprocess.run(run + [f"127.0.0.1:{uftpd.port}", str(tmp_path)], env=env, capture_output=True,
                         text=True, timeout=30, check=False)
    assert res.returncode == 2 and "UFTP_PASSWORD" in res.stderr
    env["UFTP_PASSWORD"] = "wrongsecretwrongsecret"
    res = subprocess.run(run + ["-f", f"127.0.0.1:{uftpd.port}", str(tmp_path)], env=env, capture_output=True,
                         text=True, timeout=30, check=False)
    assert res.returncode == 1 and "530" in res.stderr
    assert not mounted(tmp_path)


def test_uftpmount_opener(uftpd, workdir, tmp_path):
    pytest.importorskip("fs", reason="PyFilesystem2 ('fs' extra) is not installed")
    require_fuse(tmp_path)
    from pyunicore_fast.uftp.uftpmountfs import UFTPMountOpener
    from uftpcore.server import AuthServer

    (workdir / "in.txt").write_text("mounted via uftpmount://")
    mnt = tmp_path / "fsmount"
    with AuthServer(uftpd, users={"demouser": "test123"}) as auth:
        host_port = auth.url.split("://", 1)[1].split("/", 1)[0]
        import fs.opener

        fs.opener.registry.install(UFTPMountOpener)
        url = f"uftpmount+http://demouser:test123@{host_port}/rest/auth/TEST:{workdir}=={mnt}"
        with fs.open_fs(url) as mfs:
            assert mounted(mnt)
            assert mfs.readtext("in.txt") == "mounted via uftpmount://"
            mfs.writetext("out.txt", "written through the mount")
            assert sorted(mfs.listdir("/")) == ["in.txt", "out.txt"]
        assert not _wait(lambda: mounted(mnt), 0)
    assert (workdir / "out.txt").read_text() == "written through the mount"
