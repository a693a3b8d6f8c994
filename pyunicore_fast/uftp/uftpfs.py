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

from typing import TYPE_CHECKING

from ._lazyfs import lazy_exports

if TYPE_CHECKING:
    from ._pyfs import UFTPFS, UFTPOpener

__all__ = ["UFTPFS", "UFTPOpener"]

_INSTALL_HINT = ("the UFTP PyFilesystem driver needs the 'fs' package: pip install 'pyunicore_fast[fs]' "
                 "(fs>=2.4.16 with setuptools<82, because fs imports pkg_resources)")


__getattr__, __dir__ = lazy_exports(__name__, 'pyunicore_fast.uftp._pyfs', __all__, _INSTALL_HINT)
