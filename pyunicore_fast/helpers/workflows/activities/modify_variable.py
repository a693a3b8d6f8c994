"""The ModifyVariable activity."""

from __future__ import annotations

import dataclasses
from typing import Any

from pyunicore_fast.helpers.workflows.activities import activity


@dataclasses.dataclass
class ModifyVariable(activity.Activity):
    """Changes ``variable_name`` with a Groovy ``expression``."""

    variable_name: str
    expression: str

    def _type(self) -> str:
        return "ModifyVariable"

    def _activity_to_dict(self) -> dict[str, Any]:
        return {"variableName": self.variable_name, "expression": self.expression}
