"""The ``pyunicore-fast`` command line (PyUNICORE's ``unicore`` commands, UFTP file commands
in the style of the Java ``uftp`` client, and the ``serve``/``bench``/``demo`` tools).

Console output lives only in this package; everything it calls logs through ``logging``.
Entry point: :func:`pyunicore_fast.cli.main.main`.
"""

from __future__ import annotations


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("pyunicore_fast")
    except Exception:  # noqa: BLE001 - not installed (source tree): fall back
        return "0.1.0"


def main(argv: list[str] | None = None) -> int:
    from pyunicore_fast.cli.main import main as _main

    return _main(argv)


__all__ = ["main"]
