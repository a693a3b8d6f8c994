"""A transition between workflow activities."""

from __future__ import annotations

import dataclasses
from typing import Any

from pyunicore_fast.helpers import _api_object


@dataclasses.dataclass
class Transition(_api_object.ApiRequestObject):
    """``from_`` -> ``to``, followed only if ``condition`` (if given) evaluates to true."""

    from_: str
    to: str
    condition: str | None = None

    def _to_dict(self) -> dict[str, Any]:
        return {"from": self.from_, "to": self.to, "condition": self.condition}
