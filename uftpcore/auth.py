"""Authentication at a UFTP Auth server (spec §1.3): ``POST .../rest/auth/<SERVER>``.

The Auth server maps the user, registers a session with uftpd and returns host, port and a
one-time secret.  We send JSON booleans (Gson also accepts the strings older clients send),
generate encryption keys client-side with a CSPRNG, and turn every failure into an
``AuthenticationError`` carrying the server's ``errorMessage``.
"""

from __future__ import annotations

import logging
import os
import secrets
from typing import Any

import requests

from .errors import AuthenticationError
from .ticket import Ticket

log = logging.getLogger(__name__)

#: the legacy multi-file session tag (spec §1.4); sessions are always multi-file now.
MULTI_FILE_TAG = "___UFTP___MULTI___FILE___SESSION___MODE___"
KEY_SIZES = {"BLOWFISH": 56, "AES": 48}  # AES: 16-byte IV + 32-byte key

_sessions: dict[bool, requests.Session] = {}


def _http() -> requests.Session:
    """One pooled HTTP session per process (connection reuse for repeated auth calls)."""
    sess = _sessions.get(True)
    if sess is None:
        sess = requests.Session()
        _sessions[True] = sess
    return sess


def split_auth_url(url: str) -> tuple[str, str]:
    """``https://h:p/rest/auth/TEST:/data/x`` -> (``https://h:p/rest/auth/TEST``, ``/data/x``)."""
    scheme_end = url.find("://")
    start = scheme_end + 3 if scheme_end >= 0 else 0
    slash = url.find("/", start)
    if slash < 0:
        return url, ""
    colon = url.find(":", slash)
    if colon < 0:
        return url, ""
    return url[:colon], url[colon + 1:]


def server_path(base_dir: str | None) -> str:
    """The ``serverPath`` for a base directory: non-empty directories end with ``/``."""
    if not base_dir:
        return ""
    return base_dir if base_dir.endswith("/") else base_dir + "/"


def make_key(algo: str) -> bytes:
    """Fresh key material for ``BLOWFISH`` (56 bytes) or ``AES`` (16-byte IV + 32-byte key)."""
    try:
        return secrets.token_bytes(KEY_SIZES[algo.upper()])
    except KeyError:
        raise ValueError(f"unknown encryption algorithm {algo!r}; use 'AES' or 'BLOWFISH'") from None


def authenticate(auth_url: str, username: str | None = None, password: str | None = None, *,
                 token: str | None = None, headers: dict[str, str] | None = None, base_dir: str = "/",
                 persistent: bool = True, streams: int = 1, encryption: str | None = None,
                 compress: bool = False, group: str | None = None, client_ip: str | None = None,
                 timeout: float = 30.0, verify: bool | str | None = None,
                 http: requests.Session | None = None) -> Ticket:
    """Ask the Auth server at ``auth_url`` (``.../rest/auth/<SERVER>``) for a UFTP session.

    Credentials: ``username``/``password`` (HTTP Basic), ``token`` (Bearer), or ready-made
    ``headers`` (e.g. from a pyunicore_fast credential); none = anonymous.  ``verify`` defaults
    to TLS verification honouring ``REQUESTS_CA_BUNDLE``.
    """
    if streams < 1:
        raise ValueError("streams must be >= 1")
    algo = encryption.upper() if encryption else None
    key = make_key(algo) if algo else None
    body: dict[str, Any] = {"serverPath": server_path(base_dir), "persistent": bool(persistent),
                            "streamCount": int(streams), "compress": bool(compress)}
    if key is not None:
        import base64

        body["encryptionKey"] = base64.b64encode(key).decode("ascii")
        body["encryptionAlgorithm"] = algo
    if group:
        body["group"] = group
    if client_ip:
        body["client"] = client_ip
    hdrs = {"Accept": "application/json", "Content-Type": "application/json"}
    if headers:
        hdrs.update(headers)
    auth = None
    if token:
        hdrs["Authorization"] = f"Bearer {token}"
    elif username is not None:
        auth = (username, password or "")
    if verify is None:
        verify = os.environ.get("REQUESTS_CA_BUNDLE") or True
    sess = http or _http()
    try:
        res = sess.post(auth_url, json=body, headers=hdrs, auth=auth, timeout=timeout, verify=verify)
    except requests.Timeout as exc:
        raise AuthenticationError(f"Auth server {auth_url} did not answer within {timeout} s", url=auth_url) from exc
    except requests.RequestException as exc:
        raise AuthenticationError(f"cannot reach Auth server {auth_url}: {type(exc).__name__}", url=auth_url) from exc
    if res.status_code >= 300:
        raise AuthenticationError(
            f"Auth server {auth_url} refused the request: {res.status_code} {_error_text(res)}",
            status=res.status_code, url=auth_url)
    try:
        reply = res.json()
    except ValueError as exc:
        raise AuthenticationError(f"Auth server {auth_url} sent no JSON reply", status=res.status_code, url=auth_url) from exc
    if not _truthy(reply.get("success", True)):
        raise AuthenticationError(f"Auth server {auth_url} refused: {reply.get('reason') or 'no reason given'}",
                                  status=res.status_code, url=auth_url)
    try:
        hosts = tuple(h for h in str(reply["serverHost"]).replace(",", " ").split() if h)
        port = int(reply["serverPort"])
        secret = str(reply["secret"])
    except (KeyError, ValueError, TypeError) as exc:
        raise AuthenticationError(f"Auth server {auth_url} sent an incomplete reply (missing {exc})",
                                  status=res.status_code, url=auth_url) from exc
    if not hosts:
        raise AuthenticationError(f"Auth server {auth_url} sent no server host", url=auth_url)
    log.debug("authenticated at %s: uftpd %s:%d", auth_url, hosts[0], port)
    return Ticket(host=hosts[0], port=port, secret=secret, hosts=hosts, key=key, algo=algo, streams=int(streams),
                  compress=bool(compress), persistent=bool(persistent), base_dir=base_dir or "")


def _truthy(value: Any) -> bool:
    return value if isinstance(value, bool) else str(value).lower() == "true"


def _error_text(res: requests.Response) -> str:
    try:
        data = res.json()
        if isinstance(data, dict):
            return str(data.get("errorMessage") or data.get("reason") or res.reason)
    except ValueError:
        pass
    return (res.text or res.reason or "").strip()[:500]
