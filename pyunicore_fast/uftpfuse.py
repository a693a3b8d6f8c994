"""``pyunicore_fast.uftpfuse``: the FUSE driver under the name PyUNICORE's README imports.

PyUNICORE's README writes ``import pyunicore.uftpfuse as uc_fuse``, a module that never
existed there (the driver is ``pyunicore.uftp.uftpfuse``); here both names work.
"""

from pyunicore_fast.uftp.uftpfuse import (
    FUSE,
    FuseDriverConfig,
    FuseOSError,
    Operations,
    UFTPDriver,
    UFTPFile,
    main,
)

__all__ = ["FUSE", "FuseDriverConfig", "FuseOSError", "Operations", "UFTPDriver", "UFTPFile", "main"]
