"""Fixtures of the CLI tests (loaded with ``pytest_plugins = ["tests.cli_fixtures"]``):
``cli_home`` (HOME of every CLI run of a module) and ``cli_site`` (``pyunicore-fast serve``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .cli_support import Served


@pytest.fixture(scope="module")
def cli_home(tmp_path_factory) -> str:
    """HOME of every CLI run in a module (no ~/.ucc/properties unless a test writes one)."""
    return str(tmp_path_factory.mktemp("cli-home"))


@pytest.fixture(scope="module")
def cli_site(cli_home) -> Iterator[Served]:
    with Served(cli_home) as served:
        yield served
