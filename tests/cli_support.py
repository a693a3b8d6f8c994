"""Helpers of the ``pyunicore-fast`` CLI tests: run the command in a subprocess, start the
embedded site with ``pyunicore-fast serve``, and check error output and JSON documents.

Every test goes through a real subprocess (``python -m pyunicore_fast.cli``) so exit codes,
stdout/stderr separation and the absence of tracebacks are tested as users see them.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import time
from typing import Any

CLI = [sys.executable, "-m", "pyunicore_fast.cli"]
_SCRUB = ("UFTP_", "UCC_", "PYUNICORE_FAST_", "REQUESTS_CA_BUNDLE")


def clean_env(home: str, **extra: str) -> dict[str, str]:
    """The environment of a CLI run: no credentials leaking in from the caller, own HOME."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUB)}
    env["HOME"] = home
    env.update(extra)
    return env


def run_cli(*args: str, home: str, env: dict[str, str] | None = None, input: str | bytes | None = None,
            timeout: float = 60) -> subprocess.CompletedProcess:
    """Run ``pyunicore-fast ARGS``; never a traceback on stderr, whatever the outcome."""
    binary = isinstance(input, bytes)
    res = subprocess.run([*CLI, *args], input=input, capture_output=True, text=not binary, timeout=timeout, check=False,
                         env=env if env is not None else clean_env(home),
                         stdin=None if input is not None else subprocess.DEVNULL)
    err = res.stderr.decode() if binary else res.stderr
    assert "Traceback" not in err, err
    return res


def assert_fails(res: subprocess.CompletedProcess, code: int | None = None, contains: str | None = None) -> str:
    """A failure: non-zero exit, exactly one line on stderr naming the tool, nothing on stdout."""
    err = res.stderr.decode() if isinstance(res.stderr, bytes) else res.stderr
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert res.returncode != 0, (res.returncode, err)
    if code is not None:
        assert res.returncode == code, (res.returncode, err)
    assert len(lines) == 1, err
    assert lines[0].startswith("pyunicore-fast"), lines[0]
    if contains is not None:
        assert contains.lower() in lines[0].lower(), lines[0]
    return lines[0]


def ok(res: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert res.returncode == 0, (res.returncode, res.stderr)
    return res


def json_out(res: subprocess.CompletedProcess) -> dict[str, Any]:
    ok(res)
    return json.loads(res.stdout)


class Served:
    """``pyunicore-fast serve --json`` in a child process."""

    def __init__(self, home: str, *extra: str):
        self.home = home
        self.extra = extra
        self.proc: subprocess.Popen | None = None
        self.info: dict[str, Any] = {}

    def __enter__(self) -> Served:  # noqa: PYI034 - typing.Self needs Python 3.11
        self.proc = subprocess.Popen([*CLI, "serve", "--json", *self.extra], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
                                     env=clean_env(self.home))
        sel = selectors.DefaultSelector()
        assert self.proc.stdout is not None
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if sel.select(0.2):
                line = self.proc.stdout.readline()
                if line:
                    self.info = json.loads(line)
                    return self
            if self.proc.poll() is not None:
                break
        self.stop()
        raise RuntimeError(f"serve did not start: {self.proc.stderr.read() if self.proc.stderr else ''}")

    def stop(self, sig: int = signal.SIGTERM) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        err = self.proc.stderr.read() if self.proc.stderr else ""
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()
        assert "Traceback" not in err, err
        return self.proc.returncode

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- conveniences ----------------------------------------------------------------------------
    @property
    def auth_url(self) -> str:
        return self.info["auth_url"]

    @property
    def core_url(self) -> str:
        return self.info["core_url"]

    @property
    def home_dir(self) -> str:
        path = os.path.join(self.info["root_dir"], "home", "demouser")
        os.makedirs(path, exist_ok=True)
        return path

    def uftp(self, path: str = "") -> str:
        """The combined UFTP URL of ``path`` (relative = in demouser's home)."""
        return f"{self.auth_url}:{path}"


def user_env(home: str, **extra: str) -> dict[str, str]:
    """Environment with demouser's credentials in UFTP_USER/UFTP_PASSWORD."""
    return clean_env(home, UFTP_USER="demouser", UFTP_PASSWORD="test123", **extra)


# ----------------------------------------------------------------------------------- JSON schemas
def check_types(doc: dict[str, Any], spec: dict[str, Any], where: str = "") -> None:
    """Every key of ``spec`` is present with one of the listed types (None = JSON null)."""
    for key, types in spec.items():
        assert key in doc, f"{where}{key} missing in {sorted(doc)}"
        types = types if isinstance(types, tuple) else (types,)
        value = doc[key]
        allowed = tuple(type(None) if t is None else t for t in types)
        assert isinstance(value, allowed), f"{where}{key}={value!r} is not {types}"
        if isinstance(value, bool) and bool not in allowed and (int in allowed or float in allowed):
            raise AssertionError(f"{where}{key} is a bool")


CP_SCHEMA = {
    "schema": int, "command": str, "ok": bool, "dry_run": bool, "direction": (str, None), "source": list,
    "target": str, "files": int, "bytes": int, "seconds": (float, int), "rate": (float, int, None),
    "rate_mib_s": (float, int, None), "sessions": int, "streams": int, "sessions_used": (int, None),
    "streams_used": (int, None), "encryption": (str, None), "compression": bool, "resume": bool,
    "resumed_bytes": int, "range": (dict, None), "verified": bool, "checksum": (str, None), "items": list,
}
CP_ITEM_SCHEMA = {"source": str, "target": str, "kind": str, "files": int, "bytes": int,
                  "checksum": (str, None), "verified": (bool, None), "status": str}


def check_cp_summary(doc: dict[str, Any]) -> None:
    check_types(doc, CP_SCHEMA)
    assert doc["command"] == "cp" and doc["schema"] == 1
    for item in doc["items"]:
        check_types(item, CP_ITEM_SCHEMA, "items[].")
