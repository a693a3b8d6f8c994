"""Data-connection and transfer commands of a session (spec §3.5.3–§3.5.7, §3.7, §4).

PASV/EPSV open the connections one at a time with a blocking accept; RANG/REST/ALLO set
the range; RETR/STOR/APPE/HASH check everything that can fail *before* the ``150`` (so
the data connections survive such errors) and return an :class:`Action` whose follow-up
runs the transfer.  All byte moving is delegated to the session's
:class:`~uftpcore.server.datapath.DataChannel`.
"""

from __future__ import annotations

import errno
import logging
import os
import pathlib
import stat as _stat
import sys
import time

from . import archive, dataconn
from .errors import CommandError
from .paths import MODE_READ, MODE_WRITE
from .sessionstate import NOT_ACCESSIBLE, Action, SessionState

log = logging.getLogger(__name__)


def _can_read(path: str) -> bool:
    return os.path.exists(path) and os.access(path, os.R_OK)


def _open_for_reading(path: str) -> int:
    """``os.open`` for reading that fails on directories like Python's ``open()`` does."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    if _stat.S_ISDIR(os.fstat(fd).st_mode):
        os.close(fd)
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)
    return fd


class TransferCommands(SessionState):
    """PASV EPSV RANG REST ALLO RETR STOR APPE HASH and their data-channel follow-ups."""

    # -- passive connections (§4.1) -----------------------------------------------------
    def cmd_pasv(self, _params: str | None) -> None:
        self._add_data_connection(epsv=False)

    def cmd_epsv(self, params: str | None) -> None:
        if params == "ALL":
            self.reply("200 OK")
            return
        self._add_data_connection(epsv=True)

    def _add_data_connection(self, epsv: bool) -> None:
        if len(self.data_sockets) == self.options.num_streams:
            # "forgotten" connections from an earlier set: drop them (and reset to 1 stream)
            self.close_data()
        advertise = self.server.advertise_host
        listener = dataconn.open_listener(
            advertise or self.control.local_ip,
            self.control.family,
            self.server.accept_timeout,
            self.server.port_range,
        )
        self._listener = listener
        try:
            port = listener.getsockname()[1]
            if epsv:
                self.reply(f"229 Entering Extended Passive Mode (|||{port}|)")
            else:
                host = (advertise or self.control.local_ip).replace(".", ",")
                self.reply(f"227 Entering Passive Mode ({host},{port // 256},{port % 256})")
            sock = dataconn.accept_data(listener, self.control.peer_ip)  # SessionEnd on failure
        finally:
            self._listener = None
            listener.close()
        self.data_sockets.append(sock)
        if len(self.data_sockets) == self.options.num_streams:
            self.open_data_channel()

    # -- ranges (§3.7) ------------------------------------------------------------------
    def cmd_rang(self, params: str | None) -> None:
        self.reply(self.range.rang(params))

    def cmd_rest(self, params: str | None) -> None:
        self.reply(self.range.rest(params))

    def cmd_allo(self, params: str | None) -> None:
        self.paths.require_level(MODE_WRITE)
        self.reply(self.range.allo(params))

    def post_transfer(self, send_226: bool = True) -> None:
        self.range.reset()
        if send_226:
            self.reply("226 File transfer successful")

    def _keep_data_open(self) -> bool:
        return self.options.keep_alive and (self.channel is None or self.channel.reusable)

    # -- RETR (§3.5.5) ------------------------------------------------------------------
    def cmd_retr(self, params: str | None) -> Action:
        self.paths.require_level(MODE_READ)
        path = self.paths.resolve(params)
        self.paths.check_patterns(path)
        if not _can_read(path):
            raise CommandError(NOT_ACCESSIBLE, 550)
        if self.range.have_range:
            announced = self.range.length
        else:
            announced = os.stat(path).st_size  # the full size, also after REST (quirk 8)
            self.range.length = announced - self.range.offset
        self.file_path = path
        self.require_supported_channel()
        self.reply(f"150 OK {announced} bytes available for reading.")
        return Action.RETRIEVE

    def send_data(self) -> None:
        fd = _open_for_reading(self.file_path)
        channel = self.channel
        started = time.monotonic()
        try:
            if channel is None:
                # uftpd writes to a missing connector: fails as soon as there is a byte to send
                if self.range.length > 0 and os.pread(fd, 1, self.range.offset):
                    raise AttributeError("'NoneType' object has no attribute 'write'")
                sent = 0
            else:
                sent = channel.send_file(fd, self.range.offset, self.range.length, self.active_limiter())
        finally:
            os.close(fd)
        if channel is not None:
            channel.finish()
        self.post_transfer()
        if not self._keep_data_open():
            self.close_data()
        log.info("USAGE [Sent 1 file(s)] [%d bytes] [%.3f s] [%s]", sent, time.monotonic() - started, self.job.user)

    # -- STOR / APPE (§3.5.6) -----------------------------------------------------------
    def cmd_stor(self, params: str | None) -> Action:
        self.paths.require_level(MODE_WRITE)
        path = self.paths.resolve(params)
        self.paths.check_patterns(path)
        if self.range.length == -1:
            self.range.length = sys.maxsize
        self.file_path = path
        self.require_supported_channel()
        pathlib.Path(path).touch()  # before 150: a failing upload leaves an empty file
        self.reply("150 OK")
        return Action.STORE

    def cmd_appe(self, params: str | None) -> Action:
        self.paths.require_level(MODE_WRITE)
        path = self.paths.resolve(params)
        self.paths.check_patterns(path)
        if self.range.length == -1:
            self.range.length = sys.maxsize
            os.stat(path)
            # uftpd indexes os.stat()'s result with a string here (quirk 5)
            raise TypeError("tuple indices must be integers or slices, not str")
        self.file_path = path
        self.require_supported_channel()
        self.reply("150 OK")
        return Action.STORE

    def recv_data(self) -> None:
        if self.options.archive_mode:
            self._recv_archive()
        else:
            self._recv_plain()

    def _recv_plain(self) -> None:
        channel = self.channel
        started = time.monotonic()
        fd = os.open(self.file_path, os.O_RDWR | getattr(os, "O_CLOEXEC", 0))
        try:
            if not self.range.have_range:
                try:
                    os.ftruncate(fd, 0)
                except OSError:
                    pass
            limit = self.range.length
            if channel is None:
                if limit > 0:
                    raise AttributeError("'NoneType' object has no attribute 'read'")
                received = 0
            else:
                if channel.reads_until_eof:
                    limit = sys.maxsize
                received = channel.recv_to_file(fd, self.range.offset, limit, self.active_limiter())
        finally:
            os.close(fd)
        if not self._keep_data_open():
            self.close_data()
        self.post_transfer()
        log.info("USAGE [Received 1 file(s)] [%d bytes] [%.3f s] [%s]", received, time.monotonic() - started, self.job.user)

    def _recv_archive(self) -> None:
        if self.channel is None:
            raise AttributeError("'NoneType' object has no attribute 'read'")
        files, total = archive.extract_tar_stream(self.channel, self.file_path, self.paths.resolve)
        # uftpd replies before closing here (the plain path closes first)
        self.post_transfer()
        if not self._keep_data_open():
            self.close_data()
        log.info("USAGE [Received %d file(s)] [%d bytes] [%s]", files, total, self.job.user)

    # -- HASH (§3.5.7) ------------------------------------------------------------------
    def cmd_hash(self, params: str | None) -> Action:
        self.paths.require_level(MODE_READ)
        path = self.paths.resolve(params)  # no include/exclude check, as uftpd
        if not _can_read(path):
            raise CommandError(NOT_ACCESSIBLE, 550)
        if not self.range.have_range:
            self.range.length = os.stat(path).st_size - self.range.offset
        self.file_path = path
        return Action.SEND_HASH

    def send_hash(self) -> None:
        offset, length = self.range.offset, self.range.length
        digest = self.options.new_hash()
        keepalive = self.server.hash_keepalive_interval
        fd = _open_for_reading(self.file_path)
        view = memoryview(self.scratch)
        try:
            total = 0
            interval_start = time.time()
            while total < length:
                want = min(self.options.buffer_size, length - total, len(view))
                n = os.preadv(fd, [view[:want]], offset + total)
                if n == 0:
                    break
                digest.update(view[:n])
                total += n
                if time.time() - interval_start > keepalive:
                    self.reply("213-")  # keep the client entertained
                    interval_start = time.time()
        finally:
            view.release()
            os.close(fd)
        last = max(0, offset + length - 1)
        self.reply(f"213 {self.options.hash_algorithm} {offset}-{last} {digest.hexdigest()} {self.file_path}")
        self.post_transfer(send_226=False)
