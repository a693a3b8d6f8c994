"""PyFilesystem2 driver for UFTP (``pyunicore.uftp.uftpfs``): ``UFTPFS`` and the ``uftp://`` opener.

Usage, as in PyUNICORE's README::

    from fs import open_fs
    uftp_fs = open_fs("uftp://demouser:test123@localhost:9000/rest/auth/TEST:/data")

    from pyunicore_fast.credentials import UsernamePassword
    from pyunicore_fast.uftp.uftpfs import UFTPFS
    uftp_fs = UFTPFS("https://localhost:9000/rest/auth/TEST", UsernamePassword("demouser", "test123"), "/data")

URL form, token specs (value, ``@file``, ``@@ENVVAR``) and SSH-key identities are described in
:mod:`pyunicore_fast.uftp.urls`; ``uftp+http://`` selects a plain-http Auth server (loopback
tests only).  What the driver does on the wire: :mod:`pyunicore_fast.uftp._pyfs`.

``fs`` is an optional extra (``pip install pyunicore_fast[fs]``) and is imported only when
``UFTPFS`` or ``UFTPOpener`` is first used, so importing this module never fails without it.
Pin: ``fs`` 2.4.16 (the last release) imports ``pkg_resources``, which setuptools 82 removed;
the ``fs`` extra therefore requires ``setuptools<82``.  Without that pin ``import fs`` fails with
``ModuleNotFoundError: No module named 'pkg_resources'``.

Differences from PyUNICORE's class: ``UFTPFS`` derives from ``fs.base.FS``, not
``fs.ftpfs.FTPFS`` (it speaks UFTP's own commands instead of emulating FTP), and ``creds`` may
also be a ``(username, password)`` tuple.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._pyfs import UFTPFS, UFTPOpener

__all__ = ["UFTPFS", "UFTPOpener"]

_INSTALL_HINT = ("the UFTP PyFilesystem driver needs the 'fs' package: pip install 'pyunicore_fast[fs]' "
                 "(fs>=2.4.16 with setuptools<82, because fs imports pkg_resources)")


def __getattr__(name: str) -> Any:
    if name in __all__:
        try:
            impl = importlib.import_module("pyunicore_fast.uftp._pyfs")
        except ImportError as exc:
            if exc.name in ("fs", "pkg_resources") or "pkg_resources" in str(exc):
                raise ImportError(_INSTALL_HINT) from exc
            raise
        value = getattr(impl, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
