"""Exit codes and the one-line error messages of the command line.

A command line tool is judged by its failures: every error a user can provoke (bad
arguments, a wrong password, an unreachable site, a missing file) ends in one line on
stderr and a documented exit code, never in a traceback.  ``--debug`` (or
``PYUNICORE_FAST_DEBUG=1``) shows the traceback for bug reports.

Exit codes: 0 success, 1 operation failed, 2 usage error, 3 verification failed (checksum
mismatch), 130 interrupted.
"""

from __future__ import annotations

import errno
import json

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_VERIFY = 3
EXIT_INTERRUPTED = 130


class CLIError(Exception):
    """A failure the user can act on; its message is printed as it is."""

    exit_code = EXIT_FAILURE


class UsageError(CLIError):
    """Bad command line arguments or configuration."""

    exit_code = EXIT_USAGE


class VerificationError(CLIError):
    """Data arrived but does not match its source (checksum mismatch)."""

    exit_code = EXIT_VERIFY


def describe(exc: BaseException) -> tuple[str, int]:
    """``(message, exit code)`` for any exception, phrased for a user, one line."""
    if isinstance(exc, CLIError):
        return _one_line(str(exc)), exc.exit_code
    try:
        import uftpcore

        if isinstance(exc, uftpcore.IntegrityError):
            return _one_line(str(exc)), EXIT_VERIFY
        if isinstance(exc, uftpcore.UFTPError):
            text = str(exc) or type(exc).__name__
            cause = exc.__cause__
            if cause is not None and text.endswith(type(cause).__name__):
                text = text[: -len(type(cause).__name__)] + _root_reason(cause)
            return _one_line(text), EXIT_FAILURE
    except ImportError:  # pragma: no cover - uftpcore is part of this distribution
        pass
    msg = _http_message(exc)
    if msg is not None:
        return msg, EXIT_FAILURE
    if isinstance(exc, json.JSONDecodeError):
        return f"invalid JSON: {exc}", EXIT_FAILURE
    if isinstance(exc, OSError):
        return _os_message(exc), EXIT_FAILURE
    if isinstance(exc, (ValueError, KeyError, LookupError)):
        text = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
        return _one_line(text or type(exc).__name__), EXIT_FAILURE
    return _one_line(f"{type(exc).__name__}: {exc}"), EXIT_FAILURE


def _http_message(exc: BaseException) -> str | None:
    """requests' and the REST client's errors, without their long repr chains."""
    try:
        import requests
    except ImportError:  # pragma: no cover
        return None
    if isinstance(exc, requests.exceptions.ConnectionError) and not isinstance(exc, requests.HTTPError):
        url = getattr(getattr(exc, "request", None), "url", None)
        reason = _root_reason(exc)
        return _one_line(f"cannot connect to {url or 'the server'}: {reason}")
    if isinstance(exc, requests.Timeout):
        url = getattr(getattr(exc, "request", None), "url", None)
        return _one_line(f"no answer from {url or 'the server'} in time")
    if isinstance(exc, requests.HTTPError):
        return _one_line(str(exc) or "HTTP error")
    if isinstance(exc, requests.RequestException):
        return _one_line(f"{type(exc).__name__}: {exc}")
    return None


def _root_reason(exc: BaseException) -> str:
    """The innermost cause ("Connection refused") instead of urllib3's nested repr."""
    seen = set()
    cur: BaseException | None = exc
    last = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        last = cur
        nxt = cur.__cause__ or cur.__context__
        if nxt is None and cur.args and isinstance(cur.args[0], BaseException):
            nxt = cur.args[0]
        cur = nxt
        if cur is not None and getattr(cur, "reason", None) is not None and isinstance(cur.reason, BaseException):
            cur = cur.reason
    if isinstance(last, OSError) and last.strerror:
        return last.strerror
    text = str(last)
    if "Connection refused" in text or "Errno 111" in text:
        return "Connection refused"
    if "Name or service not known" in text or "nodename nor servname" in text:
        return "unknown host"
    return text.split(": ", 1)[-1] if len(text) > 160 else text


def _os_message(exc: OSError) -> str:
    if exc.strerror and exc.filename:
        return f"{exc.filename}: {exc.strerror}"
    if exc.errno == errno.ECONNREFUSED:
        return "connection refused"
    return _one_line(str(exc) or exc.strerror or type(exc).__name__)


def _one_line(text: str) -> str:
    return " ".join(text.split())
