"""The two hot-loop implementations agree (the pure one is the oracle), over socketpairs."""

from __future__ import annotations

import os
import socket
import struct
import threading

import numpy as np
import pytest

from uftpcore._impl import get_fastpath
from uftpcore.errors import ProtocolError, UFTPTimeoutError
from uftpcore.jparss import chunk_bounds, pack_header


@pytest.fixture
def fp(impl):
    return get_fastpath(impl)


def _pump(send, recv):
    t = threading.Thread(target=send)
    t.start()
    try:
        return recv()
    finally:
        t.join()


@pytest.mark.parametrize("streams", [1, 2, 3, 4, 7])
@pytest.mark.parametrize("length", [0, 1, 5, 16384, 16385, 100_003])
def test_frames_round_trip_buffer_and_file(fp, tmp_path, streams, length):
    data = np.random.default_rng(length).integers(0, 256, length, dtype=np.uint8)
    pairs = [socket.socketpair() for _ in range(streams)]
    out = np.zeros(length, dtype=np.uint8)
    results = [None] * streams

    def rx(i):
        results[i] = fp.recv_frames_into(pairs[i][1], i, streams, out, 5.0)

    def tx(i):
        fp.send_frames(pairs[i][0], i, streams, data, -1, 0, length, 16384, 5.0)
        pairs[i][0].shutdown(socket.SHUT_WR)

    threads = [threading.Thread(target=f, args=(i,)) for i in range(streams) for f in (rx, tx)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert (out == data).all()
    assert sum(r[0] for r in results) == length
    assert all(r[1] == length for r in results)

    src = tmp_path / "src"
    data.tofile(src)
    fd = os.open(src, os.O_RDONLY)
    dst_fd = os.open(tmp_path / "dst", os.O_RDWR | os.O_CREAT)
    os.ftruncate(dst_fd, length + 10)
    pairs = [socket.socketpair() for _ in range(streams)]

    def rx2(i):
        results[i] = fp.recv_frames_to_fd(pairs[i][1], i, streams, dst_fd, 10, length, bytearray(65536), 5.0)

    def tx2(i):
        fp.send_frames(pairs[i][0], i, streams, None, fd, 0, length, 16384, 5.0)
        pairs[i][0].shutdown(socket.SHUT_WR)

    threads = [threading.Thread(target=f, args=(i,)) for i in range(streams) for f in (rx2, tx2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    os.close(fd)
    os.close(dst_fd)
    assert (tmp_path / "dst").read_bytes()[10:] == data.tobytes()


def test_frame_layout_matches_spec_example(fp):
    """Spec §5.2: block of 16384 bytes over 2 streams."""
    a, b = socket.socketpair()
    data = bytes(16384)
    fp.send_frames(a, 1, 2, data, -1, 0, 16384, 16384, 5.0)
    a.close()
    raw = b.recv(100)
    assert raw[:16] == bytes.fromhex("cebf0001000000000000400000002000")
    assert chunk_bounds(16384, 3, 2) == (10922, 5462)


@pytest.mark.parametrize("raw,message", [
    (struct.pack(">HHIII", 0xBEEF, 0, 0, 10, 10) + b"x" * 10, "magic"),
    (pack_header(1, 0, 10, 10) + b"x" * 10, "stream index"),
    (pack_header(0, 5, 10, 10) + b"x" * 10, "sequence"),
    (pack_header(0, 0, 10, 10)[:9], "truncated frame header"),
    (pack_header(0, 0, 100, 100) + b"x" * 100, "beyond"),
    (pack_header(0, 0, 10, 10) + b"x" * 3, "inside frame"),
    (pack_header(0, 0, 10, 7) + b"x" * 7, "chunk of 7 bytes"),
])
def test_bad_frames_are_clear_errors(fp, raw, message):
    a, b = socket.socketpair()
    a.sendall(raw)
    a.close()
    with pytest.raises(ProtocolError, match=message):
        fp.recv_frames_into(b, 0, 1, bytearray(50), 2.0)


def test_recv_timeouts(fp):
    a, b = socket.socketpair()
    a.sendall(b"abc")
    buf = bytearray(10)
    with pytest.raises(UFTPTimeoutError):
        fp.recv_into(b, buf, 0.3)
    with pytest.raises(UFTPTimeoutError):
        fp.recv_frames_into(b, 0, 1, bytearray(10), 0.3)
    a.close()


def test_recv_into_numpy_and_eof(fp):
    a, b = socket.socketpair()
    arr = np.zeros(4, dtype=np.int64)
    payload = np.arange(4, dtype=np.int64).tobytes()
    assert _pump(lambda: (a.sendall(payload[:20]), a.close()), lambda: fp.recv_into(b, arr, 2.0)) == 20
    assert arr.tobytes()[:20] == payload[:20]


def test_recv_to_fd_and_sendfile(fp, tmp_path):
    data = os.urandom(3_000_001)
    src = tmp_path / "s"
    src.write_bytes(data)
    a, b = socket.socketpair()
    fd = os.open(src, os.O_RDONLY)
    out = os.open(tmp_path / "d", os.O_RDWR | os.O_CREAT)

    def send():
        assert fp.sendfile_all(a, fd, 1, len(data) - 1, 5.0) == len(data) - 1
        a.close()

    got = _pump(send, lambda: fp.recv_to_fd(b, out, 5, -1, bytearray(65536), 5.0))
    assert got == len(data) - 1
    os.close(fd)
    os.close(out)
    assert (tmp_path / "d").read_bytes()[5:] == data[1:]


def test_new_bytes_from_socket(fp):
    a, b = socket.socketpair()
    a.sendall(b"hello")
    a.close()
    assert fp.new_bytes_from_socket(b, 10, 2.0) == b"hello"


def test_recv_to_fd_large_transfer_times_out_when_stalled(fp, tmp_path):
    """The splice path (large counts) honours the idle timeout like the copy path."""
    a, b = socket.socketpair()
    a.sendall(b"x" * 1000)
    out = os.open(tmp_path / "d", os.O_RDWR | os.O_CREAT)
    try:
        with pytest.raises(UFTPTimeoutError):
            fp.recv_to_fd(b, out, 0, 10 << 20, bytearray(65536), 0.3)
    finally:
        os.close(out)
        a.close()
