"""Lazy loading of the PyFilesystem2 drivers.

``fs`` is an optional extra (and 2.4.16 needs ``setuptools<82`` for ``pkg_resources``), so the
public modules import their implementation only when a name is first used, and turn a missing
``fs`` into an ImportError that says what to install.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_exports(module: str, impl: str, names: list[str], hint: str) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``module`` re-exporting ``names`` from ``impl``."""
    namespace = importlib.import_module(module).__dict__

    def __getattr__(name: str) -> Any:
        if name in names:
            try:
                implementation = importlib.import_module(impl)
            except ImportError as exc:
                if exc.name in ("fs", "pkg_resources") or "pkg_resources" in str(exc):
                    raise ImportError(hint) from exc
                raise
            value = getattr(implementation, name)
            namespace[name] = value
            return value
        raise AttributeError(f"module {module!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted(list(namespace) + names)

    return __getattr__, __dir__
