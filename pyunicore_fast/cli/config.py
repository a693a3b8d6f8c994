"""The UCC/PyUNICORE properties file (``~/.ucc/properties``): ``key=value`` lines.

Same rules as PyUNICORE's ``unicore`` command, so one file serves both tools: ``#`` starts a
comment, ``true``/``false`` become booleans, other values get ``${VAR}``/``$VAR`` substituted
from the environment.  Where PyUNICORE crashes (an unset variable, a missing default file)
we say what is wrong in one line, or carry on with an empty configuration.
"""

from __future__ import annotations

import os
from string import Template
from typing import Any

from pyunicore_fast.cli.errors import UsageError


def default_config_file() -> str:
    """``$HOME/.ucc/properties`` (PyUNICORE's default)."""
    return os.path.join(os.getenv("HOME") or os.path.expanduser("~"), ".ucc", "properties")


def convert_value(value: str, where: str = "") -> Any:
    """``true``/``false`` -> bool, anything else -> the string with ``$VARS`` expanded."""
    if value.lower() == "true":
        return True
    if value.lower() == "false":
        return False
    try:
        return Template(value).substitute(os.environ)
    except KeyError as exc:
        raise UsageError(f"{where}: environment variable ${exc.args[0]} is not set") from None
    except ValueError:
        raise UsageError(f"{where}: invalid '$' in value (write $$ for a literal dollar sign)") from None


def load_properties(path: str, *, required: bool) -> dict[str, Any]:
    """Parse a properties file; a missing file is an error only when ``required``."""
    config: dict[str, Any] = {}
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.readlines()
    except FileNotFoundError:
        if required:
            raise UsageError(f"configuration file {path} not found") from None
        return config
    except OSError as exc:
        raise UsageError(f"cannot read configuration file {path}: {exc.strerror or exc}") from None
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        config[key.strip()] = convert_value(value.strip(), f"{path} line {number}")
    return config
