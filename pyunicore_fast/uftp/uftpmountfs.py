"""PyFilesystem2 ``uftpmount://``: mount a UFTP server with FUSE, then use it as an ``OSFS``
(PyUNICORE 1.3.7's ``pyunicore.uftp.uftpmountfs``).

Usage, as in PyUNICORE::

    from fs import open_fs
    fs = open_fs("uftpmount://demouser:test123@localhost:9000/rest/auth/TEST:/opt/shared-data==/mnt")

    from pyunicore_fast.credentials import UsernamePassword
    from pyunicore_fast.uftp.uftpmountfs import UFTPMOUNTFS
    fs = UFTPMOUNTFS("https://localhost:9000/rest/auth/TEST", UsernamePassword("demouser", "test123"),
                     "/opt/shared-data", "/mnt")

The mount is done by the ``unicore-fusedriver`` command (:mod:`pyunicore_fast.uftp.uftpfuse`)
running in the background; ``close()`` unmounts it.  ``fs`` is an optional extra and is
imported only when ``UFTPMOUNTFS`` or ``UFTPMountOpener`` is first used (see
:mod:`pyunicore_fast.uftp.uftpfs` for the ``setuptools<82`` pin ``fs`` needs).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._lazyfs import lazy_exports

if TYPE_CHECKING:
    from ._mountfs import UFTPMOUNTFS, UFTPMountOpener

__all__ = ["UFTPMOUNTFS", "UFTPMountOpener"]

_INSTALL_HINT = ("uftpmount:// needs the 'fs' package: pip install 'pyunicore_fast[fs,fuse]' "
                 "(fs>=2.4.16 with setuptools<82, because fs imports pkg_resources)")


__getattr__, __dir__ = lazy_exports(__name__, 'pyunicore_fast.uftp._mountfs', __all__, _INSTALL_HINT)
