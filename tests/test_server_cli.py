"""``python -m uftpcore.server`` runs the server (and Auth endpoint) in the foreground."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys

import requests

try:
    from .test_server_support import RawFTP
except ImportError:
    from test_server_support import RawFTP


def test_cli_foreground_server(tmp_path):
    (tmp_path / "hello.txt").write_text("hi")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [os.getcwd(), env.get("PYTHONPATH")]))
    proc = subprocess.Popen(
        [sys.executable, "-m", "uftpcore.server", "--host", "127.0.0.1", "--port", "0", "--cmd-port", "0",
         "--auth-port", "0", "--user", "demouser:test123", "--root", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env,
    )
    try:
        first = proc.stdout.readline()
        assert re.match(r"UFTPD listening on 127\.0\.0\.1:\d+, command port 127\.0\.0\.1:\d+$", first)
        auth_line = proc.stdout.readline()
        url = auth_line.split("Auth endpoint: ", 1)[1].strip()
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/rest/auth/TEST", url)
        reply = requests.post(url, json={"serverPath": ""}, auth=("demouser", "test123"), timeout=10).json()
        client = RawFTP(reply["serverPort"])
        assert client.login(reply["secret"]) == "230 Login successful\n"
        # empty serverPath: the session starts in --root (the user's home)
        assert client.cmd("MLST hello.txt").startswith(f"250- Listing {tmp_path}/hello.txt\n")
        client.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
