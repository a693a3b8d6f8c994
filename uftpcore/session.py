"""A logged-in UFTP session: the user-facing API of uftpcore.

A ``Session`` owns one control connection and the data connection(s) of the transfer in
progress.  Every transfer follows the server's state machine (spec §3.7): ranges are sent as
``RANG start end`` with uftpd's *exclusive* end unless the server advertises ``RFC_RANG``;
uploads of whole files use ``ALLO`` (which truncates), ranged uploads use ``RANG`` (which never
truncates).  Received data goes straight into caller memory or into a temporary file with
``pwrite``; a download appears under its final name only when complete.
"""

from __future__ import annotations

import io
import logging
import os
import re
import select
import socket
import threading
from collections.abc import Callable
from typing import Any, BinaryIO

from . import dataconn, movers
from ._impl import get_fastpath
from .buffers import BufferPool
from .control import ControlConnection, Reply, reply_error
from .errors import (
    ConnectionClosedError,
    NotFoundError,
    ProtocolError,
    ReplyError,
    TransferIncompleteError,
    UFTPError,
    UFTPTimeoutError,
)
from .listing import FileInfo, format_modify, parse_facts_line, parse_mlsd, parse_stat_line
from .localfile import PartialFile
from .jparss import DEFAULT_BLOCK
from .streamcodec import block_size, padded_length
from .ticket import Ticket

log = logging.getLogger(__name__)

_BYTES_RE = re.compile(r"(\d+)\s+bytes")
_HASH_RE = re.compile(r"^(\S+)\s+(\d+)-(\d+)\s+([0-9a-fA-F]+)\s+(.*)$")

#: transfers up to this size may reuse a kept-alive data connection (exact byte counts only).
KEEPALIVE_MAX = 4 << 20
HASH_ALGORITHMS = ("MD5", "SHA-1", "SHA-256", "SHA-512")

ProgressCallback = Callable[[int], None]


class Features:
    """What FEAT told us, tolerant of uftpd's merged lines (spec §3.4)."""

    def __init__(self, lines: list[str]):
        self.lines = [ln.strip() for ln in lines]
        joined = " ".join(self.lines)
        self.rfc_rang = "RFC_RANG" in self.lines
        self.keep_alive = "KEEP-ALIVE" in joined
        self.mfmt = "MFMT" in joined
        self.epsv = "EPSV" in self.lines or not self.lines
        self.archive = "ARCHIVE" in self.lines
        self.encryption = next((ln.split("-", 1)[1] for ln in self.lines if ln.startswith("CRYPTED-")), None)
        self.hash_algorithms: list[str] = []
        self.hash_selected: str | None = None
        for ln in self.lines:
            if ln.startswith("HASH "):
                for algo in ln[5:].split(";"):
                    algo = algo.strip()
                    if algo.endswith("*"):
                        algo = algo[:-1]
                        self.hash_selected = algo
                    if algo:
                        self.hash_algorithms.append(algo)

    def __repr__(self) -> str:
        return f"Features({self.lines!r})"


class Session:
    """One UFTP control session with its data connections.

    Thread-safe in the sense that concurrent calls are serialised (the protocol allows one
    command at a time); use several sessions for parallelism.
    """

    def __init__(self, ctrl: ControlConnection, ticket: Ticket | None = None, *, timeout: float = 30.0,
                 buffer_size: int = 1 << 20, keep_alive: bool = True, implementation: str | None = None,
                 streams: int | None = None, key: bytes | None = None, algo: str | None = None,
                 compress: bool | None = None):
        self._ctrl = ctrl
        #: the data-channel hot loops (Cython or pure Python), see ``uftpcore._impl``.
        self._fp = get_fastpath(implementation)
        self.implementation: str = self._fp.IMPLEMENTATION
        self.ticket = ticket
        self.timeout = timeout
        self._lock = threading.RLock()
        self._pool = BufferPool(buffer_size)
        self.features = Features([])
        self.server_version = ""
        #: the stream count the server expects for the next data-connection set; None = unknown.
        self._expected_streams: int | None = ticket.streams if ticket is not None else None
        self._data: list[socket.socket] = []
        #: default stream count and codec settings of this session's transfers (from the ticket).
        self.streams: int = streams if streams is not None else (ticket.streams if ticket is not None else 1)
        self.key: bytes | None = key if key is not None else (ticket.key if ticket is not None else None)
        self.algo: str | None = (algo or (ticket.algo if ticket is not None else None)
                                 or (("AES" if len(self.key) in (32, 40, 48) else "BLOWFISH") if self.key else None))
        self.compress: bool = compress if compress is not None else (ticket.compress if ticket is not None else False)
        #: stream count of the last data-connection set (after any 223 from the server).
        self.streams_used = 1
        self._keep_alive_wanted = keep_alive
        self._keep_alive_on = False
        self._size_broken = False
        self._hash_algo: str | None = None
        #: a RANG/REST is pending on the server (it survives failed commands, spec §3.7).
        self._range_dirty = False

    # ------------------------------------------------------------------ lifecycle
    def _handshake(self, secret: str) -> None:
        greeting = self._ctrl.login(secret)
        m = re.match(r"UFTPD (.*?),", greeting.text)
        self.server_version = m.group(1) if m else greeting.text
        try:
            feat = self._ctrl.command("FEAT", (211,))
            self.features = Features(feat.lines)
        except ReplyError:
            self.features = Features([])
        self._hash_algo = self.features.hash_selected

    def close(self) -> None:
        """Close data connections and the control connection (``QUIT`` gets no reply)."""
        with self._lock:
            self._drop_data()
            self._ctrl.close()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._ctrl.closed else "open"
        return f"<uftpcore.Session {state} {self.server_version!r}>"

    @property
    def closed(self) -> bool:
        return self._ctrl.closed

    # ------------------------------------------------------------------ raw commands
    def command(self, line: str, expect: tuple[int, ...] | None = None) -> Reply:
        """Send a raw control command (escape hatch for commands without a method)."""
        with self._lock:
            return self._ctrl.command(line, expect)

    def noop(self) -> None:
        with self._lock:
            self._ctrl.command("NOOP", (200,))

    def system(self) -> str:
        with self._lock:
            return self._ctrl.command("SYST", (215,)).text

    def set_option(self, name: str, value: Any) -> str:
        """``OPTS NAME value`` (spec §3.5.1); returns the server's reply text."""
        if isinstance(value, bool):
            value = "true" if value else "false"
        with self._lock:
            return self._ctrl.command(f"OPTS {name} {value}", (200,)).text

    def keep_alive(self, on: bool) -> None:
        with self._lock:
            self._set_keep_alive(on)

    def _set_keep_alive(self, on: bool) -> None:
        if on == self._keep_alive_on:
            return
        self._ctrl.command(f"KEEP-ALIVE {'true' if on else 'false'}", (200,))
        self._keep_alive_on = on
        if not on:
            self._drop_data()

    # ------------------------------------------------------------------ navigation
    def pwd(self) -> str:
        with self._lock:
            text = self._ctrl.command("PWD", (257,)).text
        m = re.match(r'"((?:[^"]|"")*)"', text)
        return m.group(1).replace('""', '"') if m else text

    def cwd(self, path: str) -> None:
        with self._lock:
            self._ctrl.command("CWD " + _arg(path), (200, 250))

    def cdup(self) -> None:
        with self._lock:
            self._ctrl.command("CDUP", (200, 250))

    # ------------------------------------------------------------------ metadata
    def stat(self, path: str) -> FileInfo:
        """``MLST`` (one round trip)."""
        with self._lock:
            reply = self._ctrl.command("MLST " + _arg(path), (250,))
        facts = [ln for ln in reply.lines if ln.strip()]
        if len(facts) != 1:
            raise ProtocolError(f"MLST reply for {path!r} has {len(facts)} fact lines")
        header = reply.header.strip()
        abspath = header[len("Listing "):].strip() if header.startswith("Listing ") else ""
        return parse_facts_line(facts[0], abspath)

    def exists(self, path: str) -> bool:
        try:
            self.stat(path)
            return True
        except NotFoundError:
            return False

    def size(self, path: str) -> int:
        """``SIZE``, falling back to ``MLST`` where SIZE is broken (uftpd 3.5.x)."""
        with self._lock:
            if not self._size_broken:
                try:
                    return int(self._ctrl.command("SIZE " + _arg(path), (213,)).text.split()[0])
                except NotFoundError:
                    raise
                except (ReplyError, ValueError, IndexError):
                    self._size_broken = True
            return self.stat(path).size

    def listdir(self, path: str = ".") -> list[FileInfo]:
        """``MLSD``: one round trip for the whole directory.

        Encrypted or compressed sessions list with ``STAT N`` on the control channel instead:
        uftpd's coded data connectors cannot write listing lines (it sends ``150``, no entries,
        ``226``, and closing the unused connector emits a gzip member / a padding block).
        """
        if self.key is not None or self.compress:
            try:
                return [info for info in self.stat_listing(path) if info.name not in (".", "..")]
            except ReplyError as exc:
                if exc.code == 500 and "does not exist" in exc.text:
                    raise NotFoundError(exc.code, exc.text, "STAT") from exc
                raise
        text = self._listing("MLSD", path)
        return parse_mlsd(text)

    def list_lines(self, path: str = ".") -> list[str]:
        """``LIST`` in ``ls -l`` style (``\\r\\n`` separated lines)."""
        return [ln for ln in self._listing("LIST", path).splitlines() if ln]

    def nlst(self, path: str = ".") -> list[str]:
        """Names in a directory; uses MLSD since uftpd does not implement NLST."""
        return [info.name for info in self.listdir(path)]

    def stat_listing(self, path: str = ".", directory: bool = True) -> list[FileInfo]:
        """``STAT N <dir>`` (or ``STAT F <path>``) on the control channel; zone-free mtimes."""
        flag = "N" if directory else "F"
        with self._lock:
            reply = self._ctrl.command(f"STAT {flag} {_arg(path)}", (211, 212, 213))
        return [parse_stat_line(" " + ln) for ln in reply.lines if ln.strip()]

    def _listing(self, verb: str, path: str) -> str:
        with self._lock:
            socks = self._open_data(1)
            try:
                reply = self._ctrl.command(f"{verb} {_arg(path)}", (150, 125))
            except ReplyError:
                self._drop_data()
                raise
            chunks = bytearray()
            buf = self._pool.get()
            try:
                view = memoryview(buf)
                while True:
                    n = self._fp.recv_into(socks[0], view[:65536], self.timeout)
                    if n == 0:
                        break
                    chunks += view[:n]
                    if n < 65536:
                        # short fill means EOF was seen inside recv_into
                        break
            finally:
                self._pool.put(buf)
                self._drop_data()
            self._final_reply(verb)
            del reply
            return chunks.decode("utf-8", "replace")

    # ------------------------------------------------------------------ file system changes
    def mkdir(self, path: str) -> None:
        with self._lock:
            self._ctrl.command("MKD " + _arg(path), (257, 250, 200))

    def makedirs(self, path: str) -> None:
        """Create ``path`` and missing parents (uftpd's MKD creates no parents)."""
        parts = [p for p in path.split("/") if p]
        cur = "/" if path.startswith("/") else ""
        for part in parts:
            cur = f"{cur}{part}" if cur in ("", "/") else f"{cur}/{part}"
            try:
                info = self.stat(cur)
                if not info.is_dir:
                    raise UFTPError(f"{cur!r} exists and is not a directory")
            except NotFoundError:
                self.mkdir(cur)

    def rmdir(self, path: str) -> None:
        with self._lock:
            self._ctrl.command("RMD " + _arg(path), (200, 250))

    def remove(self, path: str) -> None:
        with self._lock:
            self._ctrl.command("DELE " + _arg(path), (200, 250))

    def rename(self, source: str, target: str) -> None:
        with self._lock:
            self._ctrl.command("RNFR " + _arg(source), (350,))
            self._ctrl.command("RNTO " + _arg(target), (200, 250))

    def set_mtime(self, path: str, mtime: float) -> None:
        """``MFMT`` in the server's local time (spec quirk 10)."""
        self._with_spaceless_path(path, lambda p: self._ctrl.command(f"MFMT {format_modify(mtime)} {p}", (213, 200)))

    def chmod(self, path: str, mode: int) -> None:
        """``MFF UNIX.mode=<octal>; <path>``."""
        self._with_spaceless_path(path, lambda p: self._ctrl.command(f"MFF UNIX.mode={mode & 0o7777:o}; {p}", (213, 200)))

    def _with_spaceless_path(self, path: str, action: Callable[[str], Reply]) -> None:
        # uftpd splits MFMT/MFF arguments on spaces (quirk 20): address the file relative to
        # its directory when only the directory part contains spaces.
        path = _arg(path)
        with self._lock:
            if " " not in path:
                action(path)
                return
            parent, _, name = path.rpartition("/")
            if " " in name:
                raise UFTPError(f"uftpd cannot set attributes of names containing spaces: {name!r}")
            here = self.pwd()
            self._ctrl.command("CWD " + (parent or "/"), (200, 250))
            try:
                action(name)
            finally:
                self._ctrl.command("CWD " + here, (200, 250))

    # ------------------------------------------------------------------ checksums
    def checksum(self, path: str, algo: str = "SHA-256", offset: int = 0, length: int | None = None) -> str:
        """Server-side ``HASH`` of the file (or a range); returns the hex digest."""
        return self.hash(path, algo, offset, length)[3]

    def hash(self, path: str, algo: str = "SHA-256", offset: int = 0,
             length: int | None = None) -> tuple[str, int, int, str, str]:
        """``HASH``: returns ``(algo, first, last, hexdigest, abspath)`` as the server reports."""
        algo = algo.upper()
        if algo not in HASH_ALGORITHMS:
            raise ValueError(f"unsupported hash algorithm {algo!r}; use one of {HASH_ALGORITHMS}")
        with self._lock:
            if self._hash_algo != algo:
                self._ctrl.command(f"OPTS HASH {algo}", (200,))
                self._hash_algo = algo
            if length is not None:
                self._send_range(offset, length)
            elif offset:
                self._ctrl.command(f"REST {offset}", (350,))
                self._range_dirty = True
            else:
                self._reset_range()
            reply = self._ctrl.command("HASH " + _arg(path), (213,), skip_keepalive=True)
            self._range_dirty = False
        m = _HASH_RE.match(reply.text)
        if not m:
            raise ProtocolError(f"cannot parse HASH reply {reply.text!r}")
        return (m.group(1), int(m.group(2)), int(m.group(3)), m.group(4).lower(), m.group(5))

    # ------------------------------------------------------------------ reading
    def read(self, path: str, offset: int = 0, length: int | None = None, *, streams: int | None = None) -> bytes:
        """Read a whole file or a range into a new ``bytes`` object (short only at end of file).

        With ``length=None`` the size is learnt with MLST first, so the result is allocated
        once at its exact size (and, compiled, filled in place without a copy).
        """
        with self._lock:
            if length is None:
                length = max(0, self.stat(path).size - offset)
            if length == 0:
                return b""
            if self._plain_single(streams):
                out: list[bytes] = []

                def sink(sock: socket.socket, count: int) -> int:
                    data = self._fp.new_bytes_from_socket(sock, count, self.timeout)
                    out.append(data)
                    return len(data)

                self._retrieve(path, offset, length, _CallableDest(sink), streams=1)
                return out[0]
            buf = bytearray(length)
            n = self._retrieve(path, offset, length, movers.BufferDest(memoryview(buf)), streams=streams)
            del buf[n:]
            return bytes(buf)

    def read_into(self, path: str, buffer: Any, offset: int = 0, *, streams: int | None = None) -> int:
        """Read ``len(buffer)`` bytes from ``offset`` straight into ``buffer`` (bytearray,
        memoryview, numpy array, mmap ...); returns the byte count (short only at EOF)."""
        view = memoryview(buffer).cast("B")
        try:
            if len(view) == 0:
                return 0
            with self._lock:
                return self._retrieve(path, offset, len(view), movers.BufferDest(view), streams=streams)
        finally:
            view.release()

    def read_range_exact(self, path: str, buffer: Any, offset: int) -> int:
        """Like ``read_into`` when the caller *knows* the range lies inside the file (it clamped
        it with a fresh size): small plain reads then reuse a kept-alive data connection."""
        view = memoryview(buffer).cast("B")
        try:
            if len(view) == 0:
                return 0
            with self._lock:
                if (len(view) <= KEEPALIVE_MAX and self._keep_alive_wanted and self.features.keep_alive
                        and self._plain_single(None)):
                    return self._retrieve_keepalive(path, offset, view)
                return self._retrieve(path, offset, len(view), movers.BufferDest(view))
        finally:
            view.release()

    def open(self, path: str, mode: str = "rb", buffering: int = 256 * 1024, size: int | None = None):
        """A file object on this session: ``rb`` does range reads (seekable), ``wb`` streams
        one upload (closed = complete).  ``buffering=0`` returns the raw object."""
        from .rangefile import UFTPRawReader, UFTPRawWriter

        if mode in ("rb", "r"):
            raw: io.RawIOBase = UFTPRawReader(self, path, size=size)
            return raw if buffering == 0 else io.BufferedReader(raw, buffer_size=max(buffering, 4096))
        if mode in ("wb", "w"):
            raw = UFTPRawWriter(self, path)
            return raw if buffering == 0 else io.BufferedWriter(raw, buffer_size=max(buffering, 4096))
        raise ValueError(f"unsupported mode {mode!r} (use 'rb' or 'wb')")

    def download(self, remote: str, local_path: str | os.PathLike, offset: int = 0, length: int | None = None,
                 *, streams: int | None = None, progress: ProgressCallback | None = None,
                 preserve_mtime: bool = False) -> int:
        """Download ``remote`` (or the range ``[offset, offset+length)``) into ``local_path``.

        Data goes to a pre-allocated temporary file next to the target with ``pwrite``; it is
        renamed to ``local_path`` only after every byte arrived.  Returns the byte count.
        """
        with self._lock:
            info = self.stat(remote)
            if info.is_dir:
                raise UFTPError(f"{remote!r} is a directory")
            avail = max(0, info.size - offset)
            want = avail if length is None else min(length, avail)
            with PartialFile(local_path, want) as part:
                got = self.download_to_fd(remote, part.fd, offset, want, streams=streams, progress=progress)
                if got != want:
                    raise TransferIncompleteError(
                        f"download of {remote!r} ended after {got} of {want} bytes", want, got)
                part.commit(mtime=info.mtime if preserve_mtime else None)
            return got

    def download_to_fd(self, remote: str, fd: int, offset: int, length: int, *, local_offset: int = 0,
                       streams: int | None = None, progress: ProgressCallback | None = None) -> int:
        """Receive ``length`` bytes of ``remote`` from ``offset`` and ``pwrite`` them to ``fd`` at
        ``local_offset``.  The building block of parallel ranged downloads."""
        if length == 0:
            return 0
        with self._lock:
            dest = movers.FileDest(fd, local_offset, self._pool.get, self._pool.put)
            return self._retrieve(remote, offset, length, dest, streams=streams, progress=progress)

    def download_fileobj(self, remote: str, fileobj: BinaryIO, offset: int = 0, length: int | None = None) -> int:
        """Stream ``remote`` into a writable file object (pipes, sockets), in pooled chunks."""
        with self._lock:
            if length is None:
                length = max(0, self.stat(remote).size - offset)
            done = 0
            buf = self._pool.get()
            try:
                view = memoryview(buf)
                while done < length:
                    n = min(len(view), length - done)
                    got = self._retrieve(remote, offset + done, n, movers.BufferDest(view[:n]))
                    fileobj.write(view[:got])
                    done += got
                    if got < n:
                        break
            finally:
                self._pool.put(buf)
            return done

    # ------------------------------------------------------------------ writing
    def upload(self, local_path: str | os.PathLike, remote: str, offset: int = 0, *, streams: int | None = None,
               progress: ProgressCallback | None = None, preserve_mtime: bool = False) -> int:
        """Upload a local file (plain: ``sendfile``).

        ``offset == 0`` replaces the remote file (``ALLO`` truncates); ``offset > 0`` writes the
        file's bytes at that remote offset without truncating (``RANG``).
        """
        with open(local_path, "rb") as f:
            st = os.fstat(f.fileno())
            sent = self.upload_from_fd(f.fileno(), remote, 0, st.st_size, remote_offset=offset, streams=streams,
                                       progress=progress)
        if preserve_mtime:
            self.set_mtime(remote, st.st_mtime)
        return sent

    def upload_from_fd(self, fd: int, remote: str, local_offset: int, length: int, *, remote_offset: int = 0,
                       truncate: bool | None = None, streams: int | None = None,
                       progress: ProgressCallback | None = None) -> int:
        """Send ``length`` bytes of ``fd`` from ``local_offset`` to ``remote`` at ``remote_offset``.

        ``truncate`` defaults to ``remote_offset == 0``: a whole-file upload replaces the file, a
        ranged one never truncates (parallel ranged uploads rely on that).
        """
        if truncate is None:
            truncate = remote_offset == 0
        with self._lock:
            return self._store(remote, remote_offset, truncate, movers.FileSource(fd, local_offset, length),
                               streams=streams, progress=progress)

    def write(self, remote: str, data: Any, offset: int = 0, *, truncate: bool | None = None,
              streams: int | None = None) -> int:
        """Write a buffer (bytes, bytearray, memoryview, numpy array) to ``remote`` at ``offset``."""
        view = memoryview(data).cast("B")
        try:
            if truncate is None:
                truncate = offset == 0
            with self._lock:
                return self._store(remote, offset, truncate, movers.BufferSource(view), streams=streams)
        finally:
            view.release()

    def upload_fileobj(self, fileobj: BinaryIO, remote: str, offset: int = 0, length: int | None = None) -> int:
        """Stream a readable file object to ``remote`` on one stream.  Without ``length`` the
        data connection is closed to mark the end (uftpd then reads until EOF)."""
        with self._lock:
            buf = self._pool.get()
            try:
                return self._store(remote, offset, offset == 0, movers.StreamSource(fileobj, length, buf), streams=1)
            finally:
                self._pool.put(buf)

    # ------------------------------------------------------------------ raw data sockets
    def start_transfer(self, verb: str, path: str, offset: int = 0, length: int | None = None) -> socket.socket:
        """Begin a plain single-stream ``RETR`` or ``STOR`` and hand its data socket to the caller.

        For streaming callers (PyUNICORE's ``get_read_socket``/``get_write_socket``, writers that
        produce data incrementally).  ``STOR`` with ``offset == 0`` and no length replaces the
        file (read until EOF); with an offset it writes there without truncating.  The caller
        reads/writes the socket, then calls ``finish_transfer()``, which closes the socket and
        reads the server's final reply; the session is locked in between.
        """
        verb = verb.upper()
        if verb not in ("RETR", "STOR"):
            raise ValueError("verb must be RETR or STOR")
        if self.key is not None or self.compress:
            raise UFTPError("raw data sockets carry plain data; this session is encrypted or compressed")
        self._lock.acquire()
        try:
            if self._keep_alive_on:
                self._set_keep_alive(False)
            socks = self._open_data(1)
            if length is not None:
                self._send_range(offset, length)
            elif offset > 0:
                if verb == "STOR":
                    self._send_range(offset, (1 << 62) - offset)  # RANG never truncates
                else:
                    self._ctrl.command(f"REST {offset}", (350,))
                    self._range_dirty = True
            else:
                self._reset_range()
            self._ctrl.command(f"{verb} {_arg(path)}", (150, 125))
            self._raw_verb = verb
            return socks[0]
        except BaseException:
            self._lock.release()
            raise

    def finish_transfer(self) -> Reply:
        """End a transfer begun with ``start_transfer``: close the data socket, read 226."""
        verb = getattr(self, "_raw_verb", None)
        if verb is None:
            raise UFTPError("no raw transfer in progress")
        try:
            for sock in self._data:
                try:
                    sock.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
            self._drop_data()
            return self._final_reply(verb)
        finally:
            self._raw_verb = None
            self._lock.release()

    def abort_transfer(self) -> None:
        """Give up a raw transfer: the connection state is unknown, so the session closes."""
        if getattr(self, "_raw_verb", None) is None:
            return
        self._raw_verb = None
        try:
            self._abort_transfer()
        finally:
            self._lock.release()

    # ------------------------------------------------------------------ transfer machinery
    @property
    def encrypted(self) -> bool:
        return self.key is not None

    def _plain_single(self, streams: int | None) -> bool:
        return (streams or self.streams) == 1 and self.key is None and not self.compress

    def _plan(self, length: int, streams: int | None) -> list[tuple[int, int, int]]:
        """Split a transfer into ``(start, length, streams)`` parts.

        Encryption over several streams is broken in uftpd unless every stream ends on a
        cipher block boundary (spec §6.5): use N in {2, 4, 8, 16} over whole 16 KiB blocks and
        move the unaligned tail on a single stream.  Encrypted+compressed transfers, whose
        stream lengths cannot be controlled, use one stream.
        """
        n = max(1, int(streams or self.streams))
        if n == 1 or length <= 0:
            return [(0, length, 1)]
        if self.key is None:
            return [(0, length, n)]
        if self.compress:
            return [(0, length, 1)]
        n = min(16, 1 << (n.bit_length() - 1))
        main = length - length % DEFAULT_BLOCK
        if main == 0:
            return [(0, length, 1)]
        parts = [(0, main, n)]
        if main < length:
            parts.append((main, length - main, 1))
        return parts

    def _send_range(self, offset: int, length: int) -> None:
        """``RANG`` with uftpd's exclusive end, or an inclusive end where ``RFC_RANG`` is advertised."""
        if offset < 0 or length < 0:
            raise ValueError("offset and length must not be negative")
        end = offset + length - (1 if self.features.rfc_rang else 0)
        self._range_dirty = True
        self._ctrl.command(f"RANG {offset} {end}", (350,))

    def _reset_range(self) -> None:
        """Clear a range left behind by a failed command before a command that relies on none."""
        if self._range_dirty:
            self._ctrl.command("RANG 1 0", (350,))
            self._range_dirty = False

    def _open_data(self, streams: int) -> list[socket.socket]:
        """NOOP n (if the server expects another count) and n sequential EPSV/PASV + connect.

        A ``223`` reply lowers n to the server's limit; ``self.streams_used`` records it.
        """
        if self._data:
            if len(self._data) == streams and _still_open(self._data):
                return self._data
            self._drop_data()
        if self._expected_streams != streams:
            reply = self._ctrl.command(f"NOOP {streams}", (200, 222, 223))
            if reply.code in (222, 223):
                granted = dataconn.parse_stream_count(reply.text)
                if granted < 1:
                    raise ProtocolError(f"server offers {granted} data connections")
                if granted != streams:
                    log.info("server limits the stream count to %d (asked for %d)", granted, streams)
                if self.key is not None and granted > 1 and granted & (granted - 1):
                    # encrypted multi-stream transfers are only loss-free with N in {2, 4, 8, 16}
                    # (spec §6.5): settle for the largest such count the server allows
                    granted = 1 << (granted.bit_length() - 1)
                    reply = self._ctrl.command(f"NOOP {granted}", (200, 222, 223))
                    granted = dataconn.parse_stream_count(reply.text) if reply.code in (222, 223) else granted
                streams = granted
            self._expected_streams = streams
        self._data = dataconn.open_passive(self._ctrl, streams, self.timeout, self.features.epsv)
        self.streams_used = streams
        return self._data

    def _drop_data(self) -> None:
        """Close our data sockets; uftpd resets its expected stream count to 1 on close."""
        if self._data:
            for s in self._data:
                try:
                    s.close()
                except OSError:
                    pass
            self._data = []
            self._expected_streams = 1

    def _final_reply(self, verb: str) -> Reply:
        reply = self._ctrl.read_reply()
        self._range_dirty = False
        if reply.code != 226 and reply.code != 250:
            raise reply_error(reply, verb) if not reply.ok else ProtocolError(
                f"unexpected reply to {verb}: {reply.code} {reply.text}")
        return reply

    def _retrieve(self, path: str, offset: int, length: int, dest: Any, *, streams: int | None = None,
                  progress: ProgressCallback | None = None) -> int:
        """RANG + RETR for every part of the plan; returns the bytes placed (short only at EOF)."""
        if self._keep_alive_on:
            self._set_keep_alive(False)
        total = 0
        for start, part_len, n in self._plan(length, streams):
            socks = self._open_data(n)
            self._send_range(offset + start, part_len)
            reply = self._ctrl.command("RETR " + _arg(path), (150, 125))
            m = _BYTES_RE.search(reply.text)
            count = min(part_len, int(m.group(1))) if m else part_len
            part_dest = dest.shifted(start) if start else dest
            try:
                got = movers.receive(self._fp, socks, part_dest, count, self.timeout, self.key, self.algo,
                                     self.compress)
            except BaseException:
                self._abort_transfer()
                raise
            finally:
                self._drop_data()
            self._final_reply("RETR")
            total += got
            if progress is not None:
                progress(got)
            if got < part_len:
                break
        return total

    def _retrieve_keepalive(self, path: str, offset: int, view: memoryview) -> int:
        """A small exact-size range read on a kept-alive connection (no EPSV per read).

        The 226 may arrive before the data (different sockets), and a file that shrank since the
        caller learnt its size would leave us waiting for bytes that never come: we watch both
        sockets and stop with a clear error once 226 came and the data went quiet.
        """
        self._set_keep_alive(True)
        socks = self._open_data(1)
        sock = socks[0]
        count = len(view)
        # RANG and RETR go out in one write (one round trip instead of two); uftpd reads its
        # control lines in order, and any unexpected reply closes the session.
        end = offset + count - (1 if self.features.rfc_rang else 0)
        self._range_dirty = True
        self._ctrl.pipeline([f"RANG {offset} {end}", "RETR " + _arg(path)], [(350,), (150, 125)])
        got = 0
        final: Reply | None = None
        ctrl_sock = self._ctrl.sock
        poller = select.poll()
        poller.register(sock.fileno(), select.POLLIN)
        poller.register(ctrl_sock.fileno(), select.POLLIN)
        sock.setblocking(False)
        # the connection stays open between small reads: delayed ACKs would hold the server's
        # next small segment back (~40 ms), so ACK at once
        _quickack(sock)
        try:
            while got < count:
                events = poller.poll(int(self.timeout * 1000) if final is None else 200)
                if not events:
                    if final is not None:
                        break
                    raise UFTPTimeoutError(f"range read of {path!r} stalled after {got} bytes")
                for fd, _ in events:
                    if fd == ctrl_sock.fileno() and final is None:
                        final = self._ctrl.read_reply()
                        poller.unregister(ctrl_sock.fileno())
                    elif fd == sock.fileno():
                        _quickack(sock)
                        try:
                            n = sock.recv_into(view[got:], count - got)
                        except BlockingIOError:
                            continue
                        if n == 0:
                            raise ConnectionClosedError(f"data connection closed after {got} of {count} bytes")
                        got += n
        except BaseException:
            self._abort_transfer()
            raise
        if final is None:
            final = self._ctrl.read_reply()
        self._range_dirty = False
        if final.code != 226:
            self._drop_data()
            raise reply_error(final, "RETR") if not final.ok else ProtocolError(f"unexpected {final.code} {final.text}")
        if got != count:
            self._drop_data()
            raise TransferIncompleteError(f"RETR {path!r}: {got} of {count} bytes arrived (file shrank?)", count, got)
        return got

    def _store(self, remote: str, offset: int, truncate: bool, source: Any, *, streams: int | None = None,
               progress: ProgressCallback | None = None) -> int:
        """ALLO/RANG + STOR for every part of the plan (truncation rules of spec §3.7).

        A whole-file upload truncates with ``ALLO n`` (or, encrypted, where uftpd ignores ALLO,
        by a STOR without range); the parts after the first are ranged and never truncate.
        Encrypted single streams avoid uftpd's padding defect (§6.4) by choosing the split.
        """
        if self._keep_alive_on:
            self._set_keep_alive(False)
        length = source.length
        if isinstance(source, movers.StreamSource):  # file objects: one sequential stream
            if length is None and not truncate:
                raise ValueError("a ranged upload needs its length")
            return self._store_part(remote, None if truncate else (offset, length), length, source, 1, progress)
        if truncate and offset:
            raise ValueError("a truncating upload must start at offset 0")
        if length == 0 and not truncate:
            return 0  # an empty ranged write changes nothing
        plan = self._plan(length, streams)
        if self.key is not None and not self.compress:
            plan = _split_for_padding_bug(plan, streams_of=lambda p: p[2], bs=block_size(self.algo))
        sent = 0
        for i, (start, part_len, n) in enumerate(plan):
            part = source.part(start, part_len) if len(plan) > 1 else source
            if i == 0 and truncate:
                rng = None  # ALLO (or, encrypted, nothing): truncates
            else:
                rng = (offset + start, part_len)
            sent += self._store_part(remote, rng, part_len, part, n, progress)
        return sent

    def _store_part(self, remote: str, rng: tuple[int, int] | None, length: int | None, source: Any, streams: int,
                    progress: ProgressCallback | None) -> int:
        socks = self._open_data(streams)
        if rng is not None:
            self._send_range(*rng)
        else:
            self._reset_range()
            if length is not None and self.key is None:
                self._ctrl.command(f"ALLO {length}", (200,))
        self._ctrl.command("STOR " + _arg(remote), (150, 125))
        try:
            avoid = AVOID_MULTIPLE if (self.key is not None and len(socks) == 1) else 0
            sent = movers.send(self._fp, socks, source, self.timeout, self.key, self.algo, self.compress,
                               avoid_multiple=avoid) if length != 0 else 0
            # Mark the end: uftpd reads until EOF without a length (and always when encrypted).
            for s in socks:
                try:
                    s.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
        except (BrokenPipeError, ConnectionResetError) as exc:
            # uftpd closed the data connections early: because a compressed upload reached its
            # ALLO/RANG count of *uncompressed* bytes (spec §7.1 — the end of the gzip stream, a
            # sync flush or the trailer, then hits a closed connection), or because the transfer
            # failed (a 500 follows).  Its reply tells which.
            reply = self._reply_after_broken_upload()
            if reply is None:
                self._abort_transfer()
                raise
            self._range_dirty = False
            self._drop_data()
            if reply.code == 226 and self.compress and self.key is None and length is not None:
                if progress is not None:
                    progress(length)
                return length
            if reply.ok:
                self._abort_transfer()
                raise ProtocolError(f"data connection of STOR {remote!r} broke ({exc}) but the server "
                                    f"replied {reply.code} {reply.text}") from exc
            raise reply_error(reply, "STOR") from exc
        except BaseException:
            self._abort_transfer()
            raise
        self._final_reply("STOR")
        self._drop_data()
        if length is not None and sent != length:
            raise TransferIncompleteError(f"STOR {remote!r}: sent {sent} of {length} bytes", length, sent)
        if progress is not None:
            progress(sent)
        return sent

    def _reply_after_broken_upload(self) -> Reply | None:
        """The server's reply after it closed an upload's data connection, if one comes soon."""
        try:
            if not self._ctrl._buf:
                ready, _, _ = select.select([self._ctrl.sock], [], [], min(self.timeout, 5.0))
                if not ready:
                    return None
            return self._ctrl.read_reply()
        except (UFTPError, OSError, ValueError):
            return None

    def _abort_transfer(self) -> None:
        """After a failed transfer the session state is unknown: drop data and control."""
        self._drop_data()
        self._ctrl.close(send_quit=False)


class _CallableDest:
    """Adapter: a ``sink(sock, count)`` function as a single-stream plain destination."""

    def __init__(self, sink: Callable[[socket.socket, int], int]):
        self._sink = sink

    def recv_plain(self, fp: Any, sock: socket.socket, count: int, timeout: float) -> int:
        return self._sink(sock, count)


#: uftpd reads uploads in chunks of 1 MiB (3.5.3) or 64 KiB (older) and leaves the padding in
#: the file when the ciphertext length is a multiple of its chunk (spec §6.4).
AVOID_MULTIPLE = 65536


def _split_for_padding_bug(plan: list[tuple[int, int, int]], streams_of: Callable, bs: int) -> list[tuple[int, int, int]]:
    """Encrypted single-stream parts whose padded length is a multiple of 64 KiB are split
    in two (the first one cipher block shorter), so uftpd's last read is always short."""
    out = []
    for start, length, n in plan:
        if n == 1 and length > bs and padded_length(length, bs) % AVOID_MULTIPLE == 0:
            out.append((start, length - bs, 1))
            out.append((start + length - bs, bs, 1))
        else:
            out.append((start, length, n))
    return out


def _quickack(sock: socket.socket) -> None:
    if hasattr(socket, "TCP_QUICKACK"):
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        except OSError:
            pass


def _still_open(socks: list[socket.socket]) -> bool:
    """A kept-alive data socket the server has closed reads as EOF: check before reusing."""
    for s in socks:
        try:
            r, _, _ = select.select([s], [], [], 0)
            if r:
                s.setblocking(False)
                try:
                    if s.recv(1, socket.MSG_PEEK) == b"":
                        return False
                    return False  # unexpected stray bytes: never reuse
                except BlockingIOError:
                    pass
        except (OSError, ValueError):
            return False
    return True


def _arg(path: str) -> str:
    path = os.fspath(path)
    if "\n" in path or "\r" in path:
        raise ValueError(f"path contains a line break: {path!r}")
    if path != path.strip():
        raise ValueError(f"uftpd cannot address names with leading/trailing blanks: {path!r}")
    return path


def _readinto(fileobj: BinaryIO, view: memoryview) -> int:
    readinto = getattr(fileobj, "readinto", None)
    if readinto is not None:
        return readinto(view) or 0
    data = fileobj.read(len(view))
    view[: len(data)] = data
    return len(data)


def connect(ticket_or_host: Ticket | str, port: int | None = None, secret: str | None = None, *,
            timeout: float = 30.0, buffer_size: int = 1 << 20, keep_alive: bool = True,
            implementation: str | None = None, streams: int | None = None, key: bytes | None = None,
            algo: str | None = None, compress: bool | None = None) -> Session:
    """Open and log in a session: ``connect(ticket)`` or ``connect(host, port, secret)``.

    ``streams`` is the default stream count of transfers (a ticket's ``streams`` otherwise);
    ``key``/``algo``/``compress`` must match the session the Auth server registered (a ticket
    carries them).

    With a ticket every advertised address is tried in turn (the Auth server may list several).
    """
    if isinstance(ticket_or_host, Ticket):
        ticket: Ticket | None = ticket_or_host
        addresses = list(ticket_or_host.addresses)
        port = ticket_or_host.port
        secret = ticket_or_host.secret
    else:
        ticket = None
        if port is None or secret is None:
            raise TypeError("connect(host, port, secret) needs all three")
        addresses = [ticket_or_host]
    last: Exception | None = None
    for host in addresses:
        try:
            ctrl = ControlConnection.open(host, int(port), timeout)
        except (OSError, UFTPTimeoutError) as exc:
            last = exc
            log.info("cannot reach %s:%s (%s)", host, port, exc)
            continue
        session = Session(ctrl, ticket, timeout=timeout, buffer_size=buffer_size, keep_alive=keep_alive,
                          implementation=implementation, streams=streams, key=key, algo=algo, compress=compress)
        try:
            session._handshake(secret)
        except BaseException:
            ctrl.close(send_quit=False)
            raise
        return session
    if isinstance(last, UFTPError):
        raise last
    raise ConnectionClosedError(f"cannot connect to UFTPD at {addresses} port {port}: {last}")
