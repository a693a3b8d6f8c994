"""Chooses the data-channel implementation once, at import (msgpack style).

``UFTPCORE_NO_EXTENSIONS=1`` forces the pure-Python twin; otherwise the compiled Cython module
is used when it imports, and the pure one (with a log line) when it does not.
"""

from __future__ import annotations

import logging
import os

log = logging.getLogger(__name__)

if os.environ.get("UFTPCORE_NO_EXTENSIONS", "").strip() not in ("", "0"):
    from . import _fastpath_py as fastpath
else:
    try:
        from . import _fastpath_c as fastpath  # type: ignore[no-redef]
    except ImportError as _exc:  # extension not built
        log.info("uftpcore: compiled extension unavailable (%s); using pure Python", _exc)
        from . import _fastpath_py as fastpath  # type: ignore[no-redef]

IMPLEMENTATION: str = fastpath.IMPLEMENTATION

__all__ = ["fastpath", "IMPLEMENTATION", "get_fastpath", "available_implementations"]


def get_fastpath(implementation: str | None = None):
    """The hot-loop module for ``implementation`` ("cython", "python", or None = the default).

    Lets benchmarks and tests run both implementations side by side in one process.
    """
    if implementation is None:
        return fastpath
    if implementation == "python":
        from . import _fastpath_py

        return _fastpath_py
    if implementation == "cython":
        from . import _fastpath_c  # raises ImportError when the extension is not built

        return _fastpath_c
    raise ValueError(f"unknown implementation {implementation!r}; use 'cython' or 'python'")


def available_implementations() -> list[str]:
    """Implementations importable in this process (pure Python always is)."""
    names = ["python"]
    try:
        get_fastpath("cython")
        names.insert(0, "cython")
    except ImportError:
        pass
    return names
