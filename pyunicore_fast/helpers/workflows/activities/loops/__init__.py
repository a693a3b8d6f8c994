"""Loop activities: While, RepeatUntil, ForEach (with its ranges and chunking)."""

from pyunicore_fast.helpers.workflows.activities.loops.body import Body
from pyunicore_fast.helpers.workflows.activities.loops.for_loop import (
    Chunking,
    ChunkingType,
    File,
    Files,
    ForEach,
    Values,
    Variable,
    Variables,
)
from pyunicore_fast.helpers.workflows.activities.loops.repeat_until_loop import RepeatUntil
from pyunicore_fast.helpers.workflows.activities.loops.while_loop import While

__all__ = [
    "Body",
    "Chunking",
    "ChunkingType",
    "File",
    "Files",
    "ForEach",
    "RepeatUntil",
    "Values",
    "Variable",
    "Variables",
    "While",
]
