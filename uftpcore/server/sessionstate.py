"""State shared by all command handlers of one FTP session (spec §3.3 set-up, §4.1 data).

Built right after ``230 Login successful``; if building fails (base directory missing,
bad key, pattern outside the base) the caller closes the connection without a reply,
exactly as uftpd's forked session process dies.  Sessions are threads here, so nothing
process-global (``chdir``, ``setuid``) is touched: every file operation runs as the OS
user of the server process.
"""

from __future__ import annotations

import logging
import os
import socket
from enum import Enum
from typing import TYPE_CHECKING

from .datapath import SCRATCH_SIZE, DataChannel, RateLimiter, build_data_channel, close_socket
from .errors import CommandError
from .options import SessionOptions
from .paths import PathPolicy, access_level, normalize_path
from .ranges import RangeState

if TYPE_CHECKING:
    from .controlchannel import ControlChannel
    from .jobs import Job
    from .uftpd import UFTPD

log = logging.getLogger(__name__)

#: reply text uftpd uses whenever a path is missing or unreadable
NOT_ACCESSIBLE = "Directory/file does not exist or cannot be accessed!"


class Action(Enum):
    """What the session loop does after a handler returned (uftpd's ACTION_* codes).

    The split matters for error semantics: failures in the follow-up (the actual data
    transfer, after ``150``) close the data connections; failures in the handler do not.
    """

    CONTINUE = 0
    RETRIEVE = 1
    STORE = 2
    CLOSE_DATA = 7
    SEND_HASH = 8
    END = 99


class SessionState:
    """Paths, options, range state and data connections of one session."""

    def __init__(self, control: ControlChannel, job: Job, server: UFTPD):
        self.control = control
        self.job = job
        self.server = server
        request = job.request
        raw_home = server.home_for(job.user)
        home = raw_home if os.path.isdir(raw_home) else "/"
        dirname = os.path.dirname(request.get("file", ""))
        if dirname == "":
            # no base directory: start in $HOME, the whole file system is reachable
            basedir, current = "/", home
        else:
            if not os.path.isabs(dirname):
                dirname = os.path.join(home, dirname)
            basedir = current = normalize_path(dirname)
        if not os.path.isdir(current):
            raise CommandError(f"No such directory: {current}", 550)
        self.paths = PathPolicy(basedir, current, access_level(request.get("access-permissions", "FULL")))
        self.options = SessionOptions(
            max_streams=server.max_streams, rate_limit=int(request.get("rateLimit", "0")),
            multistream_block=server.multistream_block, bugs=server.bugs,
        )
        self.options.num_streams = int(request.get("streams", 1))
        self.options.set_encryption(request.get("key"), request.get("algo"))
        self.options.compress = request.get("compress", "false").lower() == "true"
        for entry in server.nowrite:
            if entry:
                self.paths.excludes.append(raw_home + "/" + entry)
        self.paths.add_patterns(request.get("includes", "").split(":"), request.get("excludes", "").split(":"))
        self.range = RangeState()
        self.limiter = RateLimiter(0)
        self.data_sockets: list[socket.socket] = []
        self.channel: DataChannel | None = None
        self.file_path = ""
        self.rename_from_path: str | None = None
        self._scratch: bytearray | None = None
        self._listener: socket.socket | None = None

    # -- replies -------------------------------------------------------------------------
    def reply(self, text: str) -> None:
        self.control.reply(text)

    def reply_lines(self, lines: list[str]) -> None:
        self.control.reply_lines(lines)

    # -- data connections ----------------------------------------------------------------
    @property
    def scratch(self) -> bytearray:
        """The session's reusable 1 MiB transfer buffer (allocated on first use)."""
        if self._scratch is None:
            self._scratch = bytearray(SCRATCH_SIZE)
        return self._scratch

    def open_data_channel(self) -> None:
        """All expected connections are open: build the stream stack (§4.1 step 3)."""
        log.debug("building data channel over %d connection(s)", len(self.data_sockets))
        self.channel = build_data_channel(self.data_sockets, self.options, self.scratch)

    def close_data(self) -> None:
        """Close all data connections and reset the expected stream count to 1."""
        self.options.num_streams = 1
        if self.channel is not None:
            try:
                self.channel.close()
            except OSError:
                pass
        for sock in self.data_sockets:
            close_socket(sock)
        self.data_sockets = []
        self.channel = None

    def require_supported_channel(self) -> None:
        """Refuse a transfer before ``150`` when the stream stack is a placeholder."""
        if self.channel is not None and self.channel.unsupported_reason:
            raise CommandError(self.channel.unsupported_reason, 500)

    def active_limiter(self) -> RateLimiter | None:
        """The rate limiter when a limit is set (job ``rateLimit`` / ``OPTS RATE_LIMIT``)."""
        if self.options.rate_limit > 0:
            self.limiter.limit = self.options.rate_limit
            return self.limiter
        return None

    def abort(self) -> None:
        """Called from another thread on server stop: wake every blocking call."""
        self.control.abort()
        listener = self._listener
        if listener is not None:
            try:
                listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for sock in list(self.data_sockets):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
