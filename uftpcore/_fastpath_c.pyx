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


def recv_to_fd(sock, int fd, long long offset, long long count, scratch, double timeout):
    """Receive ``count`` bytes (``count < 0``: until EOF) and ``pwrite`` them to ``fd`` at ``offset``."""
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
