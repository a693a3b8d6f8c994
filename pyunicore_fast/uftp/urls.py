"""``uftp://`` URLs as PyUNICORE's README defines them, shared by the fsspec and PyFilesystem2 drivers.

The form is::

    uftp://[user[:password]@]authhost:port/rest/auth/NAME:/base/dir[/file][?token=...][&identity=...]

* ``user``/``password`` are HTTP Basic credentials for the Auth server; with ``identity`` the
  password is the passphrase of that private key instead.
* ``token`` is a bearer token: a literal value, ``@file`` (read the file, stripped) or
  ``@@ENVVAR`` (read an environment variable), PyUNICORE issue #34.
* ``identity`` is an SSH private key file: the Auth request carries a JWT signed with it
  (UNICORE's SSHKEY authenticator, Auth server 2.7.0+).

The Auth URL is ``https://authhost:port/rest/auth/NAME`` (TLS verified, honouring
``REQUESTS_CA_BUNDLE``).  Plain ``http`` is used only when asked for explicitly: the protocol
aliases ``uftp+http://`` (and, for symmetry, ``uftp+https://``) or a ``scheme="http"``
argument.  That is meant for loopback test servers; a warning is logged when credentials
would travel in clear text to another host.

Why a module of its own: the two drivers must agree on every detail of this format (token
specs, percent-decoding of user information, where the Auth URL ends), and PyUNICORE's own
parser fails on URLs without ``:<dir>`` (IndexError) and always forces https.
"""

from __future__ import annotations

import ipaddress
import logging
import os
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote

log = logging.getLogger(__name__)

#: protocol -> Auth URL scheme
PROTOCOL_SCHEMES: dict[str, str] = {"uftp": "https", "uftp+https": "https", "uftp+http": "http"}
PROTOCOLS: tuple[str, ...] = tuple(PROTOCOL_SCHEMES)


@dataclass
class UFTPURL:
    """The parts of one ``uftp://`` URL."""

    #: ``scheme://authhost:port/rest/auth/NAME``
    auth_url: str
    #: what follows ``NAME:`` (base directory and/or file), "" when absent.
    path: str = ""
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    #: the bearer token *value* (``@file``/``@@ENV`` already resolved).
    token: str | None = field(default=None, repr=False)
    identity: str | None = None
    #: every other query parameter, verbatim.
    params: dict[str, str] = field(default_factory=dict)

    def credential_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of the drivers' constructors that carry credentials."""
        out: dict[str, Any] = {"auth_url": self.auth_url}
        for name in ("username", "password", "token", "identity"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        return out


def read_token(spec: str | None) -> str | None:
    """Resolve a token spec: ``@@VAR`` -> environment variable, ``@file`` -> file content, else literal."""
    if not spec:
        return None
    if spec.startswith("@@"):
        value = os.environ.get(spec[2:])
        if value is None:
            log.warning("token environment variable %s is not set", spec[2:])
        return value
    if spec.startswith("@"):
        with open(os.path.expanduser(spec[1:]), encoding="utf-8") as f:
            return f.read().strip()
    return spec


def split_protocol(url: str) -> tuple[str | None, str]:
    """``uftp+http://rest`` -> (``uftp+http``, ``rest``); (None, url) for anything else."""
    proto, sep, rest = url.partition("://")
    if sep and proto.lower() in PROTOCOL_SCHEMES:
        return proto.lower(), rest
    return None, url


def _split_userinfo(rest: str) -> tuple[str, str]:
    """Split ``user:pw@host:port/rest/auth/...`` at the ``@`` that ends the user information.

    Passwords may contain ``@`` when percent-encoded, and some users do not encode them: the
    last ``@`` before ``/rest/`` (or before the first ``/`` of the resource) is the separator.
    """
    marker = rest.find("/rest/")
    limit = marker if marker >= 0 else len(rest)
    at = rest.rfind("@", 0, limit)
    if at < 0:
        return "", rest
    return rest[:at], rest[at + 1:]


def split_resource(resource: str, scheme: str = "https") -> tuple[str, str]:
    """``authhost:port/rest/auth/NAME:/base/dir`` -> (``scheme://authhost:port/rest/auth/NAME``, ``/base/dir``).

    The Auth URL ends at the first ``:`` after the first ``/`` of the resource (an IPv6 host
    in brackets and the port come before that ``/``).
    """
    if "://" in resource:  # an explicit scheme wins (PyFilesystem users sometimes pass one)
        scheme, _, resource = resource.partition("://")
    slash = resource.find("/")
    if slash < 0:
        return f"{scheme}://{resource}", ""
    colon = resource.find(":", slash)
    if colon < 0:
        return f"{scheme}://{resource}", ""
    return f"{scheme}://{resource[:colon]}", resource[colon + 1:]


def parse_uftp_url(url: str, scheme: str | None = None) -> UFTPURL:
    """Parse a full ``uftp://`` URL (see the module docstring).

    ``scheme`` overrides the Auth URL scheme the protocol implies (``"http"`` for loopback
    test servers).
    """
    proto, rest = split_protocol(url)
    if proto is None:
        raise ValueError(f"not a uftp:// URL: {url!r}")
    rest, _, query = rest.partition("?")
    userinfo, resource = _split_userinfo(rest)
    auth_url, path = split_resource(resource, scheme or PROTOCOL_SCHEMES[proto])
    username: str | None = None
    password: str | None = None
    if userinfo:
        user, has_pw, pw = userinfo.partition(":")
        username = unquote(user) or None
        password = unquote(pw) if has_pw else None
    params = {k: v[0] for k, v in parse_qs(query, keep_blank_values=True).items()} if query else {}
    token = read_token(params.pop("token", None))
    identity = params.pop("identity", None) or None
    return UFTPURL(auth_url=auth_url, path=path, username=username, password=password, token=token,
                   identity=identity, params=params)


def with_scheme(auth_url: str, scheme: str | None) -> str:
    """Give a scheme-less Auth URL (``host:port/rest/auth/NAME``) a scheme, https unless told otherwise;
    an explicit ``scheme`` replaces the URL's own."""
    if "://" in auth_url:
        if scheme:
            return f"{scheme}://{auth_url.split('://', 1)[1]}"
        return auth_url
    return f"{scheme or 'https'}://{auth_url}"


def warn_if_cleartext(auth_url: str, has_secret: bool) -> None:
    """Log a warning when credentials go over plain http to a host that is not loopback."""
    if not has_secret or not auth_url.lower().startswith("http://"):
        return
    host = auth_url.split("://", 1)[1].split("/", 1)[0]
    host = host.rsplit(":", 1)[0] if not host.startswith("[") else host[1:host.find("]")]
    host = host.rpartition("@")[2]
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        log.warning("sending UFTP Auth credentials over plain http to %s", host)
