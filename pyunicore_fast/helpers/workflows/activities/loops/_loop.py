"""Common base of loop activities."""

from __future__ import annotations

import dataclasses

from pyunicore_fast.helpers.workflows.activities import activity
from pyunicore_fast.helpers.workflows.activities.loops import body as _body


@dataclasses.dataclass
class Loop(activity.Activity):
    """A loop activity with a :class:`Body`."""

    body: _body.Body
