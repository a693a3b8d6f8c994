"""Build script: compiles uftpcore's Cython hot path, or installs pure Python loudly.

A user must always know which build they got, and an install must never fail just because
no compiler or Cython is available (markupsafe/yarl style).  ``UFTPCORE_NO_EXTENSIONS=1``
forces a pure build.
"""

import os
import sys

from setuptools import setup
from setuptools.command.build_ext import build_ext


def _announce(msg: str) -> None:
    bar = "*" * 72
    sys.stderr.write(f"\n{bar}\n{msg}\n{bar}\n")


class OptionalBuildExt(build_ext):
    """Build the extension if possible; on any compiler failure fall back to pure Python."""

    def run(self):
        try:
            super().run()
        except Exception as exc:  # noqa: BLE001 - any build failure means "pure"
            _announce(f"uftpcore: the Cython extension could not be built ({exc});\n"
                      "installing the PURE-PYTHON implementation (slower, same behaviour).")

    def build_extension(self, ext):
        try:
            super().build_extension(ext)
        except Exception as exc:  # noqa: BLE001
            _announce(f"uftpcore: building {ext.name} failed ({exc});\n"
                      "installing the PURE-PYTHON implementation (slower, same behaviour).")


def _extensions():
    if os.environ.get("UFTPCORE_NO_EXTENSIONS"):
        _announce("uftpcore: UFTPCORE_NO_EXTENSIONS is set: PURE-PYTHON build.")
        return []
    try:
        from Cython.Build import cythonize
    except ImportError:
        _announce("uftpcore: Cython is not available: PURE-PYTHON build.")
        return []
    from setuptools import Extension

    exts = [Extension("uftpcore._fastpath_c", ["uftpcore/_fastpath_c.pyx"],
                      extra_compile_args=["-O2"])]
    _announce("uftpcore: building the ACCELERATED (Cython) implementation.")
    return cythonize(exts, compiler_directives={"language_level": "3", "boundscheck": False,
                                                "wraparound": False})


setup(ext_modules=_extensions(), cmdclass={"build_ext": OptionalBuildExt})
