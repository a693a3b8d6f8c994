"""Who the user is: credentials from options, environment, configuration or a prompt.

The peers' habits, in this order of precedence:

1. ``--token VALUE`` (``@file`` reads a file, ``@@NAME`` an environment variable) — Bearer;
2. ``-u user[:password]`` (Java ``uftp``), optionally with ``-i/--identity KEY`` for an SSH
   key (a JWT signed with it, as pyuftp and UCC do);
3. ``UFTP_USER`` / ``UFTP_PASSWORD`` (Java ``uftp``), ``UFTP_TOKEN``;
4. the properties file (``authentication-method`` etc., as PyUNICORE's ``unicore``);
5. nothing: anonymous.

A password that is still missing is asked for on the terminal; without a terminal the
command fails with a message naming the ways to supply it (a hanging prompt in a batch
job is worse than an error).
"""

from __future__ import annotations

import getpass
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from pyunicore_fast import credentials as creds
from pyunicore_fast.cli.errors import UsageError

PasswordSource = Callable[[str], str]


def read_token(spec: str) -> str:
    """``--token`` value: literal, ``@file`` (first line of a file) or ``@@NAME`` (environment)."""
    if spec.startswith("@@"):
        name = spec[2:]
        value = os.environ.get(name)
        if not value:
            raise UsageError(f"--token @@{name}: environment variable {name} is not set")
        return value.strip()
    if spec.startswith("@"):
        path = os.path.expanduser(spec[1:])
        try:
            with open(path, encoding="utf-8") as f:
                value = f.read().strip()
        except OSError as exc:
            raise UsageError(f"--token @{spec[1:]}: {exc.strerror or exc}") from None
        if not value:
            raise UsageError(f"--token @{spec[1:]}: the file is empty")
        return value.splitlines()[0].strip()
    if not spec.strip():
        raise UsageError("--token: empty token")
    return spec.strip()


def split_user(spec: str) -> tuple[str, str | None]:
    """``user:password`` -> (user, password); ``user`` -> (user, None)."""
    user, sep, password = spec.partition(":")
    if not user:
        raise UsageError("-u/--user: empty user name")
    return user, (password if sep else None)


def ask_password(prompt: str, what: str, source: PasswordSource | None = None) -> str:
    """Prompt on the terminal; fail clearly when there is none."""
    if source is not None and source is not getpass.getpass:
        return source(prompt)
    if not sys.stdin or not sys.stdin.isatty():
        raise UsageError(f"{what} is needed but there is no terminal to ask: "
                         "use -u user:password, UFTP_PASSWORD or UCC_PASSWORD")
    return getpass.getpass(prompt)


def _password_from_env() -> str | None:
    return os.environ.get("UFTP_PASSWORD") or os.environ.get("UCC_PASSWORD") or None


def _key_credential(user: str, identity: str, passphrase: str | None,
                    source: PasswordSource | None) -> creds.Credential:
    try:
        return creds.create_credential(username=user, password=passphrase, identity=identity)
    except creds.AuthenticationFailedException as exc:
        text = str(exc).lower()
        if passphrase is None and ("password" in text or "encrypted" in text or "passphrase" in text):
            phrase = ask_password(f"Passphrase for {identity}: ", f"the passphrase of {identity}", source)
            return creds.create_credential(username=user, password=phrase, identity=identity)
        raise UsageError(str(exc)) from None
    except OSError as exc:
        raise UsageError(f"identity {identity}: {exc.strerror or exc}") from None


def from_options(user: str | None, token: str | None, identity: str | None,
                 source: PasswordSource | None = None) -> creds.Credential | None:
    """A credential from ``-u``/``--token``/``-i`` and the UFTP_* environment, or None."""
    if token:
        return creds.OIDCToken(read_token(token))
    password: str | None = None
    if user:
        user, password = split_user(user)
    elif os.environ.get("UFTP_USER"):
        user = os.environ["UFTP_USER"]
    elif identity:
        user = getpass.getuser()
    if user is None:
        if os.environ.get("UFTP_TOKEN"):
            return creds.OIDCToken(os.environ["UFTP_TOKEN"].strip())
        return None
    if identity:
        return _key_credential(user, identity, password if password is not None else _password_from_env(), source)
    if password is None:
        password = _password_from_env()
    if password is None:
        password = ask_password(f"Password for {user}: ", f"the password of user '{user}'", source)
    return creds.UsernamePassword(user, password)


def from_config(config: Mapping[str, Any], source: PasswordSource | None = None) -> creds.Credential | None:
    """PyUNICORE's ``Base.create_credential`` rules; None if the file configures nothing."""
    method = str(config.get("authentication-method", "USERNAME")).upper()
    if method == "USERNAME":
        if "username" not in config:
            return None
        return creds.UsernamePassword(str(config["username"]), _config_password(config, source))
    if method == "SSHKEY":
        for key in ("username", "identity"):
            if key not in config:
                raise UsageError(f"authentication-method SSHKEY needs '{key}' in the configuration")
        return _key_credential(str(config["username"]), str(config["identity"]),
                               config.get("password") or os.environ.get("UCC_PASSWORD"), source)
    if method == "BEARER-TOKEN":
        if not config.get("token"):
            raise UsageError("authentication-method BEARER-TOKEN needs 'token' in the configuration")
        return creds.BearerToken(str(config["token"]))
    if method == "OIDC-AGENT":
        return creds.OIDCAgentToken(str(config.get("oidc-agent.account", "")))
    if method == "OIDC-SERVER":
        return creds.OIDCServerToken(dict(config), password_source=source or getpass.getpass)
    if method in ("ANONYMOUS", "NONE"):
        return creds.Anonymous()
    raise UsageError(f"No such authentication method: {config.get('authentication-method')}")


def _config_password(config: Mapping[str, Any], source: PasswordSource | None, key: str = "password") -> str:
    password = config.get(key)
    if password is None:
        password = os.environ.get("UCC_PASSWORD") or os.environ.get("UFTP_PASSWORD")
    if password is None:
        password = ask_password("Enter password: ", f"the password of user '{config.get('username')}'", source)
    return str(password)


class LiveAuthHeaders(Mapping[str, str]):
    """``{"Authorization": ...}`` computed on every use, so self-signed JWTs (300 s) and
    refreshable OIDC tokens stay valid when an endpoint re-authenticates much later."""

    def __init__(self, credential: creds.Credential):
        self._credential = credential

    def _headers(self) -> dict[str, str]:
        value = self._credential.get_auth_header()
        return {"Authorization": value} if value else {}

    def __getitem__(self, key: str) -> str:
        return self._headers()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._headers())

    def __len__(self) -> int:
        return len(self._headers())


def endpoint_auth_kwargs(credential: creds.Credential | None) -> dict[str, Any]:
    """``uftpcore.Endpoint`` keyword arguments for a credential."""
    if credential is None or isinstance(credential, creds.Anonymous):
        return {}
    if isinstance(credential, creds.UsernamePassword):
        return {"username": credential.username, "password": credential.password}
    return {"headers": LiveAuthHeaders(credential)}
