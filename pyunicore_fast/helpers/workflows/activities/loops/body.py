"""The body of a loop."""

from __future__ import annotations

import dataclasses
from typing import Any

from pyunicore_fast.helpers import _api_object
from pyunicore_fast.helpers.workflows import transition
from pyunicore_fast.helpers.workflows.activities import activity


@dataclasses.dataclass
class Body(_api_object.ApiRequestObject):
    """Activities and transitions of a loop body, and the loop ``condition``."""

    activities: list[activity.Activity]
    transitions: list[transition.Transition]
    condition: str

    def _to_dict(self) -> dict[str, Any]:
        return {"activities": self.activities, "transitions": self.transitions, "condition": self.condition}
