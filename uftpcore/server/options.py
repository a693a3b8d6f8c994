"""Per-session options, settable with ``OPTS`` (spec §3.5.1).

Mirrors uftpd 3.5.3's option object including its oddities: the listing echoes option
values in its own format, ``FILE_WRITE_BUFFER_SIZE`` is accepted but has no effect,
``RATE_LIMIT`` can only lower a limit the job already has, and a ``NOOP n`` above
``MAX_STREAMS`` is silently capped.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

#: uftpd 3.5.3's default single-stream network chunk and file buffer size
DEFAULT_BUFFER_SIZE = 1024 * 1024
#: fixed block size with multiple streams (compatibility with the Java JPARSS reader)
MULTI_STREAM_BLOCK = 16384

HASH_ALGORITHMS: dict[str, Callable[[], hashlib._Hash]] = {
    "MD5": hashlib.md5,
    "SHA-1": hashlib.sha1,
    "SHA-256": hashlib.sha256,
    "SHA-512": hashlib.sha512,
}

_TRUE_WORDS = ("true", "1", "yes")


def _positive_int(value: str) -> int:
    number = int(value)
    if number < 0:
        raise ValueError("Need positive value")
    return number


class SessionOptions:
    """Options of one FTP session (stream count, buffers, hash, keep-alive, archive, ...)."""

    def __init__(self, max_streams: int = 4, rate_limit: int = 0, multistream_block: int = MULTI_STREAM_BLOCK,
                 bugs: frozenset[str] = frozenset()):
        self._num_streams = 1
        #: JPARSS block size of this server's multi-stream writer and reader requests
        self.multistream_block = multistream_block
        #: uftpd data-path defects to reproduce (names from ``datapath.BUGS``)
        self.bugs = bugs
        self.max_streams = max_streams
        self._buffer_size = DEFAULT_BUFFER_SIZE
        self.file_read_buffer_size = DEFAULT_BUFFER_SIZE
        self.file_write_buffer_size = DEFAULT_BUFFER_SIZE
        self.rate_limit = rate_limit
        self.initial_rate_limit = rate_limit
        self.archive_mode = False
        self.keep_alive = False
        self.key: bytes | None = None
        self.algo = "n/a"
        self.compress = False
        self._hash_algorithm = "MD5"
        #: reported by OPTS; this server uses sendfile for every plain download regardless
        self.sendfile_enabled = False

    # -- streams -------------------------------------------------------------------------
    @property
    def num_streams(self) -> int:
        return self._num_streams

    @num_streams.setter
    def num_streams(self, value: int) -> None:
        # no lower bound: uftpd accepts 0 and negative values
        self._num_streams = min(value, self.max_streams)

    @property
    def buffer_size(self) -> int:
        """Network chunk size: BUFFER_SIZE for one stream, the block size (16384) with several."""
        return self._buffer_size if self._num_streams == 1 else self.multistream_block

    # -- hashing -------------------------------------------------------------------------
    @property
    def hash_algorithm(self) -> str:
        return self._hash_algorithm

    @hash_algorithm.setter
    def hash_algorithm(self, name: str) -> None:
        name = name.upper()
        if name not in HASH_ALGORITHMS:
            raise ValueError(f"Unsupported hash algorithm '{name}'")
        self._hash_algorithm = name

    def new_hash(self):
        return HASH_ALGORITHMS[self._hash_algorithm]()

    def hash_feature(self) -> str:
        """``MD5*;SHA-1;SHA-256;SHA-512`` with ``*`` on the current algorithm (FEAT)."""
        return ";".join(name + ("*" if name == self._hash_algorithm else "") for name in HASH_ALGORITHMS)

    # -- encryption ----------------------------------------------------------------------
    def set_encryption(self, key_b64: str | None, algo: str | None) -> None:
        """Decode the job's key; infer the algorithm from the key length when absent (§6.1)."""
        if key_b64 is None:
            return
        from base64 import b64decode

        self.key = b64decode(key_b64)
        if algo is None:
            if len(self.key) in (16 + 16, 16 + 24, 16 + 32):
                self.algo = "AES"
            else:
                self.algo = "BLOWFISH"
                if len(self.key) > 56:
                    raise ValueError("Illegal key length")
        else:
            self.algo = algo

    def is_encrypt(self) -> bool:
        return self.key is not None

    # -- OPTS ----------------------------------------------------------------------------
    def listing(self) -> list[str]:
        """Lines of the ``211-OPTS`` reply, in uftpd's order and format."""
        return [
            f"RATE_LIMIT {self.rate_limit}",
            f"FILE_READ_BUFFER_SIZE {self.file_read_buffer_size}",
            f"FILE_WRITE_BUFFER_SIZE {self.file_write_buffer_size}",
            f"BUFFER_SIZE {self._buffer_size}",
            f"SENDFILE_ENABLED {self.sendfile_enabled}",
            f"HASH {self._hash_algorithm}",
        ]

    def set(self, option: str, value: str) -> None:
        """Set one option; errors carry uftpd's messages (they become 500 replies)."""
        if option == "FILE_READ_BUFFER_SIZE":
            self.file_read_buffer_size = _positive_int(value)
        elif option == "FILE_WRITE_BUFFER_SIZE":
            _positive_int(value)  # validated, then dropped: uftpd's setter has a typo
        elif option == "BUFFER_SIZE":
            self._buffer_size = _positive_int(value)
        elif option == "HASH":
            self.hash_algorithm = value
        elif option == "SENDFILE_ENABLED":
            self.sendfile_enabled = value.lower() in _TRUE_WORDS
        elif option == "KEEP_ALIVE":
            self.keep_alive = value.lower() in _TRUE_WORDS
        elif option == "ARCHIVE":
            self.archive_mode = value.lower() in _TRUE_WORDS
        elif option == "RATE_LIMIT":
            requested = _positive_int(value)
            if self.initial_rate_limit <= 0:
                self.rate_limit = requested
            else:
                self.rate_limit = min(self.initial_rate_limit, requested)
        else:
            raise ValueError(f"Unknown option '{option}'")
