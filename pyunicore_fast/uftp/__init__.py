"""UFTP support (``pyunicore.uftp``).

``UFTP`` and ``AuthServer`` live in :mod:`pyunicore_fast.uftp.uftp`; they are also exported
here because PyUNICORE's README imports them as ``pyunicore.uftp.UFTP``.
"""

from pyunicore_fast.uftp.uftp import UFTP, AuthServer

__all__ = ["UFTP", "AuthServer"]
