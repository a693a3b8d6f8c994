"""File-system and listing commands of a session (spec §3.5.2, §3.6).

Each handler reproduces uftpd 3.5.3's checks *in its order* (access level, path
resolution, include/exclude only where uftpd applies it) and lets Python's own exception
texts through where uftpd does, because those texts are what clients see in the 500 reply.
"""

from __future__ import annotations

import errno
import os
import stat as _stat
import time
from collections.abc import Callable

from . import listing_format
from .errors import CommandError
from .paths import MODE_FULL, MODE_INFO, MODE_WRITE
from .sessionstate import NOT_ACCESSIBLE, Action, SessionState


def _check_enterable(path: str) -> None:
    """Raise the OSError ``chdir(path)`` would raise (sessions are threads: no real chdir)."""
    st = os.stat(path)
    if not _stat.S_ISDIR(st.st_mode):
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), path)
    if not os.access(path, os.X_OK):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), path)


def _set_mtime(path: str, value: str) -> None:
    """``YYYYMMDDhhmmss`` in the server's local time zone -> atime and mtime."""
    epoch = time.mktime(time.strptime(value, "%Y%m%d%H%M%S"))
    os.utime(path, (epoch, epoch))


class FileSystemCommands(SessionState):
    """PWD CWD CDUP MKD RMD DELE RNFR RNTO MFMT MFF SIZE MLST STAT LIST MLSD."""

    def cmd_pwd(self, _params: str | None) -> None:
        self.paths.require_level(MODE_INFO)
        self.reply(f'257 "{self.paths.reported_cwd}"')

    def cmd_cwd(self, params: str | None) -> None:
        self.paths.require_level(MODE_INFO)
        path = self.paths.resolve(params)
        self.paths.check_patterns(path)
        try:
            _check_enterable(path)
        except OSError as exc:
            raise CommandError(f"Can't cwd to directory: {exc}", 550) from None
        self.paths.current_dir = path
        self.paths.reported_cwd = os.path.realpath(path)
        self.reply("200 OK")

    def cmd_cdup(self, _params: str | None) -> None:
        if self.paths.current_dir == self.paths.basedir:
            raise CommandError("Can't cd up, already at base directory", 534)
        # uftpd does chdir("..") relative to the *process* directory, then getcwd()
        parent = os.path.dirname(self.paths.reported_cwd)
        try:
            _check_enterable(parent)
        except OSError as exc:
            raise CommandError(f"Can't cd up: {exc}", 500) from None
        self.paths.current_dir = parent
        self.paths.reported_cwd = parent
        self.reply("200 OK")

    def cmd_mkd(self, params: str | None) -> None:
        self.paths.require_level(MODE_WRITE)
        path = self.paths.resolve(params)
        os.mkdir(path)
        self.reply(f'257 "{path}" directory created')

    def cmd_dele(self, params: str | None) -> None:
        self.paths.require_level(MODE_FULL)
        path = self.paths.resolve(params)
        self.paths.check_patterns(path)
        os.unlink(path)
        self.reply("200 OK")

    def cmd_rmd(self, params: str | None) -> None:
        self.paths.require_level(MODE_FULL)
        path = self.paths.resolve(params)
        self.paths.check_patterns(path)
        os.rmdir(path)
        self.reply("200 OK")

    def cmd_rnfr(self, params: str | None) -> None:
        self.paths.require_level(MODE_WRITE)
        path = self.paths.resolve(params)
        self.paths.check_patterns(path)
        self.rename_from_path = path  # remembered, never cleared (quirk 21)
        self.reply("350 File action OK Please send rename-to")

    def cmd_rnto(self, params: str | None) -> None:
        self.paths.require_level(MODE_WRITE)
        path = self.paths.resolve(params)
        self.paths.check_patterns(path)
        if self.rename_from_path is None:
            raise AttributeError("'Session' object has no attribute 'rename_from_path'")
        os.rename(self.rename_from_path, path)
        self.reply("200 OK")

    def cmd_mfmt(self, params: str | None) -> None:
        self.paths.require_level(MODE_WRITE)
        # the 3-way split makes paths with blanks fail, as in uftpd (quirk 20)
        mtime, target = params.split(" ", 2)  # type: ignore[union-attr]
        path = self.paths.resolve(target)
        self.paths.check_patterns(path)
        _set_mtime(path, mtime)
        self.reply(f"213 Modify={mtime}; {target}")

    def cmd_mff(self, params: str | None) -> None:
        self.paths.require_level(MODE_WRITE)
        fact_spec, target = params.split(" ", 2)  # type: ignore[union-attr]
        path = self.paths.resolve(target)
        self.paths.check_patterns(path)
        applied = []
        for fact in fact_spec.split(";"):
            if not fact:
                continue
            key, value = fact.split("=")
            if key.lower() == "modify":
                _set_mtime(path, value)
            elif key.lower() == "unix.mode":
                os.chmod(path, int(value, 8))
            else:
                raise ValueError(f"Not supported: '{key}'")
            applied.append(fact)
        self.reply(f"213 {';'.join(applied)}; {target}")

    def cmd_size(self, params: str | None) -> None:
        self.paths.require_level(MODE_INFO)
        path = self.paths.resolve(params)
        if not os.path.exists(path):
            raise CommandError(NOT_ACCESSIBLE, 550)
        if self.server.size_bug:
            # uftpd 3.5.x calls write_message(msg=...): every existing path fails (quirk 4)
            raise TypeError("Connector.write_message() got an unexpected keyword argument 'msg'")
        self.reply(f"213 {os.stat(path).st_size}")

    def cmd_mlst(self, params: str | None) -> None:
        self.paths.require_level(MODE_INFO)
        path = self.paths.resolve("." if params is None else params)
        if not os.path.exists(path):
            raise CommandError(NOT_ACCESSIBLE, 550, close_data=True)
        facts = listing_format.mlst_facts(os.path.normpath(path))
        self.reply_lines([f"250- Listing {path}", f" {facts}", "250 End"])

    def cmd_stat(self, params: str | None) -> None:
        self.paths.require_level(MODE_INFO)
        tokens = (params or "").split(" ", 1)
        as_file = tokens[0] != "N"  # the first token is *always* the mode (quirk 13)
        path = self.paths.resolve(tokens[1] if len(tokens) > 1 else ".")
        if not os.path.exists(path):
            raise OSError(NOT_ACCESSIBLE)
        if as_file or not os.path.isdir(path):
            entries = [path]
        else:
            entries = [os.path.normpath(os.path.join(path, name)) for name in os.listdir(path)]
        lines = ["211- Sending file list"]
        for entry in entries:
            try:
                line = " " + listing_format.stat_line(os.path.normpath(entry))
                line.encode("utf-8")
            except (OSError, UnicodeError):
                continue  # unlistable entries are skipped silently
            lines.append(line)
        lines.append("211 End of file list")
        self.reply_lines(lines)

    def cmd_list(self, params: str | None) -> Action:
        self.paths.require_level(MODE_INFO)
        path = params if params else "."
        if path == "-a":
            path = "."
        path = self.paths.resolve(path)
        return self._send_listing(path, listing_format.list_line, "\r\n")

    def cmd_mlsd(self, params: str | None) -> Action:
        self.paths.require_level(MODE_INFO)
        path = self.paths.resolve(params if params else ".")
        return self._send_listing(path, listing_format.mlst_facts, "\n")

    def _send_listing(self, path: str, formatter: Callable[[str], str], line_end: str) -> Action:
        """LIST/MLSD: 150, entries on the data channel, 226, then always close the data."""
        if not os.path.isdir(path):
            raise CommandError("Directory does not exist.", 550, close_data=True)
        try:
            names = os.listdir(path)
        except OSError as exc:
            raise CommandError(f"500 Error listing <{path}>: {exc}", 550, close_data=True) from None
        self.require_supported_channel()
        self.reply("150 OK")
        parts = []
        for name in names:
            try:
                parts.append((formatter(os.path.normpath(os.path.join(path, name))) + line_end).encode("utf-8"))
            except (OSError, UnicodeError):
                continue
        if self.channel is not None:
            try:
                self.channel.send_bytes(b"".join(parts))
            except OSError:
                pass  # uftpd swallows per-entry write errors: the reply is still 226
        self.range.reset()
        self.reply("226 File transfer successful")
        return Action.CLOSE_DATA
