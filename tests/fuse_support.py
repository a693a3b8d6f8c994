"""Real FUSE mounts for the tests: the ``unicore-fusedriver`` command in the foreground, in a
child process, against the in-process UFTPD; always unmounted in teardown.

Tests are skipped only when FUSE itself is unusable here (no /dev/fuse, no fusermount, no
libfuse, or a trivial mount fails) — loudly, with the reason.  A mount of *our* driver that
fails is a test failure, never a skip.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MOUNT_TIMEOUT = 20.0

_probe_result: str | None = None  # None: not probed yet; "" = usable; else the reason


def fusermount() -> str | None:
    return shutil.which("fusermount3") or shutil.which("fusermount")


def mounted(mountpoint: str | os.PathLike) -> bool:
    """Is a FUSE file system mounted there?  (reads /proc/self/mountinfo; never touches the mount)"""
    target = os.path.realpath(mountpoint)
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            if len(fields) > 4 and fields[4].replace("\\040", " ") == target and " - fuse" in line:
                return True
    return False


def unmount(mountpoint: str | os.PathLike) -> None:
    tool = fusermount()
    if tool is None or not mounted(mountpoint):
        return
    res = subprocess.run([tool, "-u", str(mountpoint)], capture_output=True, timeout=30, check=False)
    if res.returncode != 0 and mounted(mountpoint):
        subprocess.run([tool, "-u", "-z", str(mountpoint)], capture_output=True, timeout=30, check=False)


_PROBE = textwrap.dedent("""
    import errno, sys
    import mfusepy
    class Empty(mfusepy.Operations):
        use_ns = True
        def getattr(self, path, fh=None):
            if path == "/":
                return {"st_mode": 0o40755, "st_nlink": 2}
            raise mfusepy.FuseOSError(errno.ENOENT)
        def readdir(self, path, fh):
            return [".", ".."]
    mfusepy.FUSE(Empty(), sys.argv[1], foreground=True, nothreads=True)
""")


def fuse_unusable_reason(tmp: Path) -> str:
    """Why FUSE cannot be used on this machine ("" if it can): probed once per run."""
    global _probe_result
    if _probe_result is not None:
        return _probe_result
    reason = ""
    if not os.path.exists("/dev/fuse"):
        reason = "/dev/fuse does not exist (no FUSE kernel module / device in this container)"
    elif fusermount() is None:
        reason = "neither fusermount3 nor fusermount is installed"
    else:
        try:
            import mfusepy  # noqa: F401
        except Exception as exc:  # noqa: BLE001 - ImportError or OSError (no libfuse)
            try:
                import fuse  # noqa: F401
            except Exception:  # noqa: BLE001
                reason = f"no FUSE binding usable: mfusepy: {exc}"
    if not reason:
        mnt = tmp / "fuse-probe"
        mnt.mkdir(exist_ok=True)
        proc = subprocess.Popen([sys.executable, "-c", _PROBE, str(mnt)], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + MOUNT_TIMEOUT
            while time.monotonic() < deadline and not mounted(mnt) and proc.poll() is None:
                time.sleep(0.05)
            if not mounted(mnt):
                out = proc.stdout.read().decode(errors="replace") if proc.poll() is not None else ""
                reason = f"mounting a trivial FUSE file system failed: {out.strip() or 'timeout'}"
        finally:
            unmount(mnt)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    _probe_result = reason
    return reason


def require_fuse(tmp: Path) -> None:
    reason = fuse_unusable_reason(tmp)
    if reason:
        msg = f"FUSE TESTS SKIPPED: {reason}"
        warnings.warn(msg, stacklevel=2)
        sys.stderr.write(f"\n*** {msg} ***\n")
        pytest.skip(msg)


class Mount:
    """One running ``unicore-fusedriver -f`` child and its mount point."""

    def __init__(self, path: Path, proc: subprocess.Popen, log_path: Path, secret: str):
        self.path = path
        self.proc = proc
        self.log_path = log_path
        self.secret = secret

    def __truediv__(self, other: str) -> Path:
        return self.path / other

    def __fspath__(self) -> str:
        return str(self.path)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self, timeout: float = 20.0) -> int | None:
        """Unmount (lazily if busy) and wait for the driver to exit; returns its exit code."""
        unmount(self.path)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            unmount(self.path)
            return None


def start_mount(port: int, secret: str, mountpoint: Path, *, options: str = "", impl: str | None = None,
                read_only: bool = False, log_path: Path | None = None) -> Mount:
    """Mount with ``python -m pyunicore_fast.uftp.uftpfuse -f`` and wait until the mount is there."""
    mountpoint.mkdir(parents=True, exist_ok=True)
    log_path = log_path or mountpoint.parent / f"{mountpoint.name}.log"
    env = dict(os.environ, UFTP_PASSWORD=secret, PYTHONPATH=str(ROOT))
    if impl == "python":
        env["UFTPCORE_NO_EXTENSIONS"] = "1"
    cmd = [sys.executable, "-m", "pyunicore_fast.uftp.uftpfuse", "-f"]
    if read_only:
        cmd.append("-r")
    if options:
        cmd += ["-o", options]
    cmd += [f"127.0.0.1:{port}", str(mountpoint)]
    with open(log_path, "wb") as logf:
        proc = subprocess.Popen(cmd, env=env, stdout=logf, stderr=subprocess.STDOUT, cwd=str(ROOT))
    mount = Mount(mountpoint, proc, log_path, secret)
    deadline = time.monotonic() + MOUNT_TIMEOUT
    while time.monotonic() < deadline:
        if mounted(mountpoint):
            return mount
        if proc.poll() is not None:
            raise AssertionError(f"the FUSE driver exited with {proc.returncode}: {mount.log()}")
        time.sleep(0.02)
    mount.stop()
    raise AssertionError(f"no mount at {mountpoint} after {MOUNT_TIMEOUT} s: {mount.log()}")


def new_secret() -> str:
    return "".join(secrets.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(20))


@pytest.fixture
def mount_factory(uftpd, tmp_path) -> Iterator:
    """``mount_factory(directory, options="", impl=None, read_only=False) -> Mount``; every mount
    is unmounted at teardown, whatever happened."""
    require_fuse(tmp_path)
    mounts: list[Mount] = []

    def factory(directory: Path, options: str = "", impl: str | None = None, read_only: bool = False,
                server=None, secret: str | None = None) -> Mount:
        srv = server or uftpd
        secret = secret or new_secret()
        srv.add_job(secret=secret, user="tester", file=str(directory) + "/", client_ip="127.0.0.1",
                    persistent=True)
        mnt = start_mount(srv.port, secret, tmp_path / f"mnt{len(mounts)}", options=options, impl=impl,
                          read_only=read_only)
        mounts.append(mnt)
        return mnt

    yield factory
    for m in mounts:
        m.stop()
        if m.proc.poll() is None:
            m.proc.send_signal(signal.SIGKILL)


class CommandCounter:
    """Counts the FTP verbs an in-process UFTPD executes (patches ``FTPSession._execute``)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch):
        from uftpcore.server.ftpsession import FTPSession

        self.counts: Counter[str] = Counter()
        original = FTPSession._execute
        counts = self.counts

        def counting(session, verb, handler, params):
            counts[verb] += 1
            return original(session, verb, handler, params)

        monkeypatch.setattr(FTPSession, "_execute", counting)

    def reset(self) -> None:
        self.counts.clear()


def live_sessions(uftpd, secret: str) -> int:
    """Sessions of the job with ``secret`` that have not ended (0 if the job is gone)."""
    job = uftpd.registry.lookup(secret)
    if job is None:
        return 0
    return sum(1 for t in job.sessions if not t.finished)


def drop_page_cache(path: str | os.PathLike) -> None:
    """Evict a file's pages from the kernel page cache so reads reach the FUSE driver."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)
