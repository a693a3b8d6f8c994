"""JPARSS multi-stream framing (spec §5): pure logic shared by client and server.

Every block of S bytes becomes one frame on *each* of the N streams: a 16-byte big-endian
header (magic 0xCEBF, stream index, sequence number, S, chunk length) followed by the chunk.
Stream i < N-1 carries ``[i*floor(S/N), (i+1)*floor(S/N))`` of the block, the last stream the
rest.  There is no end marker: transfers end by byte count or EOF at a frame boundary.
"""

from __future__ import annotations

import struct

from .errors import ProtocolError

MAGIC = 0xCEBF
HEADER = struct.Struct(">HHIII")
HEADER_SIZE = HEADER.size  # 16
#: block size of uftpd and the Java client; Java readers reject larger blocks.
DEFAULT_BLOCK = 16384


def chunk_bounds(block_size: int, streams: int, index: int) -> tuple[int, int]:
    """``(start, length)`` of stream ``index``'s chunk inside a block of ``block_size`` bytes."""
    base = block_size // streams
    start = index * base
    length = block_size - start if index == streams - 1 else base
    return start, length


def pack_header(index: int, seq: int, block_size: int, chunk: int) -> bytes:
    return HEADER.pack(MAGIC, index, seq & 0xFFFFFFFF, block_size, chunk)


def check_header(raw: bytes | memoryview, index: int, streams: int, seq: int) -> tuple[int, int]:
    """Validate one header read on stream ``index``; returns ``(block_size, chunk_length)``.

    Strict like uftpd's reader: magic, index, sequence and the chunk length implied by the
    split rule must all match, otherwise the data would be silently misplaced.
    """
    magic, idx, got_seq, block_size, chunk = HEADER.unpack(raw)
    if magic != MAGIC:
        raise ProtocolError(f"stream {index}: bad frame magic 0x{magic:04X} (expected 0xCEBF)")
    if idx != index:
        raise ProtocolError(f"stream {index}: frame claims stream index {idx}")
    if got_seq != (seq & 0xFFFFFFFF):
        raise ProtocolError(f"stream {index}: frame sequence {got_seq}, expected {seq}")
    _, expect = chunk_bounds(block_size, streams, index)
    if chunk != expect:
        raise ProtocolError(f"stream {index}: chunk of {chunk} bytes in a {block_size}-byte block "
                            f"over {streams} streams (expected {expect})")
    return block_size, chunk
