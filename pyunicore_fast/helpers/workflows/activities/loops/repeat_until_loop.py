"""Repeat-until loop."""

from __future__ import annotations

import dataclasses

from pyunicore_fast.helpers.workflows.activities.loops import while_loop


@dataclasses.dataclass
class RepeatUntil(while_loop.While):
    """Runs the body at least once, until its condition holds."""

    def _type(self) -> str:
        return "REPEAT_UNTIL"
