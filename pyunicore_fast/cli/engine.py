"""The bridge to uftpcore's bulk transfer engine (``uftpcore.transfer``).

The engine plans sessions x streams, splits big files into ranges, verifies and resumes;
the CLI only chooses options and reports.  Keeping every call in this module means the CLI
depends on the engine's API in one place: options it does not take are an error here (the
user asked for them), and its result object is read defensively into a plain ``Outcome``.
"""

from __future__ import annotations

import importlib
import inspect
import logging
from dataclasses import dataclass, field
from typing import Any

from pyunicore_fast.cli.errors import CLIError

log = logging.getLogger(__name__)


def engine() -> Any:
    """``uftpcore.transfer``, or a clear error when this uftpcore has none."""
    try:
        return importlib.import_module("uftpcore.transfer")
    except ImportError as exc:
        raise CLIError(f"the bulk transfer engine uftpcore.transfer is not available ({exc})") from None


def available() -> bool:
    try:
        engine()
        return True
    except CLIError:
        return False


@dataclass
class Outcome:
    """What a transfer did, independent of the engine's result class."""

    files: int = 0
    bytes: int = 0
    seconds: float = 0.0
    verified: bool | None = None
    checksum_algorithm: str | None = None
    #: per file: {"source", "target", "bytes", "checksum", "verified", "status"}
    items: list[dict[str, Any]] = field(default_factory=list)
    skipped_bytes: int = 0
    sessions: int | None = None
    streams: int | None = None
    skipped_files: int = 0
    notes: list[str] = field(default_factory=list)


def call(name: str, endpoint: Any, first: Any, second: Any, **options: Any) -> Outcome:
    """``uftpcore.transfer.<name>(endpoint, first, second, **options)`` -> ``Outcome``.

    Options left at ``None`` are not passed (engine defaults apply).
    """
    func = getattr(engine(), name, None)
    if func is None:
        raise CLIError(f"uftpcore.transfer has no {name}()")
    opts = {k: v for k, v in options.items() if v is not None}
    try:
        params = inspect.signature(func).parameters
    except (TypeError, ValueError):
        params = {}
    if params and not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        unknown = [k for k in opts if k not in params]
        for k in unknown:
            if opts[k] in (False, 0) or (k == "sessions" and opts[k] == 1) or (k == "streams" and opts[k] == 1):
                opts.pop(k)
        unknown = [k for k in opts if k not in params]
        if unknown:
            raise CLIError(f"uftpcore.transfer.{name}() does not support {', '.join(unknown)}")
    log.debug("uftpcore.transfer.%s(%s, %s, %s)", name, first, second, opts)
    return outcome(func(endpoint, first, second, **opts))


def outcome(result: Any) -> Outcome:
    """Read a ``uftpcore.transfer.TransferResult`` into an ``Outcome``."""
    if isinstance(result, Outcome):
        return result
    checksums = getattr(result, "checksums", None) or {}
    items = [{"source": name, "checksum": digest} for name, digest in checksums.items()]
    return Outcome(files=int(getattr(result, "files", 0) or 0), bytes=int(getattr(result, "bytes", 0) or 0),
                   seconds=float(getattr(result, "seconds", 0.0) or 0.0),
                   verified=getattr(result, "verified", None),
                   checksum_algorithm=getattr(result, "algo", None), items=items,
                   skipped_bytes=int(getattr(result, "resumed_bytes", 0) or 0),
                   sessions=getattr(result, "sessions_used", None), streams=getattr(result, "streams_used", None),
                   skipped_files=int(getattr(result, "skipped", 0) or 0),
                   notes=list(getattr(result, "notes", None) or []))
