"""Data staging items of a job description (``Imports`` / ``Exports``)."""

from __future__ import annotations

import dataclasses
from typing import Any

from pyunicore_fast.helpers import _api_object


@dataclasses.dataclass
class Credentials(_api_object.ApiRequestObject):
    """Credentials for an external service a file is imported from or exported to."""

    username: str
    password: str = dataclasses.field(repr=False)

    def _to_dict(self) -> dict[str, Any]:
        return {"Username": self.username, "Password": self.password}


@dataclasses.dataclass
class Import(_api_object.ApiRequestObject):
    """A server-side stage-in: ``from_`` (URL or inline ``data``) into ``to`` in the job dir."""

    from_: str
    to: str
    fail_on_error: bool = True
    data: str | None = None
    credentials: Credentials | None = None

    def _to_dict(self) -> dict[str, Any]:
        return {
            "From": self.from_,
            "To": self.to,
            "FailOnError": self.fail_on_error,
            "Data": self.data,
            "Credentials": self.credentials,
        }


@dataclasses.dataclass
class Export(_api_object.ApiRequestObject):
    """A server-side stage-out of ``from_`` (in the job dir) to the URL ``to``."""

    from_: str
    to: str

    def _to_dict(self) -> dict[str, Any]:
        return {"From": self.from_, "To": self.to}
