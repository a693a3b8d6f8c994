"""Activity base class and the control-flow activities without parameters."""

from __future__ import annotations

import abc
import dataclasses
from typing import Any

from pyunicore_fast.helpers import _api_object


@dataclasses.dataclass
class Activity(_api_object.ApiRequestObject):
    """A workflow activity with a workflow-unique ``id``."""

    id: str

    @property
    def type(self) -> str:
        """The activity type name the workflow server expects."""
        return self._type()

    @abc.abstractmethod
    def _type(self) -> str:
        """The UNICORE type of the activity."""

    def _to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "type": self.type, **self._activity_to_dict()}

    @abc.abstractmethod
    def _activity_to_dict(self) -> dict[str, Any]:
        """Type-specific keys."""


def _simple(name: str, type_name: str, doc: str) -> type:
    def _type(self: Activity) -> str:
        return type_name

    def _activity_to_dict(self: Activity) -> dict[str, Any]:
        return {}

    cls = type(name, (Activity,), {"_type": _type, "_activity_to_dict": _activity_to_dict, "__doc__": doc,
                                   "__module__": __name__, "__qualname__": name})
    return dataclasses.dataclass(cls)


Start = _simple("Start", "START", "Explicit start activity.")
Split = _simple("Split", "Split", "Follows every outgoing transition whose condition matches.")
Branch = _simple("Branch", "BRANCH", "Follows the first outgoing transition whose condition matches.")
Merge = _simple("Merge", "Merge", "Merges flows.")
Synchronize = _simple("Synchronize", "Synchronize", "Merges flows and waits for all of them.")
Hold = _simple("Hold", "HOLD", "Stops the flow until the client sends 'continue'.")
