"""uftpcore errors as the ``OSError`` subclasses file-system users expect.

uftpd (a Python server) reports failed file operations as ``500 Error processing command
'MKD': [Errno 17] File exists: '/path'`` and missing paths as ``550``.  Both drivers need the
*kind* of failure (fsspec code tests ``FileNotFoundError``/``FileExistsError``, PyFilesystem
maps ``errno`` to ``fs.errors``), so the errno in the reply text becomes a real ``OSError``
with ``errno`` and ``filename`` set; the original exception stays chained.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
from collections.abc import Iterator

from uftpcore.errors import AuthenticationError, NotFoundError, PermissionDeniedError, ReplyError, UFTPError

_ERRNO_RE = re.compile(r"\[Errno (\d+)\]\s*([^:\]]*)")


def to_oserror(exc: BaseException, path: str | None = None) -> BaseException:
    """The ``OSError`` (with errno) equivalent of a uftpcore error; other exceptions unchanged."""
    if isinstance(exc, OSError) and exc.errno is not None:
        return exc
    if isinstance(exc, AuthenticationError):
        code = errno.EACCES if exc.status in (401, 403) else errno.EIO
        err = OSError(code, str(exc), path)
        err.__cause__ = exc
        return err
    if isinstance(exc, ReplyError):
        m = _ERRNO_RE.search(exc.text)
        if m:
            code = int(m.group(1))
            err = OSError(code, m.group(2).strip() or os.strerror(code), path)
        elif isinstance(exc, NotFoundError):
            err = FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), path)
        elif isinstance(exc, PermissionDeniedError):
            err = PermissionError(errno.EACCES, exc.text, path)
        else:
            err = OSError(errno.EIO, exc.text, path)
        err.__cause__ = exc
        return err
    if isinstance(exc, ValueError) and "leading/trailing blanks" in str(exc):
        err = OSError(errno.EINVAL, str(exc), path)
        err.__cause__ = exc
        return err
    if isinstance(exc, UFTPError) and not isinstance(exc, OSError):
        err = OSError(errno.EIO, str(exc), path)
        err.__cause__ = exc
        return err
    return exc


@contextlib.contextmanager
def oserrors(path: str | None = None) -> Iterator[None]:
    """``with oserrors(path):`` -- re-raise uftpcore errors as ``OSError`` subclasses."""
    try:
        yield
    except (UFTPError, ValueError) as exc:
        translated = to_oserror(exc, path)
        if translated is exc:
            raise
        raise translated from exc


def is_errno(exc: BaseException, *codes: int) -> bool:
    """Whether ``exc`` (translated) carries one of the errno ``codes``."""
    translated = to_oserror(exc)
    return isinstance(translated, OSError) and translated.errno in codes
