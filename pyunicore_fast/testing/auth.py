"""Who is calling: credentials, security sessions, user preferences and server-issued tokens.

Mirrors the UNICORE authentication chain closely enough for clients to notice nothing:

* HTTP Basic against the configured users (``PASSWORD_FILE``); a wrong password is a **403**
  (upstream maps every authentication exception to 403, not 401);
* ``Bearer`` tokens: static opaque tokens (standing in for OIDC), JWTs issued by ``/token``
  of *any* emulated site in this process (HS256 with a process-wide "grid" secret, the
  stand-in for the trusted-server ETD chain), and SSH-key JWTs (``sub == iss == user``)
  when public keys are configured;
* no credentials: role ``anonymous``;
* ``X-UNICORE-SecuritySession``: issued on every authenticated reply, accepted instead of
  credentials, **432** when unknown or expired (the client then retries with credentials);
* ``X-UNICORE-User-Preferences``: ``uid``/``group``/``role``/``supgids`` chosen among the
  user's attributes on every request; malformed or unavailable values are a 403.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from pyunicore_fast.testing.routing import HTTPError

log = logging.getLogger(__name__)

#: Secret shared by every EmbeddedSite of this process: tokens of one emulated server are
#: trusted by the others, as real UNICORE servers trust each other's delegation tokens.
_GRID_SECRET = secrets.token_bytes(32)

SESSION_HEADER = "X-UNICORE-SecuritySession"
SESSION_LIFETIME_HEADER = "X-UNICORE-SecuritySession-Lifetime"
PREFERENCES_HEADER = "X-UNICORE-User-Preferences"
ANONYMOUS_DN = "CN=anonymous,O=unknown,OU=unknown"


@dataclass
class UserAccount:
    """A user of the emulated site and the attributes the attribute source would give."""

    name: str
    password: str | None
    dn: str = ""
    uid: str = ""
    groups: list[str] = field(default_factory=list)
    roles: list[str] = field(default_factory=lambda: ["user"])
    #: False = the user authenticates but has no Unix login (no xlogin, jobs refused).
    has_login: bool = True
    public_keys: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.dn = self.dn or f"CN={self.name},O=UNICORE,C=EU"
        self.uid = self.uid or self.name
        self.groups = self.groups or ["users", f"{self.name}-project"]


@dataclass
class Identity:
    """The authenticated (or anonymous) caller of one request, after preferences."""

    account: UserAccount | None
    role: str = "anonymous"
    auth_method: str | None = None
    group: str | None = None
    supplementary_groups: list[str] = field(default_factory=list)
    claims: dict[str, Any] | None = None
    session_id: str | None = None
    preferences: dict[str, str] = field(default_factory=dict)

    @property
    def anonymous(self) -> bool:
        return self.account is None

    @property
    def user(self) -> str | None:
        return self.account.name if self.account else None

    @property
    def dn(self) -> str:
        return self.account.dn if self.account else ANONYMOUS_DN

    @property
    def uid(self) -> str | None:
        if self.account is None or not self.account.has_login:
            return None
        return self.account.uid

    def require_login(self) -> UserAccount:
        """Resources that need a Unix identity refuse callers without one."""
        if self.account is None:
            raise HTTPError(403)
        if not self.account.has_login:
            raise HTTPError(401, f"Access denied: no Unix login available for '{self.dn}'")
        return self.account


# --------------------------------------------------------------------------------------
# JWT (HS256 implemented here: no dependency for the common case)
# --------------------------------------------------------------------------------------
def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def jwt_encode_hs256(claims: dict[str, Any], secret: bytes) -> str:
    header = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    payload = _b64url(json.dumps(claims, separators=(",", ":")).encode())
    signing_input = f"{header}.{payload}".encode("ascii")
    sig = hmac.new(secret, signing_input, hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64url(sig)}"


def jwt_parts(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and claims of a JWT, without verification; ValueError if it is no JWT."""
    try:
        h, p, _ = token.split(".")
        return json.loads(_b64url_decode(h)), json.loads(_b64url_decode(p))
    except (ValueError, binascii.Error) as exc:
        raise ValueError("not a JWT") from exc


def jwt_verify_hs256(token: str, secret: bytes) -> bool:
    try:
        h, p, s = token.split(".")
        expected = hmac.new(secret, f"{h}.{p}".encode("ascii"), hashlib.sha256).digest()
        return hmac.compare_digest(expected, _b64url_decode(s))
    except (ValueError, binascii.Error):
        return False


@dataclass
class _Session:
    account: UserAccount
    auth_method: str
    claims: dict[str, Any] | None
    expires: float


class Authenticator:
    """Authenticates requests and manages sessions and tokens for one emulated server."""

    def __init__(self, accounts: dict[str, UserAccount], tokens: dict[str, str],
                 server_dn: str, session_lifetime: float = 300.0,
                 token_lifetime: float = 300.0, max_token_lifetime: float | None = None,
                 use_sessions: bool = True):
        self.accounts = accounts
        self.tokens = tokens
        self.server_dn = server_dn
        self.session_lifetime = session_lifetime
        self.token_lifetime = token_lifetime
        #: the server certificate's remaining validity caps token lifetimes (400 beyond it).
        self.max_token_lifetime = max_token_lifetime
        self.use_sessions = use_sessions
        self._sessions: dict[str, _Session] = {}
        self._lock = threading.Lock()

    # -- sessions -----------------------------------------------------------------------
    def expire_sessions(self) -> None:
        """Forget every security session (clients then get 432 and resend credentials)."""
        with self._lock:
            self._sessions.clear()

    def _new_session(self, account: UserAccount, method: str, claims: dict[str, Any] | None) -> str:
        sid = str(uuid.uuid4())
        with self._lock:
            now = time.time()
            for k in [k for k, s in self._sessions.items() if s.expires < now]:
                del self._sessions[k]
            self._sessions[sid] = _Session(account, method, claims, now + self.session_lifetime)
        return sid

    # -- main entry point ---------------------------------------------------------------
    def authenticate(self, headers: Any, reply_headers: dict[str, str]) -> Identity:
        """Resolve the caller of a request; fills session headers into ``reply_headers``."""
        session_id = headers.get(SESSION_HEADER)
        identity: Identity
        if session_id and self.use_sessions:
            with self._lock:
                sess = self._sessions.get(session_id)
                if sess is None or sess.expires < time.time():
                    self._sessions.pop(session_id, None)
                    sess = None
            if sess is None:
                log.debug("unknown or expired security session")
                raise HTTPError(432)
            identity = Identity(sess.account, auth_method=sess.auth_method, claims=sess.claims,
                                session_id=session_id)
        else:
            identity = self._from_credentials(headers.get("Authorization"))
            if identity.account is not None and self.use_sessions:
                identity.session_id = self._new_session(identity.account, identity.auth_method or "",
                                                        identity.claims)
        if identity.account is not None:
            if identity.session_id:
                reply_headers[SESSION_HEADER] = identity.session_id
                reply_headers[SESSION_LIFETIME_HEADER] = str(int(self.session_lifetime * 1000))
            self._apply_preferences(identity, headers.get(PREFERENCES_HEADER))
        return identity

    def _from_credentials(self, authorization: str | None) -> Identity:
        if not authorization:
            return Identity(None)
        scheme, _, value = authorization.strip().partition(" ")
        scheme = scheme.lower()
        value = value.strip()
        if scheme == "basic":
            try:
                user, _, password = base64.b64decode(value).decode("utf-8").partition(":")
            except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
                raise HTTPError(403, "Authentication failed: malformed Basic credentials") from exc
            account = self.accounts.get(user)
            if account is None or account.password is None or not hmac.compare_digest(
                    account.password.encode(), password.encode()):
                log.debug("password authentication failed for %r", user)
                raise HTTPError(403, "Authentication failed: invalid username or password")
            return Identity(account, auth_method="PASSWORD_FILE")
        if scheme == "bearer":
            return self._from_bearer(value)
        raise HTTPError(403, f"Authentication failed: unsupported authorization scheme '{scheme}'")

    def _from_bearer(self, token: str) -> Identity:
        user = self.tokens.get(token)
        if user is not None:
            account = self.accounts.get(user)
            if account is None:
                raise HTTPError(403, "Authentication failed: token user is unknown")
            return Identity(account, auth_method="OAUTH2")
        try:
            header, claims = jwt_parts(token)
        except ValueError:
            raise HTTPError(403, "Authentication failed: invalid token") from None
        now = time.time()
        if "exp" not in claims or float(claims["exp"]) < now:
            raise HTTPError(403, "Authentication failed: token expired or without 'exp'")
        if header.get("alg") == "HS256":
            if not jwt_verify_hs256(token, _GRID_SECRET):
                raise HTTPError(403, "Authentication failed: invalid token signature")
            if claims.get("aud") and claims["aud"] != self.server_dn:
                raise HTTPError(403, "Authentication failed: token is not valid for this server")
            account = self._account_by_dn_or_name(str(claims.get("sub", "")))
            if account is None:
                raise HTTPError(403, "Authentication failed: token subject is unknown")
            return Identity(account, auth_method="ETD", claims=claims)
        # a JWT signed with the user's own key ("SSHKEY" authenticator)
        sub = str(claims.get("sub", ""))
        account = self.accounts.get(sub)
        if account is None or not account.public_keys or claims.get("iss", sub) != sub:
            raise HTTPError(403, "Authentication failed: cannot verify token")
        if not _verify_with_public_keys(token, account.public_keys):
            raise HTTPError(403, "Authentication failed: invalid token signature")
        return Identity(account, auth_method="SSHKEY", claims=claims)

    def _account_by_dn_or_name(self, subject: str) -> UserAccount | None:
        for account in self.accounts.values():
            if account.dn == subject or account.name == subject:
                return account
        return None

    # -- preferences --------------------------------------------------------------------
    def _apply_preferences(self, identity: Identity, header: str | None) -> None:
        account = identity.account
        assert account is not None
        identity.role = account.roles[0] if account.roles else "user"
        identity.group = account.groups[0] if account.groups else None
        if identity.claims and isinstance(identity.claims.get("preferences"), str):
            header = identity.claims["preferences"]  # a token's pinned preferences win
        if not header:
            return
        for item in header.split(","):
            item = item.strip()
            if not item:
                continue
            key, sep, value = item.partition(":")
            key, value = key.strip().lower(), value.strip()
            if not sep or not value:
                raise HTTPError(403, f"Invalid user preferences item '{item}'")
            if key in ("uid", "xlogin"):
                if value != account.uid or not account.has_login:
                    raise HTTPError(403, f"Requested uid '{value}' is not available")
            elif key in ("group", "pgid"):
                if value not in account.groups:
                    raise HTTPError(403, f"Requested group '{value}' is not available")
                identity.group = value
            elif key == "role":
                if value not in account.roles:
                    raise HTTPError(403, f"Requested role '{value}' is not available")
                identity.role = value
            elif key in ("supgids", "supplementarygroups"):
                groups = [g for g in value.split("+") if g]
                for g in groups:
                    if g not in account.groups:
                        raise HTTPError(403, f"Requested group '{g}' is not available")
                identity.supplementary_groups = groups
            else:
                raise HTTPError(403, f"Unknown user preference '{key}'")
            identity.preferences[key] = value

    # -- tokens -------------------------------------------------------------------------
    def issue_token(self, identity: Identity, lifetime: float | None = None,
                    renewable: bool = False, limited: bool = False, internal: bool = False) -> str:
        """A delegation JWT for ``identity``.

        ``GET /token`` enforces the user-facing rules (no new token from a non-renewable
        one, lifetime capped by the certificate); ``internal=True`` is the server acting on
        the user's behalf (data staging, transfers, notifications), which is not subject
        to them.
        """
        account = identity.require_login() if identity.account else None
        if account is None:
            raise HTTPError(403)
        if not internal and identity.auth_method == "ETD" and identity.claims is not None and \
                str(identity.claims.get("renewable", "false")).lower() != "true":
            raise HTTPError(403, "Token was issued using a non-renewable token")
        if lifetime is None or lifetime <= 0:
            lifetime = self.token_lifetime
        if not internal and self.max_token_lifetime is not None and lifetime > self.max_token_lifetime:
            raise HTTPError(400, "Requested token lifetime exceeds the server certificate's validity")
        now = int(time.time())
        claims: dict[str, Any] = {"sub": account.dn, "iss": self.server_dn, "etd": "true",
                                  "iat": now, "exp": now + int(lifetime), "uid": account.uid}
        if renewable:
            claims["renewable"] = "true"
        if limited:
            claims["aud"] = self.server_dn
        return jwt_encode_hs256(claims, _GRID_SECRET)

    # -- client info --------------------------------------------------------------------
    def client_info(self, identity: Identity, queues: list[str] | None = None) -> dict[str, Any]:
        """The ``client`` map of a base resource."""
        if identity.account is None:
            return {"dn": ANONYMOUS_DN, "role": {"selected": "anonymous", "availableRoles": []}}
        account = identity.account
        info: dict[str, Any] = {
            "dn": account.dn,
            "role": {"selected": identity.role, "availableRoles": list(account.roles)},
            "authenticationMethod": identity.auth_method,
        }
        if account.has_login:
            info["xlogin"] = {
                "UID": account.uid, "availableUIDs": [account.uid],
                "group": identity.group, "availableGroups": list(account.groups),
                "selectedSupplementaryGroups": list(identity.supplementary_groups),
            }
            if queues:
                info["queues"] = {"selected": queues[0], "availableQueues": list(queues)}
        return info


def _verify_with_public_keys(token: str, keys: list[str]) -> bool:
    """Verify an RS256/ES256/EdDSA JWT against a user's public keys (PEM or OpenSSH)."""
    try:
        import jwt
        from cryptography.hazmat.primitives import serialization
    except ImportError:  # pragma: no cover - optional dependency
        log.warning("SSH-key JWT received but PyJWT/cryptography are not installed")
        return False
    for text in keys:
        try:
            if text.lstrip().startswith("-----"):
                key = serialization.load_pem_public_key(text.encode())
            else:
                key = serialization.load_ssh_public_key(text.strip().encode())
            jwt.decode(token, key, algorithms=["RS256", "ES256", "EdDSA"],  # type: ignore[arg-type]
                       options={"verify_aud": False})
            return True
        except Exception as exc:  # noqa: BLE001 - try the next key
            log.debug("public key did not verify the token: %s", exc)
    return False
