# cython: language_level=3, boundscheck=False, wraparound=False
"""Cython data-channel hot loops: the twin of ``_fastpath_py`` with the same functions.

Every syscall loop runs with the GIL released: ``recv`` writes straight into the caller's
buffer (any writable contiguous buffer: bytearray, memoryview, numpy array, mmap), ``pwrite``
moves it to a file, ``sendfile`` moves file pages to the socket.  Several streams (or a FUSE
thread pool) can therefore receive at once.  Idle timeouts use ``poll`` on the non-blocking
socket, exactly like CPython's own socket timeouts.
"""

from cpython.buffer cimport PyObject_GetBuffer, PyBuffer_Release, PyBUF_WRITABLE, PyBUF_ANY_CONTIGUOUS, PyBUF_SIMPLE
from cpython.bytes cimport PyBytes_FromStringAndSize, PyBytes_AS_STRING
from cpython.exc cimport PyErr_CheckSignals
from libc.errno cimport errno, EAGAIN, EINTR

cdef extern from "<errno.h>" nogil:
    int EWOULDBLOCK
from libc.string cimport strerror
from posix.types cimport off_t

from .errors import ConnectionClosedError, UFTPTimeoutError

IMPLEMENTATION = "cython"

cdef extern from "<sys/socket.h>" nogil:
    ssize_t c_recv "recv"(int fd, void *buf, size_t n, int flags)
    ssize_t c_send "send"(int fd, const void *buf, size_t n, int flags)
    int MSG_NOSIGNAL

cdef extern from "<unistd.h>" nogil:
    ssize_t c_pwrite "pwrite"(int fd, const void *buf, size_t n, off_t offset)

cdef extern from "<sys/sendfile.h>" nogil:
    ssize_t c_sendfile "sendfile"(int out_fd, int in_fd, off_t *offset, size_t count)

cdef extern from "<poll.h>" nogil:
    cdef struct pollfd:
        int fd
        short events
        short revents
    int c_poll "poll"(pollfd *fds, unsigned long nfds, int timeout)
    short POLLIN
    short POLLOUT

# Status codes of the nogil loops (negative = error class, errno kept separately).
cdef enum:
    ST_OK = 0
    ST_TIMEOUT = -1
    ST_OSERROR = -2
    ST_EINTR = -3


cdef int _wait(int fd, short events, int timeout_ms) noexcept nogil:
    cdef pollfd p
    cdef int r
    p.fd = fd
    p.events = events
    p.revents = 0
    r = c_poll(&p, 1, timeout_ms)
    if r == 0:
        return ST_TIMEOUT
    if r < 0:
        return ST_EINTR if errno == EINTR else ST_OSERROR
    return ST_OK


cdef inline int _timeout_ms(double timeout):
    if timeout < 0:
        return -1
    return <int>(timeout * 1000.0)


cdef object _raise(int status, int err, object what, long long done):
    if status == ST_TIMEOUT:
        raise UFTPTimeoutError(f"data connection stalled ({what}) after {done} bytes")
    raise OSError(err, strerror(err).decode("utf-8", "replace"))


cdef Py_ssize_t _recv_loop(int fd, char *p, Py_ssize_t total, int tmo, int *status, int *err) noexcept nogil:
    """Receive into p[0:total] until full, EOF, timeout or error. Returns bytes received."""
    cdef Py_ssize_t got = 0
    cdef ssize_t n
    cdef int w
    status[0] = ST_OK
    while got < total:
        n = c_recv(fd, p + got, <size_t>(total - got), 0)
        if n > 0:
            got += n
        elif n == 0:
            break
        elif errno == EAGAIN or errno == EWOULDBLOCK:
            w = _wait(fd, POLLIN, tmo)
            if w == ST_EINTR:
                status[0] = ST_EINTR
                return got
            if w != ST_OK:
                status[0] = w
                err[0] = errno
                return got
        elif errno == EINTR:
            status[0] = ST_EINTR
            return got
        else:
            status[0] = ST_OSERROR
            err[0] = errno
            return got
    return got


def recv_into(sock, buffer, double timeout):
    """Receive until ``buffer`` is full or the peer closes; returns the number of bytes stored."""
    cdef Py_buffer view
    cdef int fd
    cdef int tmo = _timeout_ms(timeout)
    cdef int status = ST_OK, err = 0
    cdef Py_ssize_t got = 0, n
    sock.settimeout(timeout)  # puts the fd in non-blocking mode, as CPython does
    fd = sock.fileno()
    PyObject_GetBuffer(buffer, &view, PyBUF_WRITABLE | PyBUF_ANY_CONTIGUOUS)
    try:
        while True:
            with nogil:
                n = _recv_loop(fd, <char *>view.buf + got, view.len - got, tmo, &status, &err)
            got += n
            if status == ST_EINTR:
                PyErr_CheckSignals()
                continue
            if status != ST_OK:
                _raise(status, err, "receive", got)
            return got
    finally:
        PyBuffer_Release(&view)


cdef extern from "<fcntl.h>" nogil:
    ctypedef long long loff_t
    ssize_t c_splice "splice"(int fd_in, loff_t *off_in, int fd_out, loff_t *off_out, size_t len,
                              unsigned int flags)
    unsigned int SPLICE_F_MOVE
    unsigned int SPLICE_F_NONBLOCK
    int F_SETPIPE_SZ
    int c_fcntl "fcntl"(int fd, int cmd, int arg)
    int O_CLOEXEC

cdef extern from "<unistd.h>" nogil:
    int c_pipe2 "pipe2"(int *fds, int flags)
    int c_close "close"(int fd)

cdef extern from "<errno.h>" nogil:
    int EINVAL
    int ENOSYS

#: transfers at least this large go socket -> pipe -> file with splice (one copy less)
SPLICE_MIN = 256 * 1024
DEF SPLICE_CHUNK = 1048576


cdef int _splice_loop(int sfd, int fd, long long offset, long long count, int tmo, long long *done,
                      int *status, int *err) noexcept nogil:
    """socket -> pipe -> file with splice.  Returns 1 = finished/EOF, 0 = error or EINTR (status
    set), -1 = splice unsupported before any byte moved (caller falls back to recv + pwrite)."""
    cdef int pfd[2]
    cdef ssize_t n, r
    cdef long long m
    cdef loff_t off
    cdef size_t want
    cdef int w, result = 1
    if c_pipe2(pfd, O_CLOEXEC) != 0:
        return -1
    c_fcntl(pfd[1], F_SETPIPE_SZ, SPLICE_CHUNK)
    while count < 0 or done[0] < count:
        want = SPLICE_CHUNK if count < 0 or count - done[0] > SPLICE_CHUNK else <size_t>(count - done[0])
        n = c_splice(sfd, NULL, pfd[1], NULL, want, SPLICE_F_MOVE | SPLICE_F_NONBLOCK)
        if n > 0:
            m = 0
            while m < n:
                off = offset + done[0] + m
                r = c_splice(pfd[0], NULL, fd, &off, <size_t>(n - m), SPLICE_F_MOVE)
                if r > 0:
                    m += r
                elif r < 0 and errno == EINTR:
                    continue
                else:
                    status[0] = ST_OSERROR
                    err[0] = errno if r < 0 else EINVAL
                    result = 0
                    break
            if result == 0:
                break
            done[0] += n
        elif n == 0:
            break
        elif errno == EAGAIN or errno == EWOULDBLOCK:
            w = _wait(sfd, POLLIN, tmo)
            if w != ST_OK:
                status[0] = w
                err[0] = errno
                result = 0
                break
        elif errno == EINTR:
            status[0] = ST_EINTR
            result = 0
            break
        elif done[0] == 0 and (errno == EINVAL or errno == ENOSYS):
            result = -1
            break
        else:
            status[0] = ST_OSERROR
            err[0] = errno
            result = 0
            break
    c_close(pfd[0])
    c_close(pfd[1])
    return result


def recv_to_fd(sock, int fd, long long offset, long long count, scratch, double timeout):
    """Receive ``count`` bytes (``count < 0``: until EOF) and write them to ``fd`` at ``offset``.

    Large transfers use ``splice`` (socket -> pipe -> page cache, no user-space copy); small
    ones, and file systems that refuse splice, ``recv`` into ``scratch`` + ``pwrite``.
    """
    cdef int sfd0
    cdef int tmo0 = _timeout_ms(timeout)
    cdef int st0 = ST_OK, err0 = 0, r0 = 0
    cdef long long moved = 0
    if count < 0 or count >= SPLICE_MIN:
        sock.settimeout(timeout)
        sfd0 = sock.fileno()
        while True:
            with nogil:
                r0 = _splice_loop(sfd0, fd, offset, count, tmo0, &moved, &st0, &err0)
            if r0 == -1:
                break  # not supported here: fall back below
            if st0 == ST_EINTR:
                PyErr_CheckSignals()
                st0 = ST_OK
                continue
            if st0 != ST_OK:
                _raise(st0, err0, "splice to file", moved)
            return moved
    return _recv_copy_to_fd(sock, fd, offset, count, scratch, timeout)


def _recv_copy_to_fd(sock, int fd, long long offset, long long count, scratch, double timeout):
    cdef Py_buffer view
    cdef int sfd
    cdef int tmo = _timeout_ms(timeout)
    cdef int status = ST_OK, err = 0
    cdef long long done = 0
    cdef Py_ssize_t cap, want, n, w
    cdef ssize_t wr
    cdef char *p
    sock.settimeout(timeout)
    sfd = sock.fileno()
    PyObject_GetBuffer(scratch, &view, PyBUF_WRITABLE | PyBUF_ANY_CONTIGUOUS)
    p = <char *>view.buf
    cap = view.len
    try:
        while True:
            with nogil:
                while count < 0 or done < count:
                    want = cap if count < 0 or count - done > cap else <Py_ssize_t>(count - done)
                    # fill the scratch buffer, then write it with one pwrite
                    n = _recv_loop(sfd, p, want, tmo, &status, &err)
                    if n > 0:
                        w = 0
                        while w < n:
                            wr = c_pwrite(fd, p + w, <size_t>(n - w), <off_t>(offset + done + w))
                            if wr < 0:
                                if errno == EINTR:
                                    continue
                                status = ST_OSERROR
                                err = errno
                                break
                            w += wr
                        done += w
                    if status != ST_OK or n < want:
                        break
            if status == ST_EINTR:
                PyErr_CheckSignals()
                status = ST_OK
                continue
            if status != ST_OK:
                _raise(status, err, "receive to file", done)
            return done
    finally:
        PyBuffer_Release(&view)


def send_all(sock, buffer, double timeout):
    """Send the whole buffer."""
    cdef Py_buffer view
    cdef int fd
    cdef int tmo = _timeout_ms(timeout)
    cdef int status = ST_OK, err = 0, w
    cdef Py_ssize_t sent = 0
    cdef ssize_t n
    sock.settimeout(timeout)
    fd = sock.fileno()
    PyObject_GetBuffer(buffer, &view, PyBUF_SIMPLE)
    try:
        while True:
            with nogil:
                while sent < view.len:
                    n = c_send(fd, <char *>view.buf + sent, <size_t>(view.len - sent), MSG_NOSIGNAL)
                    if n >= 0:
                        sent += n
                    elif errno == EAGAIN or errno == EWOULDBLOCK:
                        w = _wait(fd, POLLOUT, tmo)
                        if w != ST_OK:
                            status = w
                            err = errno
                            break
                    elif errno == EINTR:
                        status = ST_EINTR
                        break
                    else:
                        status = ST_OSERROR
                        err = errno
                        break
            if status == ST_EINTR:
                PyErr_CheckSignals()
                status = ST_OK
                continue
            if status != ST_OK:
                _raise(status, err, "send", sent)
            return None
    finally:
        PyBuffer_Release(&view)


def sendfile_all(sock, int fd, long long offset, long long count, double timeout):
    """Send ``count`` bytes of ``fd`` from ``offset`` with ``sendfile`` (kernel to socket)."""
    cdef int sfd
    cdef int tmo = _timeout_ms(timeout)
    cdef int status = ST_OK, err = 0, w
    cdef long long sent = 0
    cdef off_t off = offset
    cdef ssize_t n
    cdef bint early_eof = False
    sock.settimeout(timeout)
    sfd = sock.fileno()
    while True:
        with nogil:
            while sent < count:
                n = c_sendfile(sfd, fd, &off, <size_t>(count - sent if count - sent < (1 << 30) else (1 << 30)))
                if n > 0:
                    sent += n
                elif n == 0:
                    early_eof = True
                    break
                elif errno == EAGAIN or errno == EWOULDBLOCK:
                    w = _wait(sfd, POLLOUT, tmo)
                    if w != ST_OK:
                        status = w
                        err = errno
                        break
                elif errno == EINTR:
                    status = ST_EINTR
                    break
                else:
                    status = ST_OSERROR
                    err = errno
                    break
        if status == ST_EINTR:
            PyErr_CheckSignals()
            status = ST_OK
            continue
        if status != ST_OK:
            _raise(status, err, "sendfile", sent)
        if early_eof:
            raise ConnectionClosedError(f"local file ended after {sent} of {count} bytes")
        return sent


def new_bytes_from_socket(sock, Py_ssize_t count, double timeout):
    """Receive up to ``count`` bytes into a new ``bytes`` object, filled in place (no copy)."""
    cdef object out = PyBytes_FromStringAndSize(NULL, count)
    cdef char *p = PyBytes_AS_STRING(out)
    cdef int fd
    cdef int tmo = _timeout_ms(timeout)
    cdef int status = ST_OK, err = 0
    cdef Py_ssize_t got = 0, n
    sock.settimeout(timeout)
    fd = sock.fileno()
    while True:
        with nogil:
            n = _recv_loop(fd, p + got, count - got, tmo, &status, &err)
        got += n
        if status == ST_EINTR:
            PyErr_CheckSignals()
            continue
        if status != ST_OK:
            _raise(status, err, "receive", got)
        break
    if got < count:
        return out[:got]
    return out


# --------------------------------------------------------------------------- multi-stream
from .errors import ProtocolError

cdef enum:
    ST_BADFRAME = -4
    ST_SHORT = -5
    ST_BEYOND = -6
    ST_BIGCHUNK = -7
    ST_PYERR = -8
    ST_SHORTHDR = -9


cdef Py_ssize_t _recv_full(int fd, char *p, Py_ssize_t n, int tmo, int *status, int *err) noexcept nogil:
    """Receive n bytes (fewer only at EOF); EINTR runs the Python signal handlers and resumes."""
    cdef Py_ssize_t got = 0
    cdef int sig
    while True:
        got += _recv_loop(fd, p + got, n - got, tmo, status, err)
        if status[0] != ST_EINTR:
            return got
        with gil:
            sig = PyErr_CheckSignals_noexc()
        if sig < 0:
            status[0] = ST_PYERR
            return got
        status[0] = ST_OK


cdef int PyErr_CheckSignals_noexc() noexcept:
    try:
        PyErr_CheckSignals()
    except BaseException as exc:
        global _pending_exc
        _pending_exc = exc
        return -1
    return 0

_pending_exc = None

cdef extern from "<sys/uio.h>" nogil:
    cdef struct iovec:
        void *iov_base
        size_t iov_len
    ssize_t c_writev "writev"(int fd, const iovec *iov, int iovcnt)

cdef extern from "<arpa/inet.h>" nogil:
    unsigned int ntohl(unsigned int)
    unsigned short ntohs(unsigned short)
    unsigned int htonl(unsigned int)
    unsigned short htons(unsigned short)

cdef extern from "<string.h>" nogil:
    void *memcpy(void *dest, const void *src, size_t n)


cdef struct FrameState:
    long long pos       # bytes covered by the blocks seen
    long long placed    # payload bytes of this stream
    unsigned int seq
    unsigned int bad_magic, bad_index, bad_seq, bad_block, bad_chunk


cdef int _read_header(int fd, unsigned char *hdr, int index, int streams, FrameState *st, long long limit,
                      unsigned int *block, unsigned int *chunk, int tmo, int *status, int *err) noexcept nogil:
    """Read and validate one header. Returns 1 = frame, 0 = clean EOF, -1 = error (status set)."""
    cdef Py_ssize_t n = _recv_full(fd, <char *>hdr, 16, tmo, status, err)
    cdef unsigned short magic, idx
    cdef unsigned int seq, base, expect
    if status[0] != ST_OK:
        return -1
    if n == 0:
        return 0
    if n < 16:
        status[0] = ST_SHORTHDR
        st.bad_chunk = <unsigned int>n
        return -1
    magic = (hdr[0] << 8) | hdr[1]
    idx = (hdr[2] << 8) | hdr[3]
    seq = (<unsigned int>hdr[4] << 24) | (<unsigned int>hdr[5] << 16) | (<unsigned int>hdr[6] << 8) | hdr[7]
    block[0] = (<unsigned int>hdr[8] << 24) | (<unsigned int>hdr[9] << 16) | (<unsigned int>hdr[10] << 8) | hdr[11]
    chunk[0] = (<unsigned int>hdr[12] << 24) | (<unsigned int>hdr[13] << 16) | (<unsigned int>hdr[14] << 8) | hdr[15]
    base = block[0] // streams
    expect = block[0] - base * (streams - 1) if index == streams - 1 else base
    if magic != 0xCEBF or idx != index or seq != st.seq or chunk[0] != expect:
        status[0] = ST_BADFRAME
        st.bad_magic = magic
        st.bad_index = idx
        st.bad_seq = seq
        st.bad_block = block[0]
        st.bad_chunk = chunk[0]
        return -1
    if st.pos + block[0] > limit:
        status[0] = ST_BEYOND
        st.bad_block = block[0]
        return -1
    return 1


cdef object _frame_error(int status, int err, int index, int streams, FrameState *st, long long limit):
    if status == ST_BADFRAME:
        # the shared pure-Python validator phrases the exact complaint
        from .jparss import HEADER, check_header
        check_header(HEADER.pack(st.bad_magic, st.bad_index, st.bad_seq, st.bad_block, st.bad_chunk),
                     index, streams, st.seq)
        raise ProtocolError(f"stream {index}: invalid frame header")
    if status == ST_PYERR:
        global _pending_exc
        exc, _pending_exc = _pending_exc, None
        raise exc
    if status == ST_SHORTHDR:
        raise ProtocolError(f"stream {index}: truncated frame header ({st.bad_chunk} bytes)")
    if status == ST_SHORT:
        raise ProtocolError(f"stream {index}: connection closed inside frame {st.seq}")
    if status == ST_BEYOND:
        raise ProtocolError(f"stream {index}: block {st.seq} ends at {st.pos + st.bad_block}, beyond the "
                            f"announced {limit} bytes")
    if status == ST_BIGCHUNK:
        raise ProtocolError(f"stream {index}: chunk exceeds the receive buffer")
    _raise(status, err, f"stream {index}", st.placed)


def recv_frames_into(sock, int index, int streams, buffer, double timeout):
    """Receive stream ``index``'s JPARSS frames straight into their final place in ``buffer``."""
    cdef Py_buffer view
    cdef int fd
    cdef int tmo = _timeout_ms(timeout)
    cdef int status = ST_OK, err = 0, r = 0
    cdef FrameState st
    cdef unsigned char hdr[16]
    cdef unsigned int block = 0, chunk = 0
    cdef long long limit
    cdef Py_ssize_t got
    cdef char *base
    st.pos = 0
    st.placed = 0
    st.seq = 0
    sock.settimeout(timeout)
    fd = sock.fileno()
    PyObject_GetBuffer(buffer, &view, PyBUF_WRITABLE | PyBUF_ANY_CONTIGUOUS)
    base = <char *>view.buf
    limit = view.len
    try:
        while True:
            with nogil:
                while st.pos < limit:
                    r = _read_header(fd, hdr, index, streams, &st, limit, &block, &chunk, tmo, &status, &err)
                    if r <= 0:
                        break
                    if chunk:
                        got = _recv_full(fd, base + st.pos + (block // streams) * index, chunk, tmo, &status, &err)
                        if status != ST_OK:
                            break
                        if got < chunk:
                            status = ST_SHORT
                            break
                    st.placed += chunk
                    st.pos += block
                    st.seq += 1
            if status != ST_OK:
                _frame_error(status, err, index, streams, &st, limit)
            return st.placed, st.pos
    finally:
        PyBuffer_Release(&view)


def recv_frames_to_fd(sock, int index, int streams, int fd, long long file_offset, long long length, scratch,
                      double timeout):
    """Receive stream ``index``'s frames and ``pwrite`` each chunk to its place in ``fd``."""
    cdef Py_buffer view
    cdef int sfd
    cdef int tmo = _timeout_ms(timeout)
    cdef int status = ST_OK, err = 0, r = 0
    cdef FrameState st
    cdef unsigned char hdr[16]
    cdef unsigned int block = 0, chunk = 0
    cdef Py_ssize_t got, w
    cdef ssize_t wr
    cdef long long dest
    cdef char *p
    st.pos = 0
    st.placed = 0
    st.seq = 0
    sock.settimeout(timeout)
    sfd = sock.fileno()
    PyObject_GetBuffer(scratch, &view, PyBUF_WRITABLE | PyBUF_ANY_CONTIGUOUS)
    p = <char *>view.buf
    try:
        while True:
            with nogil:
                while st.pos < length:
                    r = _read_header(sfd, hdr, index, streams, &st, length, &block, &chunk, tmo, &status, &err)
                    if r <= 0:
                        break
                    if chunk > view.len:
                        status = ST_BIGCHUNK
                        break
                    if chunk:
                        got = _recv_full(sfd, p, chunk, tmo, &status, &err)
                        if status != ST_OK:
                            break
                        if got < chunk:
                            status = ST_SHORT
                            break
                        dest = file_offset + st.pos + (block // streams) * index
                        w = 0
                        while w < chunk:
                            wr = c_pwrite(fd, p + w, <size_t>(chunk - w), <off_t>(dest + w))
                            if wr < 0:
                                if errno == EINTR:
                                    continue
                                status = ST_OSERROR
                                err = errno
                                break
                            w += wr
                        if status != ST_OK:
                            break
                    st.placed += chunk
                    st.pos += block
                    st.seq += 1
            if status != ST_OK:
                _frame_error(status, err, index, streams, &st, length)
            return st.placed, st.pos
    finally:
        PyBuffer_Release(&view)


cdef int _send_loop(int fd, const char *p, Py_ssize_t n, int tmo, int *status, int *err) noexcept nogil:
    cdef Py_ssize_t sent = 0
    cdef ssize_t r
    cdef int w
    while sent < n:
        r = c_send(fd, p + sent, <size_t>(n - sent), MSG_NOSIGNAL)
        if r >= 0:
            sent += r
        elif errno == EAGAIN or errno == EWOULDBLOCK:
            w = _wait(fd, POLLOUT, tmo)
            if w != ST_OK:
                status[0] = w
                err[0] = errno
                return -1
        elif errno == EINTR:
            continue
        else:
            status[0] = ST_OSERROR
            err[0] = errno
            return -1
    return 0


cdef int _sendfile_loop(int sfd, int fd, long long offset, long long count, int tmo, int *status,
                        int *err) noexcept nogil:
    cdef off_t off = offset
    cdef long long left = count
    cdef ssize_t n
    cdef int w
    while left > 0:
        n = c_sendfile(sfd, fd, &off, <size_t>left)
        if n > 0:
            left -= n
        elif n == 0:
            status[0] = ST_SHORT
            return -1
        elif errno == EAGAIN or errno == EWOULDBLOCK:
            w = _wait(sfd, POLLOUT, tmo)
            if w != ST_OK:
                status[0] = w
                err[0] = errno
                return -1
        elif errno == EINTR:
            continue
        else:
            status[0] = ST_OSERROR
            err[0] = errno
            return -1
    return 0


def send_frames(sock, int index, int streams, buffer, int fd, long long file_offset, long long length,
                int block, double timeout):
    """Send stream ``index``'s frames of a ``length``-byte transfer cut into ``block``-byte blocks,
    from ``buffer`` (if not None) or with ``sendfile`` from ``fd`` at ``file_offset``."""
    cdef Py_buffer view
    cdef bint have_buf = buffer is not None
    cdef int sfd
    cdef int tmo = _timeout_ms(timeout)
    cdef int status = ST_OK, err = 0
    cdef unsigned char hdr[16]
    cdef long long pos = 0, sent = 0
    cdef unsigned int seq = 0, size, start, chunk, base
    cdef char *data = NULL
    sock.settimeout(timeout)
    sfd = sock.fileno()
    if have_buf:
        PyObject_GetBuffer(buffer, &view, PyBUF_SIMPLE)
        data = <char *>view.buf
    try:
        with nogil:
            while pos < length:
                size = <unsigned int>(block if length - pos > block else length - pos)
                base = size // streams
                start = base * index
                chunk = size - start if index == streams - 1 else base
                hdr[0] = 0xCE
                hdr[1] = 0xBF
                hdr[2] = (index >> 8) & 0xFF
                hdr[3] = index & 0xFF
                hdr[4] = (seq >> 24) & 0xFF
                hdr[5] = (seq >> 16) & 0xFF
                hdr[6] = (seq >> 8) & 0xFF
                hdr[7] = seq & 0xFF
                hdr[8] = (size >> 24) & 0xFF
                hdr[9] = (size >> 16) & 0xFF
                hdr[10] = (size >> 8) & 0xFF
                hdr[11] = size & 0xFF
                hdr[12] = (chunk >> 24) & 0xFF
                hdr[13] = (chunk >> 16) & 0xFF
                hdr[14] = (chunk >> 8) & 0xFF
                hdr[15] = chunk & 0xFF
                if _send_loop(sfd, <char *>hdr, 16, tmo, &status, &err) < 0:
                    break
                if chunk:
                    if have_buf:
                        if _send_loop(sfd, data + pos + start, chunk, tmo, &status, &err) < 0:
                            break
                    else:
                        if _sendfile_loop(sfd, fd, file_offset + pos + start, chunk, tmo, &status, &err) < 0:
                            break
                sent += chunk
                pos += size
                seq += 1
        if status == ST_SHORT:
            raise ConnectionClosedError(f"local file ended while sending stream {index}")
        if status != ST_OK:
            _raise(status, err, f"send stream {index}", sent)
        return sent
    finally:
        if have_buf:
            PyBuffer_Release(&view)
