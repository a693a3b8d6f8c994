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


#: transfers at least this large go socket -> pipe -> file with splice (one copy less)
SPLICE_MIN = 256 * 1024
_SPLICE_CHUNK = 1 << 20
_F_SETPIPE_SZ = 1031


def recv_to_fd(sock: socket.socket, fd: int, offset: int, count: int, scratch, timeout: float) -> int:
    """Receive ``count`` bytes (``count < 0``: until EOF) and write them to ``fd`` at ``offset``.

    Large transfers use ``os.splice`` (socket -> pipe -> page cache, no user-space copy); small
    ones, and file systems that refuse splice, ``recv_into`` the pooled ``scratch`` + ``pwrite``.
    Returns the number of bytes written (short only when the peer closed early).
    """
    if hasattr(os, "splice") and (count < 0 or count >= SPLICE_MIN):
        moved = _splice_to_fd(sock, fd, offset, count, timeout)
        if moved is not None:
            return moved
    return _recv_copy_to_fd(sock, fd, offset, count, scratch, timeout)


def _splice_to_fd(sock: socket.socket, fd: int, offset: int, count: int, timeout: float) -> int | None:
    """None when splice is unsupported before any byte moved (then the caller copies)."""
    import errno
    import fcntl
    import select

    sock.settimeout(timeout)
    sfd = sock.fileno()
    rfd, wfd = os.pipe2(os.O_CLOEXEC)
    done = 0
    try:
        try:
            fcntl.fcntl(wfd, _F_SETPIPE_SZ, _SPLICE_CHUNK)
        except OSError:
            pass
        poller = select.poll()
        poller.register(sfd, select.POLLIN)
        flags = os.SPLICE_F_MOVE | os.SPLICE_F_NONBLOCK
        while count < 0 or done < count:
            want = _SPLICE_CHUNK if count < 0 else min(_SPLICE_CHUNK, count - done)
            try:
                n = os.splice(sfd, wfd, want, flags=flags)
            except BlockingIOError:
                if not poller.poll(int(timeout * 1000)):
                    raise UFTPTimeoutError(f"data connection stalled for {timeout} s after {done} bytes") from None
                continue
            except OSError as exc:
                if done == 0 and exc.errno in (errno.EINVAL, errno.ENOSYS):
                    return None
                raise
            if n == 0:
                break
            m = 0
            while m < n:
                m += os.splice(rfd, fd, n - m, offset_dst=offset + done + m, flags=os.SPLICE_F_MOVE)
            done += n
    finally:
        os.close(rfd)
        os.close(wfd)
    return done


def _recv_copy_to_fd(sock: socket.socket, fd: int, offset: int, count: int, scratch, timeout: float) -> int:
    """recv_into a pooled buffer + pwrite (small transfers, file systems without splice)."""
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


# --------------------------------------------------------------------------- multi-stream
def _recv_exact(sock: socket.socket, view: memoryview, what: str) -> int:
    got = 0
    total = len(view)
    while got < total:
        n = sock.recv_into(view[got:], total - got)
        if n == 0:
            return got
        got += n
    return got


def recv_frames_into(sock: socket.socket, index: int, streams: int, buffer, timeout: float) -> tuple[int, int]:
    """Receive the JPARSS frames of stream ``index`` and place each chunk at its final position
    in ``buffer`` (the whole transfer).  Stops when the blocks seen cover ``len(buffer)`` or at
    EOF on a frame boundary.  Returns ``(bytes placed by this stream, bytes covered by blocks)``."""
    from .errors import ProtocolError
    from .jparss import HEADER_SIZE, check_header

    view = memoryview(buffer).cast("B")
    limit = len(view)
    header = bytearray(HEADER_SIZE)
    hview = memoryview(header)
    pos = placed = seq = 0
    sock.settimeout(timeout)
    try:
        while pos < limit:
            n = _recv_exact(sock, hview, "header")
            if n == 0:
                break
            if n < HEADER_SIZE:
                raise ProtocolError(f"stream {index}: truncated frame header ({n} bytes)")
            block, chunk = check_header(header, index, streams, seq)
            start = pos + (block // streams) * index
            if pos + block > limit:
                raise ProtocolError(f"stream {index}: block {seq} ends at {pos + block}, beyond the "
                                    f"announced {limit} bytes")
            if chunk:
                got = _recv_exact(sock, view[start:start + chunk], "chunk")
                if got < chunk:
                    raise ProtocolError(f"stream {index}: connection closed inside frame {seq}")
            placed += chunk
            pos += block
            seq += 1
    except socket.timeout as exc:
        raise UFTPTimeoutError(f"stream {index} stalled for {timeout} s after {placed} bytes") from exc
    finally:
        view.release()
    return placed, pos


def recv_frames_to_fd(sock: socket.socket, index: int, streams: int, fd: int, file_offset: int, length: int,
                      scratch, timeout: float) -> tuple[int, int]:
    """Like ``recv_frames_into`` but ``pwrite`` each chunk to ``fd`` at ``file_offset`` + its position."""
    from .errors import ProtocolError
    from .jparss import HEADER_SIZE, check_header

    view = memoryview(scratch).cast("B")
    header = bytearray(HEADER_SIZE)
    hview = memoryview(header)
    pos = placed = seq = 0
    sock.settimeout(timeout)
    try:
        while pos < length:
            n = _recv_exact(sock, hview, "header")
            if n == 0:
                break
            if n < HEADER_SIZE:
                raise ProtocolError(f"stream {index}: truncated frame header ({n} bytes)")
            block, chunk = check_header(header, index, streams, seq)
            if pos + block > length:
                raise ProtocolError(f"stream {index}: block {seq} ends at {pos + block}, beyond the "
                                    f"announced {length} bytes")
            if chunk > len(view):
                raise ProtocolError(f"stream {index}: chunk of {chunk} bytes exceeds the receive buffer")
            if chunk:
                got = _recv_exact(sock, view[:chunk], "chunk")
                if got < chunk:
                    raise ProtocolError(f"stream {index}: connection closed inside frame {seq}")
                dest = file_offset + pos + (block // streams) * index
                written = 0
                while written < chunk:
                    written += os.pwrite(fd, view[written:chunk], dest + written)
            placed += chunk
            pos += block
            seq += 1
    except socket.timeout as exc:
        raise UFTPTimeoutError(f"stream {index} stalled for {timeout} s after {placed} bytes") from exc
    finally:
        view.release()
    return placed, pos


def send_frames(sock: socket.socket, index: int, streams: int, buffer, fd: int, file_offset: int, length: int,
                block: int, timeout: float) -> int:
    """Send stream ``index``'s frames of a transfer of ``length`` bytes, cut into ``block``-byte
    blocks.  The data comes from ``buffer`` (when not None) or from ``fd`` at ``file_offset``
    (then each chunk goes out with ``sendfile``).  Returns the payload bytes this stream sent."""
    from .jparss import chunk_bounds, pack_header

    sock.settimeout(timeout)
    view = memoryview(buffer).cast("B") if buffer is not None else None
    out = sock.fileno()
    sent = seq = pos = 0
    try:
        while pos < length:
            size = min(block, length - pos)
            start, chunk = chunk_bounds(size, streams, index)
            hdr = pack_header(index, seq, size, chunk)
            if view is not None:
                sock.sendall(hdr)
                if chunk:
                    sock.sendall(view[pos + start:pos + start + chunk])
            else:
                sock.sendall(hdr)
                done = 0
                while done < chunk:
                    try:
                        n = os.sendfile(out, fd, file_offset + pos + start + done, chunk - done)
                    except BlockingIOError:
                        _wait_writable(sock, timeout)
                        continue
                    if n == 0:  # the file is shorter than announced (as the compiled twin reports)
                        raise ConnectionClosedError(f"local file ended while sending stream {index}")
                    done += n
            sent += chunk
            pos += size
            seq += 1
    except socket.timeout as exc:
        raise UFTPTimeoutError(f"stream {index} stalled for {timeout} s while sending") from exc
    finally:
        if view is not None:
            view.release()
    return sent
