"""The UFTPD server object: listeners, threads, lifecycle (spec §13).

A faithful *test/demo* re-implementation of uftpd 3.5.3 in pure Python.  Differences
that are deliberate and documented:

* sessions are threads, not forked processes, and **no user switching happens**: every
  file is read and written as the OS user running this server (like uftpd's unprivileged
  test mode, spec §15.1).  The job's ``user`` is only used for the per-user limits and to
  find a home directory (``home_dirs`` mapping, else ``~`` of the server process), which
  is where relative and empty ``file=`` values start;
* the command port serves every connection in its own thread with a read timeout;
* plain downloads always use ``os.sendfile`` (``OPTS SENDFILE_ENABLED`` is only echoed);
* multi-stream (§5), encrypted (§6) and compressed (§7) transfers behave like uftpd's,
  including its data-path defects; ``bug_compat=False`` (or a selection of
  :data:`~.datapath.BUGS`) switches them off (see :mod:`.datapath`).

Never expose this server to untrusted networks.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from . import commandport, login
from .controlchannel import ControlChannel
from .datapath import bug_set, close_socket
from .errors import JobError
from .ftpsession import FTPSession
from .jobs import JobRegistry, SessionTicket, request_from_arguments
from .options import MULTI_STREAM_BLOCK

if TYPE_CHECKING:
    from typing import Self

log = logging.getLogger(__name__)


class _SocketAborter:
    """Lets :meth:`UFTPD.stop` wake a thread blocked on a command-port connection."""

    def __init__(self, sock: socket.socket):
        self.sock = sock

    def abort(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def _listen(host: str, port: int, backlog: int = 64) -> socket.socket:
    """A listening socket; ``""``/``"*"`` mean all interfaces (dual-stack when available)."""
    if host in ("", "*"):
        if socket.has_dualstack_ipv6():
            return socket.create_server(("", port), family=socket.AF_INET6, dualstack_ipv6=True, backlog=backlog)
        return socket.create_server(("", port), backlog=backlog)
    family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    return socket.create_server((host, port), family=family, backlog=backlog)


class UFTPD:
    """A UFTPD-compatible server: FTP listen port + command port + housekeeping.

    ``port``/``cmd_port`` 0 pick free ports; the bound ones are available after
    :meth:`start`.  Extra keyword-only knobs: ``housekeeping_interval`` (uftpd: 5 s),
    ``size_bug`` (reproduce the 3.5.x ``SIZE`` failure), ``advertise_host``,
    ``home_dirs`` (user -> home directory), ``port_range`` (``(lower, upper)`` for data
    listeners), ``nowrite`` (``$HOME``-relative excluded paths), ``keyfiles``
    (user-info), ``hash_keepalive_interval`` (``213-`` lines during long HASHes),
    ``bug_compat`` (``True``: reproduce uftpd's encryption/compression defects of §6.4,
    §6.5 and §7.2; ``False``: behave correctly; or an iterable of names from
    :data:`~.datapath.BUGS`), ``multistream_block`` (block size of multi-stream downloads
    and of the upload reader's requests; uftpd: 16384).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        cmd_host: str = "127.0.0.1",
        cmd_port: int = 0,
        max_streams: int = 4,
        max_connections: int = 16,
        job_timeout: float = 300.0,
        version: str = "3.5.3",
        disable_ip_check: bool = False,
        accept_timeout: float = 30.0,
        *,
        housekeeping_interval: float = 5.0,
        size_bug: bool = True,
        advertise_host: str | None = None,
        home_dirs: dict[str, str] | None = None,
        port_range: tuple[int, int] | None = None,
        nowrite: Iterable[str] = (".ssh/authorized_keys",),
        keyfiles: Iterable[str] = (".ssh/authorized_keys", ".uftp/authorized_keys"),
        hash_keepalive_interval: float = 30.0,
        bug_compat: bool | Iterable[str] = True,
        multistream_block: int = MULTI_STREAM_BLOCK,
    ):
        self.host = host
        self._port = port
        self.cmd_host = cmd_host
        self._cmd_port = cmd_port
        self.max_streams = max_streams
        self.max_connections = max_connections
        self.version = version
        self.disable_ip_check = disable_ip_check
        self.accept_timeout = accept_timeout
        self.housekeeping_interval = housekeeping_interval
        self.size_bug = size_bug
        self.advertise_host = advertise_host
        self.home_dirs: dict[str, str] = dict(home_dirs or {})
        self.port_range = port_range
        self.nowrite = list(nowrite)
        self.keyfiles = list(keyfiles)
        self.hash_keepalive_interval = hash_keepalive_interval
        self.bugs = bug_set(bug_compat)
        if multistream_block < 1:
            raise ValueError("multistream_block must be positive")
        self.multistream_block = multistream_block
        self.registry = JobRegistry(max_connections=max_connections, job_timeout=job_timeout)
        self._ftp_listener: socket.socket | None = None
        self._cmd_listener: socket.socket | None = None
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._workers: set[threading.Thread] = set()
        #: everything stop() must wake: control channels, sessions, command connections
        self._sessions: set[FTPSession | ControlChannel | _SocketAborter] = set()
        self._lock = threading.Lock()

    # -- properties ----------------------------------------------------------------------
    @property
    def port(self) -> int:
        """The FTP listen port (what ``OK::`` reports)."""
        return self._port

    @property
    def cmd_port(self) -> int:
        """The command port."""
        return self._cmd_port

    @property
    def running(self) -> bool:
        return self._ftp_listener is not None and not self._stopping.is_set()

    def home_for(self, user: str) -> str:
        """Home directory of a job user: ``home_dirs`` or the server process's ``~``."""
        return self.home_dirs.get(user) or os.path.expanduser("~")

    # -- lifecycle -----------------------------------------------------------------------
    def start(self) -> UFTPD:
        """Bind both ports and start the listener and housekeeping threads."""
        if self._ftp_listener is not None:
            return self
        self._stopping.clear()
        self._ftp_listener = _listen(self.host, self._port)
        self._port = self._ftp_listener.getsockname()[1]
        try:
            self._cmd_listener = _listen(self.cmd_host, self._cmd_port)
        except OSError:
            close_socket(self._ftp_listener)
            self._ftp_listener = None
            raise
        self._cmd_port = self._cmd_listener.getsockname()[1]
        self._threads = [
            threading.Thread(target=self._accept_loop, args=(self._ftp_listener, self._serve_ftp),
                             name=f"uftpd-ftp-{self._port}", daemon=True),
            threading.Thread(target=self._accept_loop, args=(self._cmd_listener, self._serve_command),
                             name=f"uftpd-cmd-{self._cmd_port}", daemon=True),
            threading.Thread(target=self._housekeeping_loop, name="uftpd-housekeeping", daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        log.info("UFTPD %s listening on %s:%d, command port %s:%d", self.version, self.host, self._port,
                 self.cmd_host, self._cmd_port)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Close the listeners, end every session, join the threads."""
        if self._ftp_listener is None:
            return
        self._stopping.set()
        for listener in (self._ftp_listener, self._cmd_listener):
            if listener is not None:
                try:
                    listener.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                close_socket(listener)
        with self._lock:
            sessions = list(self._sessions)
            workers = list(self._workers)
        for session in sessions:
            session.abort()
        deadline = time.monotonic() + timeout
        for thread in self._threads + workers:
            if thread is not threading.current_thread():
                thread.join(max(0.0, deadline - time.monotonic()))
        self._ftp_listener = None
        self._cmd_listener = None
        log.info("UFTPD on port %d stopped", self._port)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    # -- jobs ----------------------------------------------------------------------------
    def add_job(
        self,
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
    ) -> int:
        """Register a job directly (same rules as the command port); returns the listen port.

        Raises :class:`~uftpcore.server.errors.JobError` (a ``ValueError``) with the text
        the command port would put after ``ERROR::``.
        """
        request = request_from_arguments(
            secret, user, file=file, client_ip=client_ip, persistent=persistent, streams=streams,
            key=key, algo=algo, compress=compress, rate_limit=rate_limit, access=access,
            includes=includes, excludes=excludes, group=group,
        )
        self.registry.add(request)
        return self._port

    def run_housekeeping(self) -> None:
        """Run one housekeeping pass now (reap ended sessions, expire unused jobs)."""
        self.registry.housekeeping()

    # -- threads -------------------------------------------------------------------------
    def _accept_loop(self, listener: socket.socket, serve) -> None:
        while not self._stopping.is_set():
            try:
                conn, _address = listener.accept()
            except OSError as exc:
                if self._stopping.is_set() or listener.fileno() < 0:
                    break
                log.error("Error waiting for new connection: %s", exc)
                continue
            worker = threading.Thread(target=self._run_worker, args=(serve, conn), daemon=True,
                                      name=f"uftpd-conn-{conn.fileno()}")
            with self._lock:
                self._workers.add(worker)
            worker.start()

    def _run_worker(self, serve, conn: socket.socket) -> None:
        try:
            serve(conn)
        except Exception:  # a worker must never take the server down
            log.exception("unexpected error in connection handler")
        finally:
            with self._lock:
                self._workers.discard(threading.current_thread())

    def _housekeeping_loop(self) -> None:
        while not self._stopping.wait(self.housekeeping_interval):
            try:
                self.registry.housekeeping()
            except Exception:
                log.exception("housekeeping failed")

    def _serve_command(self, conn: socket.socket) -> None:
        aborter = _SocketAborter(conn)
        with self._lock:
            self._sessions.add(aborter)
        try:
            commandport.handle_connection(conn, self)
        finally:
            with self._lock:
                self._sessions.discard(aborter)

    def _serve_ftp(self, conn: socket.socket) -> None:
        """Greeting, login, checks of §3.2, then the session loop."""
        try:
            control = ControlChannel(conn)
        except OSError:
            close_socket(conn)
            return
        with self._lock:
            self._sessions.add(control)
        ticket: SessionTicket | None = None
        session: FTPSession | None = None
        try:
            try:
                secret = login.read_secret(control, self.version)
                if secret is None:
                    return
                job = self.registry.lookup(secret)
                if job is None:
                    control.reply("530 Not logged in: no matching transfer request found")
                    return
                if not self.disable_ip_check:
                    allowed = job.request["client-ip"].split(",")
                    if control.peer_ip not in allowed:
                        raise JobError(
                            f"Rejecting connection for '{job.user}' from {control.peer_ip}, allowed: {allowed}"
                        )
            except Exception as exc:  # noqa: BLE001 - uftpd reports any failure text here
                try:
                    control.reply(f"500 Error establishing connection: {exc}")
                except OSError:
                    pass
                return
            admitted = self.registry.begin_session(job)
            if isinstance(admitted, str):
                control.reply(admitted)
                return
            ticket = admitted
            log.info("Established FTP connection with %s for '%s'", control.peer_ip, job.user)
            control.reply("230 Login successful")
            try:
                session = FTPSession(control, job, self)
            except Exception as exc:  # noqa: BLE001 - any set-up failure ends the session
                # uftpd's session process dies here: the client just sees EOF
                log.warning("session set-up for '%s' failed: %s", job.user, exc)
                return
            with self._lock:
                self._sessions.discard(control)
                self._sessions.add(session)
            if self._stopping.is_set():
                return
            session.run()
        except (OSError, EOFError, UnicodeError) as exc:
            log.debug("session ended: %r", exc)
        finally:
            with self._lock:
                self._sessions.discard(control)
                if session is not None:
                    self._sessions.discard(session)
            if ticket is not None:
                self.registry.end_session(ticket)
            control.close()
