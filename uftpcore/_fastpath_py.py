"""Pure-Python data-channel hot loops (the oracle for the Cython twin ``_fastpath_c``).

Both modules export exactly the same functions with the same semantics; ``uftpcore._impl``
picks one at import.  Data always lands directly in caller-owned memory (``recv_into`` on a
``memoryview``) or goes from the kernel to the socket (``os.sendfile``): no per-chunk bytes
objects, no joins.  Timeouts are per-operation *idle* timeouts: a peer that stalls for longer
than ``timeout`` seconds raises ``UFTPTimeoutError``.
"""

from __future__ import annotations

import os
import socket

from .errors import ConnectionClosedError, UFTPTimeoutError

IMPLEMENTATION = "python"


def recv_into(sock: socket.socket, buffer, timeout: float) -> int:
    """Receive until ``buffer`` is full or the peer closes; returns the number of bytes stored."""
    view = memoryview(buffer).cast("B")
    total = len(view)
    got = 0
    sock.settimeout(timeout)
    recv = sock.recv_into
    try:
        while got < total:
            n = recv(view[got:], total - got)
            if n == 0:
                break
            got += n
    except socket.timeout as exc:
        raise UFTPTimeoutError(f"data connection stalled for {timeout} s after {got} bytes") from exc
    finally:
        view.release()
    return got


def recv_to_fd(sock: socket.socket, fd: int, offset: int, count: int, scratch, timeout: float) -> int:
    """Receive ``count`` bytes (``count < 0``: until EOF) and ``pwrite`` them to ``fd`` at ``offset``.

    ``scratch`` is a caller-owned (pooled) buffer; the file sees data in chunks of its size.
    Returns the number of bytes written (short only when the peer closed early).
    """
    view = memoryview(scratch).cast("B")
    cap = len(view)
    done = 0
    sock.settimeout(timeout)
    recv = sock.recv_into
    pwrite = os.pwrite
    try:
        while count < 0 or done < count:
            want = cap if count < 0 else min(cap, count - done)
            n = 0
            while n < want:  # fill the scratch buffer, then write it with one pwrite
                r = recv(view[n:want])
                if r == 0:
                    break
                n += r
            if n == 0:
                break
            written = 0
            while written < n:
                written += pwrite(fd, view[written:n], offset + done + written)
            done += n
            if n < want:
                break
    except socket.timeout as exc:
        raise UFTPTimeoutError(f"data connection stalled for {timeout} s after {done} bytes") from exc
    finally:
        view.release()
    return done


def send_all(sock: socket.socket, buffer, timeout: float) -> None:
    """Send the whole buffer."""
    sock.settimeout(timeout)
    try:
        sock.sendall(buffer)
    except socket.timeout as exc:
        raise UFTPTimeoutError(f"data connection stalled for {timeout} s while sending") from exc


def sendfile_all(sock: socket.socket, fd: int, offset: int, count: int, timeout: float) -> int:
    """Send ``count`` bytes of ``fd`` from ``offset`` with ``os.sendfile`` (kernel to socket, no copy).

    Returns the number of bytes sent; raises ``ConnectionClosedError`` if the file ends early.
    """
    sock.settimeout(timeout)
    out = sock.fileno()
    sent = 0
    try:
        while sent < count:
            try:
                n = os.sendfile(out, fd, offset + sent, min(count - sent, 1 << 30))
            except BlockingIOError:
                _wait_writable(sock, timeout)
                continue
            if n == 0:
                raise ConnectionClosedError(f"local file ended after {sent} of {count} bytes")
            sent += n
    except socket.timeout as exc:
        raise UFTPTimeoutError(f"data connection stalled for {timeout} s while sending") from exc
    return sent


def _wait_writable(sock: socket.socket, timeout: float) -> None:
    import select

    poller = select.poll()
    poller.register(sock.fileno(), select.POLLOUT)
    if not poller.poll(int(timeout * 1000)):
        raise socket.timeout("send timed out")


def new_bytes_from_socket(sock: socket.socket, count: int, timeout: float) -> bytes:
    """Receive up to ``count`` bytes into a new ``bytes`` object (short at EOF)."""
    buf = bytearray(count)
    n = recv_into(sock, buf, timeout)
    if n < count:
        del buf[n:]
    return bytes(buf)
