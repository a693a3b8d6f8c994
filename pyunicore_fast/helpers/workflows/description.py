"""A whole workflow description."""

from __future__ import annotations

import dataclasses
from typing import Any

from pyunicore_fast.helpers import _api_object
from pyunicore_fast.helpers.workflows import transition, variable
from pyunicore_fast.helpers.workflows.activities import activity


@dataclasses.dataclass
class Description(_api_object.ApiRequestObject):
    """Activities, transitions and variables of a workflow (activities as a list, the 8.x form
    every workflow server still accepts); ``notification`` is a URL POSTed when done."""

    activities: list[activity.Activity]
    transitions: list[transition.Transition]
    variables: list[variable.Variable]
    subworkflows: list[Description] | None = None
    notification: str | None = None
    tags: list[str] | None = None

    def _to_dict(self) -> dict[str, Any]:
        return {
            "activities": self.activities,
            "subworkflows": self.subworkflows,
            "transitions": self.transitions,
            "variables": self.variables,
            "notification": self.notification,
            "tags": self.tags,
        }
