"""Credentials: producers of the HTTP ``Authorization`` header (PyUNICORE-compatible).

Every class of ``pyunicore.credentials`` (1.2-dev, 1.3.x and 2.0.2) is here with the same
names and constructor signatures.  What differs is the cost per request: PyUNICORE signs a
new JWT, asks the oidc-agent, or runs an OIDC refresh grant on *every* HTTP call.  Here a
token is reused until it is close to its expiry (``exp`` claim or the lifetime the issuer
reported), which removes a private-key signature or a network round trip from each request.

Secrets never appear in ``repr``/``str`` output or in log records.
"""

from __future__ import annotations

import base64
import datetime
import getpass
import json
import logging
import os
import socket
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

#: a cached token is renewed when less than this many seconds of validity remain ...
_RENEW_MARGIN_MAX = 60.0
#: ... or less than this fraction of its lifetime, whichever is smaller.
_RENEW_MARGIN_FRACTION = 0.25
#: timeout (seconds) for requests to OIDC token endpoints.
_OIDC_TIMEOUT = 30.0


class AuthenticationFailedException(Exception):
    """User authentication has failed (or a credential could not be created)."""


def _b64url_decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def jwt_claims(token: str | None) -> dict[str, Any] | None:
    """The claims of a JWT *without* verifying it, or None for anything that is not a JWT.

    Used only to learn ``exp`` so that still-valid tokens are not refreshed; never to trust
    a token.
    """
    if not token or token.count(".") != 2:
        return None
    try:
        claims = json.loads(_b64url_decode(token.split(".")[1]))
    except (ValueError, UnicodeDecodeError):
        return None
    return claims if isinstance(claims, dict) else None


def _renew_margin(lifetime: float) -> float:
    return min(_RENEW_MARGIN_MAX, max(0.0, lifetime) * _RENEW_MARGIN_FRACTION)


def _token_still_fresh(token: str | None, now: float | None = None) -> bool:
    """True if ``token`` is a JWT whose ``exp`` is comfortably in the future."""
    claims = jwt_claims(token)
    if not claims or "exp" not in claims:
        return False
    try:
        exp = float(claims["exp"])
        iat = float(claims.get("iat", exp - 300))
    except (TypeError, ValueError):
        return False
    now = time.time() if now is None else now
    return exp - now > _renew_margin(exp - iat)


class Credential(ABC):
    """Base class: something that produces an ``Authorization`` header value."""

    @abstractmethod
    def get_auth_header(self) -> str | None:
        """The value for the HTTP ``Authorization`` header (None = send no header)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(<masked>)"

    __str__ = __repr__


class Anonymous(Credential):
    """No ``Authorization`` header: anonymous access."""

    def get_auth_header(self) -> None:
        return None

    def __repr__(self) -> str:
        return "Anonymous()"


class BasicToken(Credential):
    """``Authorization: Basic <token>`` for a ready-made base64 token."""

    def __init__(self, token: str):
        self.token = token

    def get_token(self) -> str:
        return self.token

    def get_auth_header(self) -> str:
        return "Basic " + self.get_token()


class BearerToken(Credential):
    """``Authorization: Bearer <token>``."""

    def __init__(self, token: str | None):
        self.token = token

    def get_token(self) -> str | None:
        return self.token

    def get_auth_header(self) -> str:
        token = self.get_token()
        if token is None:
            raise AuthenticationFailedException(f"{type(self).__name__} has no token")
        return "Bearer " + token


class UsernamePassword(BasicToken):
    """HTTP Basic authentication from a user name and a password.

    ``password`` is kept as an attribute because PyUNICORE 1.2 had it (and its uftpfs tests
    read it); it is never shown by ``repr``.
    """

    def __init__(self, username: str, password: str):
        self.username = username
        self._password = password
        raw = f"{username}:{password}".encode()
        super().__init__(base64.b64encode(raw).decode("ascii"))

    @property
    def password(self) -> str:
        return self._password

    def __repr__(self) -> str:
        return f"UsernamePassword(username={self.username!r}, password=<masked>)"


class RefreshHandler:
    """Supplies fresh OAuth access tokens to an :class:`OIDCToken`.

    Two generations of PyUNICORE are supported:

    * 1.3+/2.0: subclass and implement ``refresh_token() -> str``;
    * 1.2: ``RefreshHandler(refresh_config, token=None)`` with ``refresh_config`` =
      ``{"url", "client_id", "client_secret", "refresh_token"}``: ``get_token()`` returns a
      valid access token, running the refresh grant (POST ``<url>token``) only when the
      current one has expired.
    """

    def __init__(self, refresh_config: dict[str, str] | None = None, token: str | None = None,
                 timeout: float = _OIDC_TIMEOUT):
        self.refresh_config = refresh_config
        self.token = token
        self.timeout = timeout
        if refresh_config is not None and not token:
            self.refresh()

    def refresh_token(self) -> str:
        """A valid access token (1.3+ interface)."""
        if type(self).get_token is not RefreshHandler.get_token or self.refresh_config is not None:
            return self.get_token()
        raise NotImplementedError("RefreshHandler subclasses must implement refresh_token()")

    def is_valid_token(self) -> bool:
        """True unless the token is a JWT whose ``exp`` has passed (or is about to)."""
        if not self.token:
            return False
        claims = jwt_claims(self.token)
        if claims is None or "exp" not in claims:
            return True  # opaque token: we cannot tell, assume valid as PyUNICORE 1.2 did
        return _token_still_fresh(self.token)

    def refresh(self) -> str:
        """Run the OAuth refresh-token grant and store the new access token."""
        if self.refresh_config is None:
            raise NotImplementedError("no refresh_config given")
        import requests

        cfg = self.refresh_config
        params = {
            "client_id": cfg["client_id"],
            "client_secret": cfg["client_secret"],
            "refresh_token": cfg["refresh_token"],
            "grant_type": "refresh_token",
        }
        url = f"{cfg['url']}token"
        res = requests.post(url, headers={"Accept": "application/json"}, data=params, timeout=self.timeout)
        if res.status_code >= 400:
            raise AuthenticationFailedException(f"token refresh at {url} failed: {res.status_code} {res.reason}")
        self.token = res.json()["access_token"]
        log.debug("refreshed OAuth access token from %s", url)
        return self.token

    def get_token(self) -> str:
        """A valid access token, refreshed only when necessary (1.2 interface)."""
        if not self.is_valid_token():
            self.refresh()
        assert self.token is not None
        return self.token

    def __repr__(self) -> str:
        return f"{type(self).__name__}(<masked>)"


class OIDCToken(BearerToken):
    """A bearer (OAuth/OIDC) access token, optionally kept valid by a refresh handler.

    PyUNICORE asks the handler on every request.  We ask it only when the current token is not
    a JWT that is still comfortably valid, so a typical OIDC access token (a JWT with ``exp``)
    costs one refresh per lifetime instead of one per request; opaque tokens keep the
    PyUNICORE behaviour because their validity cannot be known.
    """

    def __init__(self, token: str | None, refresh_handler: Any = None):
        super().__init__(token)
        self.refresh_handler = refresh_handler
        self._lock = threading.Lock()

    def get_token(self) -> str | None:
        if self.refresh_handler is None:
            return self.token
        with self._lock:
            if _token_still_fresh(self.token):
                return self.token
            handler = self.refresh_handler
            refresh: Callable[[], str] | None = getattr(handler, "refresh_token", None)
            if not callable(refresh):
                refresh = handler.get_token
            try:
                self.token = refresh()
            except NotImplementedError:
                self.token = handler.get_token()
            return self.token


class JWTToken(BearerToken):
    """A JWT signed by the client: SSH-key authentication (``etd=False``) or a trusted-service
    delegation token (``etd=True``).

    ``secret`` is a private key object (RSA, EC, Ed25519 from ``cryptography``), a PEM string,
    or an HMAC secret for ``HS256``.  The signed token is cached and re-signed only when less
    than a quarter of its lifetime (at most 60 s) remains; ``create_token()`` always signs anew.
    """

    def __init__(self, subject: str, issuer: str | None, secret: Any, algorithm: str = "RS256",
                 lifetime: int = 300, etd: bool = False):
        super().__init__(None)
        self.subject = subject
        self.issuer = issuer if issuer else subject
        self.secret = secret
        self.algorithm = algorithm
        self.lifetime = lifetime
        self.etd = etd
        self._expires = 0.0
        self._cache_key: tuple[Any, ...] | None = None
        self._lock = threading.Lock()

    def _key(self) -> tuple[Any, ...]:
        return (self.subject, self.issuer, id(self.secret), self.algorithm, self.lifetime, self.etd)

    def create_token(self) -> str:
        """Sign a fresh token (PyUNICORE 1.2 name)."""
        import jwt

        now = datetime.datetime.now(tz=datetime.timezone.utc)
        payload = {
            "etd": str(bool(self.etd)).lower(),
            "sub": self.subject,
            "iss": self.issuer,
            "iat": now,
            "exp": now + datetime.timedelta(seconds=self.lifetime),
        }
        token = jwt.encode(payload, self.secret, algorithm=self.algorithm)
        return token if isinstance(token, str) else token.decode("ascii")

    def get_token(self) -> str:
        with self._lock:
            now = time.time()
            key = self._key()
            if (self.token is None or key != self._cache_key
                    or self._expires - now <= _renew_margin(self.lifetime)):
                self.token = self.create_token()
                self._expires = now + self.lifetime
                self._cache_key = key
                log.debug("signed a new %s JWT for %s", self.algorithm, self.subject)
            return self.token

    def __repr__(self) -> str:
        return (f"JWTToken(subject={self.subject!r}, issuer={self.issuer!r}, algorithm={self.algorithm!r}, "
                f"lifetime={self.lifetime}, etd={self.etd}, secret=<masked>)")


class OIDCAgentToken(OIDCToken):
    """An access token from a running `oidc-agent <https://indigo-dc.gitbook.io/oidc-agent>`_.

    The agent is asked again only when the previous token is close to expiry.
    """

    def __init__(self, account_name: str, timeout: float = 10.0):
        super().__init__(token=None, refresh_handler=None)
        self.account = account_name
        self.timeout = timeout
        self._expires = 0.0

    def _ask_agent(self) -> dict[str, Any]:
        socket_path = os.environ.get("OIDC_SOCK")
        if not socket_path:
            raise OSError("OIDC Agent not running (environment variable OIDC_SOCK not found)")
        request = {"request": "access_token", "account": self.account}
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(self.timeout)
            sock.connect(socket_path)
            sock.sendall(json.dumps(request).encode("utf-8"))
            data = b""
            while True:
                part = sock.recv(65536)
                data += part
                try:
                    return json.loads(data.decode("utf-8"))
                except ValueError:
                    if not part:
                        raise AuthenticationFailedException("oidc-agent sent an incomplete reply") from None

    def get_token(self) -> str:
        with self._lock:
            now = time.time()
            if self.token and (self._expires - now > 30 or _token_still_fresh(self.token, now)):
                return self.token
            reply = self._ask_agent()
            if reply.get("status") != "success":
                raise AuthenticationFailedException(f"oidc-agent: {reply.get('error', 'request failed')}")
            self.token = reply["access_token"]
            try:
                self._expires = float(reply.get("expires_at", 0))
            except (TypeError, ValueError):
                self._expires = 0.0
            return self.token

    def __repr__(self) -> str:
        return f"OIDCAgentToken(account={self.account!r})"


class OIDCServerToken(OIDCToken):
    """An access token from an OIDC server (e.g. Keycloak), password or refresh-token grant.

    Configuration keys as in PyUNICORE / UCC: ``oidc.endpoint``, ``oidc.username``,
    ``oidc.password`` (prompted if missing), ``oidc.otp`` (``QUERY`` = prompt),
    ``oidc.grantType`` (``password``), ``oidc.scope`` (``openid``), ``oidc.clientID``,
    ``oidc.clientSecret``, ``oidc.authentication`` (``POST`` = client credentials in the body,
    otherwise HTTP Basic), ``oidc.storeRefreshToken`` (true), ``oidc.refreshTokenFile``
    (default ``~/.ucc/refresh-tokens``).  Unlike PyUNICORE the refresh grant runs only when
    the access token is about to expire, not on every request.
    """

    def __init__(self, config: dict[str, Any], password_source: Callable[[str], str] = getpass.getpass):
        super().__init__(token=None, refresh_handler=None)
        self.config = config
        self.password_source = password_source
        self.refresh_token: str | None = None  # type: ignore[assignment]  # PyUNICORE attribute name
        self._expires = 0.0
        self.load_refresh_token()

    def _token_file(self) -> str:
        name = self.config.get("oidc.refreshTokenFile")
        if name:
            return os.path.expanduser(str(name))
        return os.path.join(os.path.expanduser("~"), ".ucc", "refresh-tokens")

    def _store_enabled(self) -> bool:
        value = self.config.get("oidc.storeRefreshToken", True)
        return value if isinstance(value, bool) else str(value).lower() == "true"

    def _fresh(self) -> bool:
        now = time.time()
        return bool(self.token) and (self._expires - now > 30 or _token_still_fresh(self.token, now))

    def get_token(self) -> str:
        with self._lock:
            if self._fresh():
                return self.token  # type: ignore[return-value]
            self.check_refresh()
            if self._fresh():
                return self.token  # type: ignore[return-value]
            username = self.config["oidc.username"]
            password = self.config.get("oidc.password")
            if password is None:
                password = self.password_source(f"OIDC server password for '{username}': ")
            params = {
                "grant_type": self.config.get("oidc.grantType", "password"),
                "username": username,
                "password": password,
                "scope": self.config.get("oidc.scope", "openid"),
            }
            otp = self.config.get("oidc.otp")
            if otp == "QUERY":
                otp = self.password_source("OTP: ")
            if otp is not None:
                params["otp"] = otp
            self._handle_response(self._execute_call(params))
            if not self.token:
                raise AuthenticationFailedException("OIDC server returned no access token")
            return self.token

    def check_refresh(self) -> None:
        """Use the stored refresh token, if any, to obtain a new access token."""
        if self.refresh_token is None:
            return
        params = {"grant_type": "refresh_token", "refresh_token": self.refresh_token}
        try:
            self._handle_response(self._execute_call(params))
        except AuthenticationFailedException as exc:
            log.info("OIDC refresh-token grant failed (%s); falling back to the password grant", exc)
            self.refresh_token = None

    def load_refresh_token(self) -> dict[str, Any]:
        """Read the refresh-token store; sets ``refresh_token`` for this endpoint if present."""
        if not self._store_enabled():
            return {}
        path = self._token_file()
        tokens: dict[str, Any] = {}
        if os.path.isfile(path):
            try:
                with open(path, encoding="utf-8") as f:
                    tokens = json.load(f)
            except (OSError, ValueError) as exc:
                log.warning("cannot read refresh-token file %s: %s", path, exc)
                return {}
            info = tokens.get(self.config.get("oidc.endpoint"))
            if isinstance(info, dict) and info.get("refresh_token"):
                self.refresh_token = info["refresh_token"]
        return tokens

    def store_refresh_token(self) -> None:
        """Persist the refresh token (file mode 0600, parent directory created)."""
        if not self._store_enabled() or self.refresh_token is None:
            return
        path = self._token_file()
        tokens = self.load_refresh_token()
        tokens[self.config["oidc.endpoint"]] = {"refresh_token": self.refresh_token}
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(tokens, f)

    def _execute_call(self, params: dict[str, Any]) -> dict[str, Any]:
        import requests

        endpoint = self.config["oidc.endpoint"]
        headers = {"Accept": "application/json"}
        if str(self.config.get("oidc.authentication", "POST")).upper() == "POST":
            params["client_id"] = self.config["oidc.clientID"]
            params["client_secret"] = self.config["oidc.clientSecret"]
        else:
            headers["Authorization"] = UsernamePassword(
                self.config["oidc.clientID"], self.config["oidc.clientSecret"]).get_auth_header()
        res = requests.post(endpoint, data=params, headers=headers, timeout=_OIDC_TIMEOUT)
        with res:
            if res.status_code >= 400:
                try:
                    reason = res.json().get("error_description") or res.json().get("error") or res.reason
                except ValueError:
                    reason = res.reason
                raise AuthenticationFailedException(f"OIDC server {endpoint}: {res.status_code} {reason}")
            return res.json()

    def _handle_response(self, response: dict[str, Any]) -> None:
        if response.get("refresh_token"):
            self.refresh_token = response["refresh_token"]
            self.store_refresh_token()
        self.token = response.get("access_token")
        try:
            self._expires = time.time() + float(response.get("expires_in", 0))
        except (TypeError, ValueError):
            self._expires = 0.0

    def __repr__(self) -> str:
        return f"OIDCServerToken(endpoint={self.config.get('oidc.endpoint')!r})"


def _resolve_identity(identity: str) -> str:
    """PyUNICORE resolves relative key names against ``~/.uftp/``; we also accept a path
    relative to the working directory when no such file exists there."""
    path = os.path.expanduser(identity)
    if os.path.isabs(path):
        return path
    in_uftp = os.path.join(os.path.expanduser("~"), ".uftp", identity)
    if os.path.exists(in_uftp) or not os.path.exists(path):
        return in_uftp
    return path


def jwt_algorithm_for_key(private_key: Any) -> str:
    """The JWS algorithm the UNICORE SSHKEY authenticator expects for this key type."""
    from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

    if isinstance(private_key, rsa.RSAPrivateKey):
        return "RS256"
    if isinstance(private_key, ec.EllipticCurvePrivateKey):
        return {"secp384r1": "ES384", "secp521r1": "ES512"}.get(private_key.curve.name, "ES256")
    if isinstance(private_key, (ed25519.Ed25519PrivateKey, ed448.Ed448PrivateKey)):
        return "EdDSA"
    raise AuthenticationFailedException(f"unsupported private key type {type(private_key).__name__}")


def load_private_key(path: str, password: str | None = None) -> Any:
    """Load an OpenSSH or PEM private key (optionally passphrase-protected)."""
    try:
        from cryptography.exceptions import UnsupportedAlgorithm
        from cryptography.hazmat.primitives import serialization
    except ImportError:
        raise AuthenticationFailedException(
            "To use key-based authentication, you will need the 'cryptography' package.") from None
    with open(path, "rb") as f:
        data = f.read()
    passphrase = password.encode("utf-8") if password else None
    errors = []
    for loader in (serialization.load_ssh_private_key, serialization.load_pem_private_key):
        try:
            return loader(data, password=passphrase)
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            errors.append(str(exc))
    hint = " (encrypted OpenSSH keys need the 'bcrypt' package)" if any("bcrypt" in e for e in errors) else ""
    raise AuthenticationFailedException(f"cannot load private key {path}: {'; '.join(errors)}{hint}")


def create_credential(username: str | None = None, password: str | None = None, token: str | None = None,
                      identity: str | None = None) -> Credential:
    """The common credentials from simple arguments, as PyUNICORE's factory:

    * ``token`` -> :class:`OIDCToken`;
    * ``username`` + ``password`` -> :class:`UsernamePassword`;
    * ``username`` + ``identity`` (private key file, ``password`` = its passphrase) ->
      :class:`JWTToken` signed with that key (RS256 / ES256 / EdDSA by key type).
    """
    if token is not None:
        return OIDCToken(token)
    if identity is None:
        if username is None:
            raise AuthenticationFailedException("Not enough info to create user credential")
        return UsernamePassword(username, password if password is not None else "")
    if not username:
        raise AuthenticationFailedException("key-based authentication needs a user name")
    key = load_private_key(_resolve_identity(identity), password)
    return JWTToken(username, username, key, algorithm=jwt_algorithm_for_key(key), etd=False)


__all__ = [
    "Anonymous",
    "AuthenticationFailedException",
    "BasicToken",
    "BearerToken",
    "Credential",
    "JWTToken",
    "OIDCAgentToken",
    "OIDCServerToken",
    "OIDCToken",
    "RefreshHandler",
    "UsernamePassword",
    "create_credential",
    "jwt_algorithm_for_key",
    "jwt_claims",
    "load_private_key",
]
