"""The embedded site in a child process (``pyunicore-fast serve --json``), for ``bench`` and ``demo``.

A separate process keeps the server's work off this interpreter's GIL, so the numbers show
the client, not a client and a server sharing one core; it is also exactly what a user gets
from ``pyunicore-fast serve``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from typing import Any

from pyunicore_fast.cli.errors import CLIError

log = logging.getLogger(__name__)


@contextlib.contextmanager
def embedded_site(timeout: float = 60.0, extra_args: list[str] | None = None) -> Iterator[dict[str, Any]]:
    """Start ``serve --json`` and yield its description (URLs, users, root_dir); stop it after."""
    cmd = [sys.executable, "-m", "pyunicore_fast.cli", "serve", "--json", *(extra_args or [])]
    env = dict(os.environ)
    env.pop("PYUNICORE_FAST_DEBUG", None)
    errors = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - a file, not a pipe: a chatty server never blocks
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=errors, stdin=subprocess.DEVNULL,
                            env=env, text=True)
    try:
        info = _read_description(proc, timeout, errors)
        yield info
    finally:
        _stop(proc)
        errors.close()


def _read_description(proc: subprocess.Popen, timeout: float, errors: Any) -> dict[str, Any]:
    assert proc.stdout is not None
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not sel.select(timeout=0.2):
            if proc.poll() is not None:
                break
            continue
        line = proc.stdout.readline()
        if not line:
            break
        try:
            return json.loads(line)
        except ValueError:
            log.debug("serve: %s", line.rstrip())
    errors.seek(0)
    lines = errors.read().strip().splitlines()
    err = lines[-1] if lines else ""
    raise CLIError(f"the embedded site did not start{': ' + err if err else ''}")


def reap(proc: subprocess.Popen, grace: float = 15.0) -> None:
    """Wait up to ``grace`` seconds for a child that was asked to stop, then kill it: a child
    that hangs must not outlive the command (``demo`` reaps its mount process this way too)."""
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        reap(proc)
    if proc.stdout is not None:
        proc.stdout.close()
