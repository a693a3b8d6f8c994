"""Greeting and pre-login dialogue of the FTP listen port (spec §3.2).

Accepted: optionally one ``SYST``; then exactly ``USER anonymous``; then ``PASS <secret>``
or ``USER <secret>`` (FTP-proxy style).  Anything else gets ``500 Protocol error`` and the
connection is closed.  A second ``SYST`` fails with the Python message uftpd leaks
(``list.remove(x): x not in list``) — reproduced by using the same list bookkeeping.
"""

from __future__ import annotations

from .controlchannel import ControlChannel

PROTOCOL_ERROR = "500 Protocol error"
SYSTEM_REPLY = "215 Unix Type: L8"


def greeting(version: str) -> str:
    return f"220 UFTPD {version}, https://www.unicore.eu"


def read_secret(control: ControlChannel, version: str) -> str | None:
    """Run the dialogue up to the password.

    Returns the secret, or ``None`` when the connection is to be closed silently (a
    protocol error was already replied, or the client went away).  Exceptions (second
    SYST, EOF after ``USER``) are for the caller to render as
    ``500 Error establishing connection: <text>``.
    """
    control.reply(greeting(version))
    expected = ["USER", "SYST"]
    while expected:
        try:
            line = control.read_line()
        except (OSError, EOFError, UnicodeError):
            return None
        upper = line.upper()
        if upper.startswith("USER"):
            expected.remove("USER")
            return _login(control, line)
        if upper.startswith("SYST"):
            expected.remove("SYST")  # ValueError on the second SYST, as in uftpd
            control.reply(SYSTEM_REPLY)
            continue
        control.reply(PROTOCOL_ERROR)
        return None
    return None


def _login(control: ControlChannel, line: str) -> str | None:
    secret = None
    if line == "USER anonymous":  # exact, case-sensitive
        control.reply("331 Please specify the password")
        password_line = control.read_line()
        if password_line.startswith(("USER ", "PASS ")):
            password = password_line.split(" ", 1)[1]
            if password != "anonymous":
                secret = password
    if not secret:
        control.reply(PROTOCOL_ERROR)
        return None
    return secret
