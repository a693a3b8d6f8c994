"""One logged-in FTP session: the command loop and the session-level commands (§3.1, §3.5.1).

The loop reads one line at a time (empty lines ignored), dispatches on the upper-cased
verb, renders failures as ``NNN Error processing command '<VERB>': <message>`` and unknown
verbs as ``502 Command not implemented.``.  Commands are strictly sequential: while a
transfer or a passive accept runs the control channel is not read.
"""

from __future__ import annotations

import logging
import os
import shlex
from collections.abc import Callable

from .errors import CommandError, SessionEnd
from .fscommands import FileSystemCommands
from .paths import MODE_INFO, MODE_READ, MODE_WRITE
from .sessionstate import NOT_ACCESSIBLE, Action
from .transfers import TransferCommands

log = logging.getLogger(__name__)

#: FEAT lines of uftpd 3.5.3 before the optional CRYPTED- and the HASH line.  The merged
#: ``REST STREAMMFMT`` and ``MFF Modify;UNIX.mode;KEEP-ALIVE`` are uftpd's (missing commas)
#: and clients match features by exact line, so they must stay merged (§3.4, quirk 3).
FEATURES = (
    "PASV",
    "EPSV",
    "RANG STREAM",
    "REST STREAMMFMT",
    "MLSD",
    "MLST",
    "APPE",
    "MFF Modify;UNIX.mode;KEEP-ALIVE",
    "ARCHIVE",
    "UTF-8",
)

#: verbs whose parameters must never reach a log (they carry passwords)
_SECRET_VERBS = frozenset({"USER", "PASS", "SEND-FILE", "RECEIVE-FILE"})


def _version_tuple(version: str) -> tuple[int, ...] | None:
    try:
        return tuple(int(part) for part in version.split("."))
    except ValueError:
        return None


class FTPSession(FileSystemCommands, TransferCommands):
    """Command dispatcher of one session; handlers live in the two mixins."""

    def __init__(self, control, job, server):
        super().__init__(control, job, server)
        self._commands: dict[str, Callable[[str | None], Action | None]] = {
            "BYE": self.cmd_quit,
            "QUIT": self.cmd_quit,
            "SYST": self.cmd_syst,
            "FEAT": self.cmd_feat,
            "NOOP": self.cmd_noop,
            "PWD": self.cmd_pwd,
            "CWD": self.cmd_cwd,
            "CDUP": self.cmd_cdup,
            "MKD": self.cmd_mkd,
            "DELE": self.cmd_dele,
            "RNFR": self.cmd_rnfr,
            "RNTO": self.cmd_rnto,
            "RMD": self.cmd_rmd,
            "PASV": self.cmd_pasv,
            "EPSV": self.cmd_epsv,
            "LIST": self.cmd_list,
            "STAT": self.cmd_stat,
            "MLST": self.cmd_mlst,
            "MLSD": self.cmd_mlsd,
            "SIZE": self.cmd_size,
            "RANG": self.cmd_rang,
            "REST": self.cmd_rest,
            "RETR": self.cmd_retr,
            "ALLO": self.cmd_allo,
            "STOR": self.cmd_stor,
            "APPE": self.cmd_appe,
            "MFMT": self.cmd_mfmt,
            "MFF": self.cmd_mff,
            "TYPE": self.cmd_type,
            "KEEP-ALIVE": self.cmd_keep_alive,
            "OPTS": self.cmd_opts,
            "HASH": self.cmd_hash,
            "SYNC-TO-CLIENT": self.cmd_sync_to_client,
            "SYNC-TO-SERVER": self.cmd_sync_to_server,
            "SEND-FILE": self.cmd_send_file,
            "RECEIVE-FILE": self.cmd_receive_file,
            "RCP-STATUS": self.cmd_rcp_status,
            "RCP-ABORT": self.cmd_rcp_abort,
        }

    # -- the loop ------------------------------------------------------------------------
    def run(self) -> None:
        """Serve commands until QUIT, EOF or a silent session end."""
        log.info(
            "Processing UFTP session for <%s : %s>, initial_dir='%s', base='%s', encrypted=%s, compress=%s",
            self.job.user, self.control.peer_ip, self.paths.current_dir, self.paths.basedir,
            self.options.is_encrypt(), self.options.compress,
        )
        try:
            while True:
                line = self.control.read_line()
                if not line:
                    continue
                verb, sep, rest = line.partition(" ")
                verb = verb.upper()
                params = rest if sep else None
                log.debug("--> %s%s", verb, "" if verb in _SECRET_VERBS or params is None else " " + params)
                handler = self._commands.get(verb)
                if handler is None:
                    self.reply("502 Command not implemented.")
                    continue
                if self._execute(verb, handler, params) is Action.END:
                    break
        finally:
            self.close_data()

    def _execute(self, verb: str, handler, params: str | None) -> Action | None:
        try:
            action = handler(params)
            if action is Action.RETRIEVE:
                self._transfer(self.send_data)
            elif action is Action.STORE:
                self._transfer(self.recv_data)
            elif action is Action.CLOSE_DATA:
                self.close_data()
            elif action is Action.SEND_HASH:
                self.send_hash()
            return action
        except SessionEnd as end:
            log.info("ending session: %s", end)
            return Action.END
        except CommandError as err:
            self.reply(f"{err.code} Error processing command '{verb}': {err.message}")
            if err.close_data:
                self.close_data()
        except Exception as exc:  # uftpd renders any exception text as a 500
            log.debug("command %s failed", verb, exc_info=True)
            self.reply(f"500 Error processing command '{verb}': {exc}")
        return None

    def _transfer(self, run: Callable[[], None]) -> None:
        """A failure after ``150`` closes all data connections before the error reply."""
        try:
            run()
        except Exception:
            self.close_data()
            raise

    # -- session-level commands ---------------------------------------------------------
    def cmd_quit(self, _params: str | None) -> Action:
        self.close_data()
        return Action.END  # no reply (quirk 14)

    def cmd_syst(self, _params: str | None) -> None:
        self.reply("215 Unix Type: L8")

    def cmd_feat(self, _params: str | None) -> None:
        lines = ["211-Features:"]
        features = list(FEATURES)
        version = _version_tuple(self.server.version)
        if version is not None and version < (3, 5, 3):
            features.insert(features.index("ARCHIVE") + 1, "DPC2_LOGIN_OK")
        lines.extend(" " + feature for feature in features)
        if self.options.is_encrypt():
            lines.append(f" CRYPTED-{self.options.algo}")
        lines.append(f" HASH {self.options.hash_feature()}")
        lines.append("211 END")
        self.reply_lines(lines)

    def cmd_noop(self, params: str | None) -> None:
        try:
            requested = int(params)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            self.reply("200 OK")
            return
        self.options.num_streams = requested
        code = "222" if requested == self.options.num_streams else "223"
        self.reply(f"{code} Opening {self.options.num_streams} data connections")

    def cmd_type(self, params: str | None) -> None:
        mode = params.strip()  # type: ignore[union-attr]  # bare TYPE -> AttributeError text
        if mode == "ARCHIVE":
            self.options.archive_mode = True
        elif mode == "NORMAL":
            self.options.archive_mode = False
        self.reply("200 OK")

    def cmd_keep_alive(self, params: str | None) -> None:
        self.options.keep_alive = params.lower() in ("true", "yes", "1")  # type: ignore[union-attr]
        self.reply("200 OK")

    def cmd_opts(self, params: str | None) -> None:
        tokens = params.split(" ", 2)  # type: ignore[union-attr]  # bare OPTS -> 500, as uftpd
        option = tokens[0].upper()
        if len(tokens) > 1:
            value = tokens[1]
            self.options.set(option, value)
            self.reply(f"200 {option}={value}")  # echoes the *requested* value
        else:
            self.reply_lines(["211-OPTS", *(" " + line for line in self.options.listing()), "211 END"])

    # -- rsync and server-to-server copy: checks as uftpd, then refused -----------------
    @staticmethod
    def _exists_readable(path: str) -> bool:
        return os.path.exists(path) and os.access(path, os.R_OK)

    def cmd_sync_to_client(self, params: str | None) -> None:
        self.paths.require_level(MODE_READ)
        if not self._exists_readable(self.paths.resolve(params)):
            raise OSError(NOT_ACCESSIBLE)  # a plain 500 here, 550 for SYNC-TO-SERVER (uftpd)
        raise CommandError("SYNC is not supported by this test server")

    def cmd_sync_to_server(self, params: str | None) -> None:
        self.paths.require_level(MODE_WRITE)
        if not self._exists_readable(self.paths.resolve(params)):
            raise CommandError(NOT_ACCESSIBLE, 550)
        raise CommandError("SYNC is not supported by this test server")

    def _rcp_arguments(self, params: str | None) -> str:
        try:
            # shlex.split(None) would read stdin: treat a bare verb as a wrong count
            path, _remote, _server, _password = shlex.split(params or "")
        except ValueError:
            raise CommandError("Wrong parameter count", 501) from None
        return self.paths.resolve(path)

    def cmd_send_file(self, params: str | None) -> None:
        self.paths.require_level(MODE_READ)
        path = self._rcp_arguments(params)
        if not self._exists_readable(path):
            raise CommandError(NOT_ACCESSIBLE, 550)
        raise CommandError("server-to-server transfers are not supported by this test server")

    def cmd_receive_file(self, params: str | None) -> None:
        self.paths.require_level(MODE_WRITE)
        self._rcp_arguments(params)
        raise CommandError("server-to-server transfers are not supported by this test server")

    def cmd_rcp_status(self, params: str | None) -> None:
        self.paths.require_level(MODE_INFO)
        # uftpd passes the string to os.kill(): always fails (§3.5.9)
        raise TypeError(f"'{type(params).__name__}' object cannot be interpreted as an integer")

    cmd_rcp_abort = cmd_rcp_status
