"""Workflow activities.  As in PyUNICORE, ``jobs`` here is the ``helpers.jobs`` module (use
``activities.job.Job`` for the job activity)."""

from pyunicore_fast.helpers.workflows.activities import job, loops
from pyunicore_fast.helpers.workflows.activities.activity import (
           Activity,
           Branch,
           Hold,
           Merge,
           Split,
           Start,
           Synchronize,
)
from pyunicore_fast.helpers.workflows.activities.job import jobs
from pyunicore_fast.helpers.workflows.activities.modify_variable import ModifyVariable

__all__ = [
           "Activity",
           "Branch",
           "Hold",
           "Merge",
           "ModifyVariable",
           "Split",
           "Start",
           "Synchronize",
           "job",
           "jobs",
           "loops",
]
