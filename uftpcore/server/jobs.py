"""Transfer requests ("jobs") and their lifecycle (spec §2.2, §2.4).

A job is kept in memory keyed by its secret.  Rules reproduced from uftpd 3.5.3:

* a per-user counter is incremented for every accepted job and for every *additional*
  concurrent session of a persistent job; it is decremented when a session has ended and
  housekeeping reaped it, or when an unused job expires.  ``counter == limit`` refuses new
  jobs, ``counter > limit`` refuses an additional persistent login;
* a non-persistent job admits one login: while its session is alive (or ended but not yet
  reaped) a second login gets ``500 Session for these credentials is already running``;
* once every session of a job has ended and housekeeping ran, the job is gone (the secret
  is invalid, also for persistent jobs);
* a job nobody logs into expires after ``job_timeout`` seconds (300).

uftpd forks a process per session and reaps it in a housekeeping thread every 5 s; here a
session is a thread that marks its :class:`SessionTicket` finished, and
:meth:`JobRegistry.housekeeping` does the reaping — same observable timing.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from collections.abc import Iterable

from .errors import JobError

log = logging.getLogger(__name__)


def parse_request(lines: Iterable[str]) -> dict[str, str]:
    """``key=value`` lines -> dict: split at the first ``=``, no trimming of key or value,
    lines without ``=`` ignored, later duplicates win, stop at a line starting with END."""
    request: dict[str, str] = {}
    for line in lines:
        if line.startswith("END"):
            break
        key, sep, value = line.strip().partition("=")
        if sep:
            request[key] = value
    return request


def request_from_arguments(
    secret: str,
    user: str,
    file: str = "",
    client_ip: str | Iterable[str] | None = "127.0.0.1",
    persistent: bool = False,
    streams: int = 1,
    key: bytes | None = None,
    algo: str | None = None,
    compress: bool = False,
    rate_limit: int = 0,
    access: str | None = "FULL",
    includes: str | Iterable[str] | None = None,
    excludes: str | Iterable[str] | None = None,
    group: str | None = None,
) -> dict[str, str]:
    """Build the same string dict the command port would parse from a Java requester."""
    request = {"request-type": "uftp-transfer-request", "user": user, "secret": secret}
    if client_ip is not None:
        request["client-ip"] = client_ip if isinstance(client_ip, str) else ",".join(client_ip)
    request["persistent"] = "true" if persistent else "false"
    request["file"] = file
    request["streams"] = str(streams)
    request["compress"] = "true" if compress else "false"
    if group is not None:
        request["group"] = group
    if rate_limit:
        request["rateLimit"] = str(rate_limit)
    if key is not None:
        request["key"] = base64.b64encode(key).decode("ascii")
        if algo is not None:
            request["algo"] = algo.upper()
    if includes:
        request["includes"] = includes if isinstance(includes, str) else ":".join(includes)
    if excludes:
        request["excludes"] = excludes if isinstance(excludes, str) else ":".join(excludes)
    if access is not None:
        request["access-permissions"] = access
    return request


class SessionTicket:
    """One FTP session of a job (uftpd: one child PID)."""

    __slots__ = ("finished",)

    def __init__(self) -> None:
        self.finished = False


class Job:
    """One accepted transfer request."""

    def __init__(self, request: dict[str, str], expires: float):
        self.request = request
        self.secret = request["secret"]
        self.user = request["user"]
        self.persistent = request.get("persistent", "0").lower() == "true"
        self.expires = expires
        self.sessions: list[SessionTicket] = []
        group = request.get("group", "NONE")
        groups = group.split(":")
        if len(groups) == 1:
            groups.append("DEFAULT_GID")
        self.groups = groups


class JobRegistry:
    """All pending/active jobs and the per-user counters, guarded by one lock."""

    def __init__(self, max_connections: int = 16, job_timeout: float = 300.0):
        self.max_connections = max_connections
        self.job_timeout = job_timeout
        self._jobs: dict[str, Job] = {}
        self._counts: dict[str, int] = {}
        self._lock = threading.RLock()

    # -- requests ------------------------------------------------------------------------
    def add(self, request: dict[str, str]) -> Job:
        """Register a transfer request; raises with uftpd's ``ERROR::`` texts.

        A missing ``user``/``secret`` raises ``KeyError`` (rendered as ``ERROR::'user'``).
        """
        with self._lock:
            user = request["user"]
            count = self._counts.setdefault(user, 0)
            if count == self.max_connections:
                raise JobError(f"Too many active sessions for '{user}' - server limit is {self.max_connections}")
            secret = request["secret"]
            if secret in self._jobs:
                raise JobError("Duplicate secret - this is not allowed.")
            job = Job(request, time.time() + self.job_timeout)
            self._counts[user] = count + 1
            self._jobs[secret] = job
        log.info("New transfer request for '%s' groups: %s", user, request.get("group", "NONE"))
        return job

    def lookup(self, secret: str) -> Job | None:
        with self._lock:
            return self._jobs.get(secret)

    def count(self, user: str) -> int:
        """Current value of the user's counter (jobs + extra persistent sessions)."""
        with self._lock:
            return self._counts.get(user, 0)

    def __len__(self) -> int:
        with self._lock:
            return len(self._jobs)

    # -- sessions ------------------------------------------------------------------------
    def begin_session(self, job: Job) -> SessionTicket | str:
        """Admit a login for ``job``: a ticket, or the error reply line to send."""
        with self._lock:
            if self._jobs.get(job.secret) is not job:
                # reaped/expired between lookup and login
                return "530 Not logged in: no matching transfer request found"
            if job.sessions:
                if not job.persistent:
                    return "500 Session for these credentials is already running"
                count = self._counts.get(job.user, 0) + 1
                if count > self.max_connections:
                    return (
                        f"500 Too many active transfer requests / sessions for '{job.user}'"
                        f" - server limit is {self.max_connections}"
                    )
                self._counts[job.user] = count
            ticket = SessionTicket()
            job.sessions.append(ticket)
            return ticket

    @staticmethod
    def end_session(ticket: SessionTicket) -> None:
        """Mark a session finished; housekeeping reaps it (like ``waitpid``)."""
        ticket.finished = True

    def housekeeping(self, now: float | None = None) -> None:
        """Expire unused jobs, reap finished sessions, drop jobs without live sessions."""
        if now is None:
            now = time.time()
        with self._lock:
            for secret, job in list(self._jobs.items()):
                if not job.sessions:
                    if now > job.expires:
                        log.info("Removing expired job from '%s'", job.user)
                        del self._jobs[secret]
                        self._counts[job.user] -= 1
                    continue
                for ticket in [t for t in job.sessions if t.finished]:
                    job.sessions.remove(ticket)
                    self._counts[job.user] -= 1
                if not job.sessions:
                    log.info("Processing request for '%s' finished.", job.user)
                    del self._jobs[secret]
