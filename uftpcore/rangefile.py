"""File objects on a UFTP session.

``UFTPRawReader`` is a seekable, read-only raw file doing exact ``RANG`` reads: a seek costs
nothing (no reconnect, unlike FTP clients that ABOR and reopen), and small reads reuse a
kept-alive data connection.  ``UFTPRawWriter`` streams one upload through one ``STOR``.
"""

from __future__ import annotations

import io
import socket
from typing import TYPE_CHECKING, Any

from .errors import TransferIncompleteError

if TYPE_CHECKING:
    from .session import Session


class UFTPRawReader(io.RawIOBase):
    """Read-only, seekable view of one remote file (size fixed at open)."""

    def __init__(self, session: Session, path: str, size: int | None = None):
        super().__init__()
        self._session = session
        self.name = path
        self.size = session.stat(path).size if size is None else size
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            pos = offset
        elif whence == io.SEEK_CUR:
            pos = self._pos + offset
        elif whence == io.SEEK_END:
            pos = self.size + offset
        else:
            raise ValueError(f"invalid whence {whence}")
        if pos < 0:
            raise ValueError("negative seek position")
        self._pos = pos
        return pos

    def readinto(self, buffer: Any) -> int:
        if self.closed:
            raise ValueError("I/O operation on closed file")
        view = memoryview(buffer).cast("B")
        try:
            want = min(len(view), max(0, self.size - self._pos))
            if want == 0:
                return 0
            got = self._session.read_range_exact(self.name, view[:want], self._pos)
            if got != want:
                raise TransferIncompleteError(f"{self.name}: {got} of {want} bytes at {self._pos}", want, got)
            self._pos += got
            return got
        finally:
            view.release()

    def readall(self) -> bytes:
        want = max(0, self.size - self._pos)
        data = self._session.read(self.name, self._pos, want) if want else b""
        self._pos += len(data)
        return data

    def __repr__(self) -> str:
        return f"<UFTPRawReader {self.name!r} size={self.size} pos={self._pos}>"


class UFTPRawWriter(io.RawIOBase):
    """Write-only stream to one remote file: ``STOR`` on the first write, EOF on close.

    The session is busy (locked) from the first write until ``close()``; a failed write closes
    the session (its state is unknown) and the upload is reported incomplete.
    """

    def __init__(self, session: Session, path: str):
        super().__init__()
        self._session = session
        self.name = path
        self._sock: socket.socket | None = None
        self._written = 0
        self._failed = False

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        if self.closed:
            raise ValueError("I/O operation on closed file")
        if self._sock is None:
            self._sock = self._session.start_transfer("STOR", self.name)
        view = memoryview(data).cast("B")
        try:
            self._session._fp.send_all(self._sock, view, self._session.timeout)
        except BaseException:
            self._session.abort_transfer()
            self._sock = None
            self._failed = True
            raise
        self._written += len(view)
        return len(view)

    def close(self) -> None:
        if self.closed:
            return
        try:
            if not self._failed:
                if self._sock is None:  # an empty file is still created/truncated
                    self._sock = self._session.start_transfer("STOR", self.name)
                self._session.finish_transfer()
        finally:
            self._sock = None
            super().close()

    def __repr__(self) -> str:
        return f"<UFTPRawWriter {self.name!r} written={self._written}>"
