"""While loop."""

from __future__ import annotations

import dataclasses
from typing import Any

from pyunicore_fast.helpers.workflows import variable
from pyunicore_fast.helpers.workflows.activities.loops import _loop


@dataclasses.dataclass
class While(_loop.Loop):
    """Repeats the body while its condition holds; ``variables`` are loop variables."""

    variables: list[variable.Variable]

    def _type(self) -> str:
        return "WHILE"

    def _activity_to_dict(self) -> dict[str, Any]:
        return {"variables": self.variables, "body": self.body}
