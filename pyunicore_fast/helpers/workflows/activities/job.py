"""The job activity, its options and per-job user preferences."""

from __future__ import annotations

import abc
import dataclasses
from typing import Any

from pyunicore_fast.helpers import _api_object, jobs
from pyunicore_fast.helpers.workflows.activities import activity


class Option:
    """Options of a job activity."""

    class _Option(_api_object.ApiRequestObject):
        value: Any

        def _to_dict(self) -> dict[str, Any]:
            return {self._name: self.value}

        @property
        @abc.abstractmethod
        def _name(self) -> str:
            """The UNICORE option name."""

    @dataclasses.dataclass
    class IgnoreFailure(_Option):
        """Continue the workflow as if the activity succeeded (staging/submission failures)."""

        value: bool

        @property
        def _name(self) -> str:
            return "IGNORE_FAILURE"

    @dataclasses.dataclass
    class MaxResubmits(_Option):
        """How often a failed activity is retried (server default 3)."""

        value: int

        @property
        def _name(self) -> str:
            return "MAX_RESUBMITS"


@dataclasses.dataclass
class UserPreferences(_api_object.ApiRequestObject):
    """Identity selection for one job of a workflow."""

    role: str
    uid: str
    group: str
    supplementary_groups: str

    def _to_dict(self) -> dict[str, Any]:
        return {"role": self.role, "uid": self.uid, "group": self.group,
                "supplementaryGroups": self.supplementary_groups}


@dataclasses.dataclass
class Job(activity.Activity):
    """A job activity: ``description`` runs at ``site_name``."""

    description: jobs.Description
    site_name: str
    user_preferences: UserPreferences | None = None
    options: list[Any] | None = None

    def _type(self) -> str:
        return "JOB"

    def _activity_to_dict(self) -> dict[str, Any]:
        options = None
        if self.options is not None:
            options = {k: v for o in self.options for k, v in o.to_dict().items()}
        return {
            "job": {**self.description.to_dict(), "Site name": self.site_name,
                    "User preferences": self.user_preferences},
            "options": options,
        }
