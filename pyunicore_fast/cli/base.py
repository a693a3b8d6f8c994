"""``Base``: what every sub-command shares — options, configuration, credential, registry.

Mirrors PyUNICORE's ``pyunicore.cli.base.Base`` (same members, same ``-v``/``-c`` options and
properties file) so that code written against it keeps working, with these differences:
errors are exceptions with one-line messages (see :mod:`.errors`), the credential can also
come from ``-u``/``--token``/``-i`` and ``UFTP_*`` variables (see :mod:`.auth`), and the
registry is contacted only by commands that need it.
"""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import sys
from typing import Any, NoReturn

from pyunicore_fast.cli import auth
from pyunicore_fast.cli import config as configuration
from pyunicore_fast.cli.errors import UsageError

log = logging.getLogger(__name__)

PROG = "pyunicore-fast"


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (and an exception the dispatcher reports)."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message} (see '{self.prog} -h')")


class Base:
    """Base command class with support for common commandline args."""

    #: sub-command name (``pyunicore-fast <name>``)
    name = ""
    #: whether ``setup`` resolves a credential (False for purely local commands)
    uses_credential = True
    #: whether ``-i`` means ``--identity`` (``rest`` keeps PyUNICORE's ``-i/--include``)
    short_identity = True

    def __init__(self, password_source: auth.PasswordSource | None = None):
        self.parser = ArgumentParser(prog=f"{PROG} {self.name}".strip(), description=self.get_synopsis(),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
        self.config: dict[str, Any] = {"verbose": False}
        self.args: argparse.Namespace | None = None
        self.credential: Any = None
        self._registry: Any = None
        self._registry_made = False
        self.is_verbose = False
        self.config_file = configuration.default_config_file()
        self.add_base_args()
        self.add_command_args()
        self.password_source = password_source or getpass.getpass

    # -- options ------------------------------------------------------------------------------
    def add_base_args(self) -> argparse._ArgumentGroup:
        general = self.parser.add_argument_group("General options")
        general.add_argument("-v", "--verbose", required=False, action="store_true", help="Be verbose")
        general.add_argument("-c", "--configuration", metavar="CONFIG", default=None,
                             help=f"Configuration file (default: {configuration.default_config_file()})")
        general.add_argument("--debug", action="store_true", help="Debug logging and tracebacks on errors")
        if self.uses_credential:
            self.add_auth_args()
        return general

    def add_auth_args(self) -> argparse._ArgumentGroup:
        group = self.parser.add_argument_group(
            "Authentication", "Default: UFTP_USER/UFTP_PASSWORD, then the configuration file, else anonymous.")
        group.add_argument("-u", "--user", metavar="USER[:PASSWORD]",
                           help="User name (and password; asked for on the terminal if missing)")
        group.add_argument("--token", metavar="TOKEN|@FILE|@@ENV",
                           help="Bearer token: the value, @file to read it, @@NAME from an environment variable")
        identity_flags = ("-i", "--identity") if self.short_identity else ("--identity",)
        group.add_argument(*identity_flags, metavar="KEYFILE", dest="identity",
                           help="SSH private key for key-based authentication (JWT)")
        group.add_argument("--registry", metavar="URL", help="Registry URL (overrides 'registry' in the configuration)")
        return group

    def add_command_args(self) -> None:
        pass

    # -- set-up ---------------------------------------------------------------------------------
    def setup(self, args: list[str]) -> None:
        """Parse the arguments, load the configuration, resolve the credential."""
        self.args = self.parser.parse_intermixed_args(args)  # options may follow positionals
        self.is_verbose = bool(getattr(self.args, "verbose", False))
        self.config["verbose"] = self.is_verbose
        explicit = getattr(self.args, "configuration", None)
        self.config_file = explicit or configuration.default_config_file()
        self.load_user_properties(required=explicit is not None)
        if self.uses_credential:
            self.create_credential()

    def load_user_properties(self, required: bool = True) -> None:
        self.config.update(configuration.load_properties(self.config_file, required=required))

    def create_credential(self) -> None:
        """Options and UFTP_* environment first, then the configuration file, else anonymous."""
        a = self.args
        cred = auth.from_options(getattr(a, "user", None), getattr(a, "token", None),
                                 getattr(a, "identity", None), self._password_source())
        if cred is None:
            cred = auth.from_config(self.config, self._password_source())
        if cred is None:
            from pyunicore_fast.credentials import Anonymous

            log.debug("no credentials configured: anonymous access")
            cred = Anonymous()
        self.credential = cred

    def _password_source(self) -> auth.PasswordSource | None:
        return None if self.password_source is getpass.getpass else self.password_source

    def _get_password(self, key: str = "password") -> str:
        return auth._config_password(self.config, self._password_source(), key)

    # -- registry -----------------------------------------------------------------------------------
    def _require_registry(self) -> bool:
        return bool(self.config.get("contact-registry", True))

    def registry_url(self) -> str | None:
        return getattr(self.args, "registry", None) or self.config.get("registry")

    def create_registry(self) -> Any:
        """A ``Registry`` (None when ``contact-registry=false``)."""
        if not self._require_registry():
            return None
        url = self.registry_url()
        if not url:
            raise UsageError(f"no registry configured: put 'registry=URL' into {self.config_file} "
                             "or use --registry URL")
        from pyunicore_fast.client import Registry

        return Registry(self.transport(), url)

    @property
    def registry(self) -> Any:
        """Created on first use: only commands that need it contact it."""
        if not self._registry_made:
            self._registry = self.create_registry()
            self._registry_made = True
        return self._registry

    @registry.setter
    def registry(self, value: Any) -> None:
        self._registry = value
        self._registry_made = True

    def transport(self) -> Any:
        from pyunicore_fast.client import Transport

        return Transport(self.credential, verify=tls_verify())

    # -- descriptions and output ----------------------------------------------------------------
    def get_description(self) -> str:
        return "N/A"

    def get_synopsis(self) -> str:
        return "N/A"

    def get_group(self) -> str:
        return "Other"

    def verbose(self, msg: str) -> None:
        if self.is_verbose:
            print(msg, file=sys.stderr if getattr(self.args, "json", False) else sys.stdout)

    def human_readable(self, value: float, decimals: int = 0) -> str:
        unit = "B"
        for unit in ["B", "KB", "MB", "GB"]:
            if value < 1024.0 or unit == "GB":
                break
            value /= 1024.0
        return f"{value:.{decimals}f} {unit}"

    def _value(self, value: str) -> Any:
        return configuration.convert_value(value, self.config_file)

    def run(self, args: list[str]) -> int | None:  # pragma: no cover - every command overrides
        raise NotImplementedError


def tls_verify() -> bool | str:
    """The peers (UCC, PyUNICORE, Java uftp) do not check server certificates by default;
    ``REQUESTS_CA_BUNDLE`` switches verification on with that bundle."""
    return os.environ.get("REQUESTS_CA_BUNDLE") or False


def __getattr__(name: str) -> Any:
    """PyUNICORE has ``IssueToken`` and ``REST`` in ``cli.base``; they live in ``cli.rest``."""
    if name in ("IssueToken", "REST"):
        from pyunicore_fast.cli import rest

        return getattr(rest, name)
    raise AttributeError(name)
