"""Authentication descriptions of the README helpers (``helpers.UserAuthentication`` ...)."""

from __future__ import annotations

import abc
import dataclasses

from pyunicore_fast import credentials as _credentials


class Authentication(abc.ABC):
    """An HTTP authentication method; credentials are masked when printed."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(<masked>)"

    __str__ = __repr__

    @abc.abstractmethod
    def to_credential(self) -> _credentials.Credential:
        """The equivalent :mod:`pyunicore_fast.credentials` object."""


@dataclasses.dataclass(repr=False)
class UserAuthentication(Authentication):
    """User name and password (HTTP Basic)."""

    user: str
    password: str

    def to_credential(self) -> _credentials.Credential:
        return _credentials.UsernamePassword(self.user, self.password)


@dataclasses.dataclass(repr=False)
class TokenAuthentication(Authentication):
    """A bearer token (OIDC access token or a server-issued JWT)."""

    token: str

    def to_credential(self) -> _credentials.Credential:
        return _credentials.OIDCToken(self.token)


# names of older PyUNICORE helper versions
Authorization = Authentication
UserAuthorization = UserAuthentication
TokenAuthorization = TokenAuthentication
