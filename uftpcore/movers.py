"""Moving one transfer's bytes over its data connection(s).

A transfer has a *destination* (download) or a *source* (upload) and runs over 1..N sockets,
plain or through per-stream codecs (encryption, gzip).  The plain paths call the hot loops of
the chosen implementation (``fastpath``): data lands at its final position, one thread per
stream with the GIL released.  The codec paths decode per stream in threads as well
(``cryptography`` and ``zlib`` release the GIL on large buffers).

Destinations: ``BufferDest`` (caller memory) and ``FileDest`` (``pwrite`` into a file).
Sources: ``BufferSource`` and ``FileSource`` (``sendfile``), ``StreamSource`` (a file object,
single stream only).
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable, Sequence
from typing import Any, BinaryIO

from .errors import ProtocolError, TransferIncompleteError
from .jparss import DEFAULT_BLOCK, HEADER_SIZE, check_header, chunk_bounds, pack_header
from .streamcodec import Decoder, DecodingReader, Encoder


# ------------------------------------------------------------------------------ destinations
class BufferDest:
    """Receive into caller memory (bytearray, memoryview, numpy array, mmap)."""

    def __init__(self, view: memoryview):
        self.view = view

    def recv_plain(self, fp: Any, sock: socket.socket, count: int, timeout: float) -> int:
        return fp.recv_into(sock, self.view[:count], timeout)

    def recv_frames(self, fp: Any, sock: socket.socket, index: int, streams: int, count: int,
                    timeout: float) -> tuple[int, int]:
        return fp.recv_frames_into(sock, index, streams, self.view[:count], timeout)

    def write_at(self, pos: int, data: bytes | memoryview) -> None:
        self.view[pos:pos + len(data)] = data

    def shifted(self, delta: int) -> BufferDest:
        return BufferDest(self.view[delta:])


class FileDest:
    """``pwrite`` into an open file descriptor at ``base`` + transfer position."""

    def __init__(self, fd: int, base: int, scratch_factory: Callable[[], bytearray],
                 release: Callable[[bytearray], None]):
        self.fd = fd
        self.base = base
        self._get = scratch_factory
        self._put = release

    def recv_plain(self, fp: Any, sock: socket.socket, count: int, timeout: float) -> int:
        buf = self._get()
        try:
            return fp.recv_to_fd(sock, self.fd, self.base, count, buf, timeout)
        finally:
            self._put(buf)

    def recv_frames(self, fp: Any, sock: socket.socket, index: int, streams: int, count: int,
                    timeout: float) -> tuple[int, int]:
        buf = self._get()
        try:
            return fp.recv_frames_to_fd(sock, index, streams, self.fd, self.base, count, buf, timeout)
        finally:
            self._put(buf)

    def shifted(self, delta: int) -> FileDest:
        return FileDest(self.fd, self.base + delta, self._get, self._put)

    def write_at(self, pos: int, data: bytes | memoryview) -> None:
        view = memoryview(data)
        done = 0
        while done < len(view):
            done += os.pwrite(self.fd, view[done:], self.base + pos + done)


def receive(fp: Any, socks: Sequence[socket.socket], dest: BufferDest | FileDest, count: int, timeout: float,
            key: bytes | None = None, algo: str | None = None, compress: bool = False) -> int:
    """Receive a transfer of ``count`` bytes; returns the bytes placed (short only if the
    server sent fewer, e.g. a range beyond EOF)."""
    n = len(socks)
    coded = key is not None or compress
    _check_combination(n, key, compress)
    if n == 1 and not coded:
        return dest.recv_plain(fp, socks[0], count, timeout)
    if n == 1:
        reader = DecodingReader(socks[0], Decoder(key, algo, compress, padded=True), timeout)
        return _copy_decoded(reader, dest, count)
    if not coded:
        results = _run_streams(n, lambda i: dest.recv_frames(fp, socks[i], i, n, count, timeout), socks)
    else:
        readers = [DecodingReader(socks[i], Decoder(key, algo, compress, padded=False), timeout) for i in range(n)]
        results = _run_streams(n, lambda i: _recv_frames_decoded(readers[i], i, n, dest, count), socks)
    placed = sum(r[0] for r in results)
    covered = {r[1] for r in results}
    if len(covered) != 1:
        raise ProtocolError(f"streams ended at different positions {sorted(covered)}")
    if placed != covered.pop():
        raise ProtocolError("stream payloads do not add up to the blocks announced")
    return placed


def _copy_decoded(reader: DecodingReader, dest: BufferDest | FileDest, count: int) -> int:
    scratch = memoryview(bytearray(min(count, 1 << 20) or 1))
    pos = 0
    while pos < count:
        n = reader.readinto(scratch[: min(len(scratch), count - pos)])
        if n == 0:
            break
        dest.write_at(pos, scratch[:n])
        pos += n
    if pos == count:
        # consume the rest so padding/trailer are verified (the server closes after them)
        tail = bytearray(64)
        if reader.read_exact(memoryview(tail)):
            raise ProtocolError("server sent more data than announced")
    return pos


def _recv_frames_decoded(reader: DecodingReader, index: int, streams: int, dest: BufferDest | FileDest,
                         count: int) -> tuple[int, int]:
    header = bytearray(HEADER_SIZE)
    hview = memoryview(header)
    chunk_buf = memoryview(bytearray(DEFAULT_BLOCK))
    pos = placed = seq = 0
    while pos < count:
        got = reader.read_exact(hview)
        if got == 0:
            break
        if got < HEADER_SIZE:
            raise ProtocolError(f"stream {index}: truncated frame header ({got} bytes)")
        block, chunk = check_header(header, index, streams, seq)
        if pos + block > count:
            raise ProtocolError(f"stream {index}: block {seq} ends beyond the announced {count} bytes")
        if chunk > len(chunk_buf):
            chunk_buf = memoryview(bytearray(chunk))
        if chunk:
            if reader.read_exact(chunk_buf[:chunk]) < chunk:
                raise ProtocolError(f"stream {index}: stream ended inside frame {seq}")
            dest.write_at(pos + (block // streams) * index, chunk_buf[:chunk])
        placed += chunk
        pos += block
        seq += 1
    return placed, pos


# ------------------------------------------------------------------------------ sources
class BufferSource:
    def __init__(self, view: memoryview):
        self.view = view
        self.length = len(view)

    def send_plain(self, fp: Any, sock: socket.socket, timeout: float) -> int:
        fp.send_all(sock, self.view, timeout)
        return len(self.view)

    def send_frames(self, fp: Any, sock: socket.socket, index: int, streams: int, block: int, timeout: float) -> int:
        return fp.send_frames(sock, index, streams, self.view, -1, 0, self.length, block, timeout)

    def read_at(self, pos: int, n: int) -> memoryview:
        return self.view[pos:pos + n]

    def part(self, start: int, length: int) -> BufferSource:
        return BufferSource(self.view[start:start + length])


class FileSource:
    def __init__(self, fd: int, offset: int, length: int):
        self.fd = fd
        self.offset = offset
        self.length = length

    def send_plain(self, fp: Any, sock: socket.socket, timeout: float) -> int:
        return fp.sendfile_all(sock, self.fd, self.offset, self.length, timeout)

    def send_frames(self, fp: Any, sock: socket.socket, index: int, streams: int, block: int, timeout: float) -> int:
        return fp.send_frames(sock, index, streams, None, self.fd, self.offset, self.length, block, timeout)

    def part(self, start: int, length: int) -> FileSource:
        return FileSource(self.fd, self.offset + start, length)

    def read_at(self, pos: int, n: int) -> bytes:
        data = os.pread(self.fd, n, self.offset + pos)
        if len(data) != n:
            raise TransferIncompleteError(f"local file ended at {self.offset + pos + len(data)}", n, len(data))
        return data


class StreamSource:
    """A readable file object, length unknown (single plain or coded stream only)."""

    def __init__(self, fileobj: BinaryIO, length: int | None, scratch: bytearray):
        self.fileobj = fileobj
        self.length = length
        self.scratch = memoryview(scratch)

    def chunks(self):
        sent = 0
        while self.length is None or sent < self.length:
            want = len(self.scratch) if self.length is None else min(len(self.scratch), self.length - sent)
            readinto = getattr(self.fileobj, "readinto", None)
            if readinto is not None:
                n = readinto(self.scratch[:want]) or 0
            else:
                data = self.fileobj.read(want)
                n = len(data)
                self.scratch[:n] = data
            if not n:
                return
            sent += n
            yield self.scratch[:n]

    def send_plain(self, fp: Any, sock: socket.socket, timeout: float) -> int:
        sent = 0
        for chunk in self.chunks():
            fp.send_all(sock, chunk, timeout)
            sent += len(chunk)
        return sent


def send(fp: Any, socks: Sequence[socket.socket], source: Any, timeout: float, key: bytes | None = None,
         algo: str | None = None, compress: bool = False, block: int = DEFAULT_BLOCK,
         avoid_multiple: int = 0) -> int:
    """Send a transfer from ``source``; returns the payload bytes sent.  Coded single streams
    end with padding/trailer; coded multi-streams end unpadded (what uftpd's reader needs)."""
    n = len(socks)
    coded = key is not None or compress
    _check_combination(n, key, compress)
    if n == 1 and not coded:
        return source.send_plain(fp, socks[0], timeout)
    if n == 1:
        enc = Encoder(key, algo, compress)
        sent = 0
        chunks = source.chunks() if isinstance(source, StreamSource) else _source_chunks(source)
        for chunk in chunks:
            out = enc.encode(chunk)
            if out:
                fp.send_all(socks[0], out, timeout)
            sent += len(chunk)
        fp.send_all(socks[0], enc.finish(padded=True, avoid_multiple=avoid_multiple), timeout)
        return sent
    if not coded:
        return sum(_run_streams(n, lambda i: source.send_frames(fp, socks[i], i, n, block, timeout), socks))
    return sum(_run_streams(n, lambda i: _send_frames_encoded(fp, socks[i], i, n, source, block, timeout,
                                                                  key, algo, compress), socks))


def _source_chunks(source: Any, size: int = 1 << 20):
    pos = 0
    while pos < source.length:
        n = min(size, source.length - pos)
        yield source.read_at(pos, n)
        pos += n


def _send_frames_encoded(fp: Any, sock: socket.socket, index: int, streams: int, source: Any, block: int,
                         timeout: float, key: bytes | None, algo: str | None, compress: bool) -> int:
    enc = Encoder(key, algo, compress)
    sent = pos = seq = 0
    while pos < source.length:
        size = min(block, source.length - pos)
        start, chunk = chunk_bounds(size, streams, index)
        frame = pack_header(index, seq, size, chunk) + bytes(source.read_at(pos + start, chunk))
        out = enc.encode(frame, sync_flush=compress)
        if out:
            fp.send_all(sock, out, timeout)
        sent += chunk
        pos += size
        seq += 1
    tail = enc.finish(padded=False)
    if tail:
        fp.send_all(sock, tail, timeout)
    return sent


def _check_combination(streams: int, key: bytes | None, compress: bool) -> None:
    if streams > 1 and key is not None and compress:
        raise ValueError("encryption with compression over several streams cannot end on cipher block "
                         "boundaries (spec §6.5/§7.3); use one stream")


# ------------------------------------------------------------------------------ threads
def _run_streams(n: int, work: Callable[[int], Any], socks: Sequence[socket.socket]) -> list[Any]:
    """Run ``work(i)`` for every stream in its own thread; on the first failure shut every
    socket down (so no other stream thread waits for a dead transfer), then re-raise it."""
    results: list[Any] = [None] * n
    first: list[BaseException] = []  # the root cause; later errors are mostly the shutdown's
    lock = threading.Lock()

    def run(i: int) -> None:
        try:
            results[i] = work(i)
        except BaseException as exc:  # collected and re-raised in the caller
            with lock:
                if not first:
                    first.append(exc)
            for s in socks:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    threads = [threading.Thread(target=run, args=(i,), name=f"uftp-stream-{i}", daemon=True) for i in range(1, n)]
    for t in threads:
        t.start()
    run(0)
    for t in threads:
        t.join()
    if first:
        raise first[0]
    return results
