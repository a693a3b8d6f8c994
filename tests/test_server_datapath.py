"""The server's stream-stack seam (``uftpcore.server.datapath``) on socket pairs.

These are the oracle tests future stacks (multi-stream, crypto, gzip) must keep passing
for the plain case.
"""

from __future__ import annotations

import os
import socket
import threading
import time

import pytest

from uftpcore.server.datapath import (
    SCRATCH_SIZE,
    PlainDataChannel,
    RateLimiter,
    UnsupportedDataChannel,
    build_data_channel,
)
from uftpcore.server.options import SessionOptions


def drain(sock: socket.socket, out: bytearray) -> threading.Thread:
    def run() -> None:
        while True:
            chunk = sock.recv(1 << 20)
            if not chunk:
                return
            out.extend(chunk)

    thread = threading.Thread(target=run)
    thread.start()
    return thread


@pytest.fixture
def pair():
    a, b = socket.socketpair()
    yield a, b
    a.close()
    b.close()


def test_send_file_ranges(tmp_path, pair):
    server, client = pair
    blob = os.urandom(3 * SCRATCH_SIZE + 17)
    path = tmp_path / "f"
    path.write_bytes(blob)
    received = bytearray()
    reader = drain(client, received)
    channel = PlainDataChannel(server, bytearray(SCRATCH_SIZE))
    fd = os.open(path, os.O_RDONLY)
    try:
        assert channel.send_file(fd, 5, 1000) == 1000
        assert channel.send_file(fd, 0, len(blob) * 2) == len(blob)  # short at EOF
        assert channel.send_file(fd, len(blob) + 10, 100) == 0
        assert channel.send_file(fd, 0, -3) == 0
        assert channel.send_file(fd, 1, 10, RateLimiter(1 << 40)) == 10
    finally:
        os.close(fd)
    channel.close()
    reader.join(10)
    assert bytes(received) == blob[5:1005] + blob + blob[1:11]


def test_send_file_falls_back_for_pipes(pair):
    server, client = pair
    read_end, write_end = os.pipe()
    os.write(write_end, b"through a pipe")
    os.close(write_end)
    channel = PlainDataChannel(server, bytearray(64))
    assert channel.send_file(read_end, 0, 100) == 14
    os.close(read_end)
    channel.close()
    assert client.recv(100) == b"through a pipe"


def test_recv_to_file_limit_and_eof(tmp_path, pair):
    server, client = pair
    path = tmp_path / "t"
    path.write_bytes(b"0123456789")
    channel = PlainDataChannel(server, bytearray(4))  # tiny buffer: many iterations
    fd = os.open(path, os.O_RDWR)
    try:
        client.sendall(b"abcdefgh-surplus")
        assert channel.recv_to_file(fd, 2, 8) == 8  # stops at the limit, leaves the rest unread
        assert server.recv(100) == b"-surplus"
        client.sendall(b"XYZ")
        client.shutdown(socket.SHUT_WR)
        assert channel.recv_to_file(fd, 20, 1 << 62) == 3  # until EOF
    finally:
        os.close(fd)
    assert path.read_bytes() == b"01abcdefgh" + bytes(10) + b"XYZ"


def test_recv_to_fifo(tmp_path, pair):
    server, client = pair
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    got = bytearray()

    def consume() -> None:
        with open(fifo, "rb") as handle:
            got.extend(handle.read())

    thread = threading.Thread(target=consume)
    thread.start()
    fd = os.open(fifo, os.O_WRONLY)
    client.sendall(b"fifo data")
    client.shutdown(socket.SHUT_WR)
    assert PlainDataChannel(server, bytearray(16)).recv_to_file(fd, 0, 1 << 62) == 9
    os.close(fd)
    thread.join(10)
    assert bytes(got) == b"fifo data"


def test_read_and_send_bytes(pair):
    server, client = pair
    channel = PlainDataChannel(server, bytearray(16))
    channel.send_bytes(b"listing\r\n")
    assert client.recv(100) == b"listing\r\n"
    client.sendall(b"0123456789")
    client.shutdown(socket.SHUT_WR)
    assert channel.read(4) == b"0123"
    assert channel.read(100) == b"456789"
    assert channel.read(5) == b""


def test_factory_choices(pair):
    from uftpcore.server.codedchannel import CodedDataChannel
    from uftpcore.server.multistream import MultiStreamDataChannel

    server, client = pair
    options = SessionOptions()
    assert isinstance(build_data_channel([server], options, bytearray(1)), PlainDataChannel)
    stack = build_data_channel([server, client], options, bytearray(1))
    assert isinstance(stack, MultiStreamDataChannel) and stack.reusable and not stack.reads_until_eof
    options.compress = True
    stack = build_data_channel([server], options, bytearray(1))
    assert isinstance(stack, CodedDataChannel) and not stack.reusable and not stack.reads_until_eof
    options.set_encryption("a2V5a2V5", None)
    assert options.algo == "BLOWFISH"
    stack = build_data_channel([server], options, bytearray(1))
    assert isinstance(stack, CodedDataChannel) and stack.reads_until_eof
    stack = build_data_channel([server, client], options, bytearray(1))
    assert isinstance(stack, MultiStreamDataChannel) and not stack.reusable and stack.reads_until_eof
    # the placeholder stack still refuses everything (kept for custom factories)
    placeholder = UnsupportedDataChannel([server], "not offered")
    with pytest.raises(OSError, match="not offered"):
        placeholder.send_bytes(b"x")


def test_bug_compat_selection():
    from uftpcore.server.datapath import BUGS, bug_set

    assert bug_set(True) == BUGS and bug_set(False) == frozenset()
    assert bug_set(["upload_padding"]) == {"upload_padding"}
    assert bug_set("upload_padding") == {"upload_padding"}
    with pytest.raises(ValueError, match="unknown bug_compat names"):
        bug_set(["no_such_bug"])


def test_rate_limiter_backs_off():
    limiter = RateLimiter(limit=1000)
    limiter.begin()
    started = time.monotonic()
    for total in (5000, 10000, 15000):
        limiter.after_chunk(total)
    assert limiter.sleep_ms == 15
    assert time.monotonic() - started >= 0.025
    limiter.limit = 10**12
    limiter.after_chunk(1)
    assert limiter.sleep_ms == 7
