"""For-each loop with its three range kinds and optional chunking."""

from __future__ import annotations

import dataclasses
from typing import Any

from pyunicore_fast.helpers import _api_object
from pyunicore_fast.helpers.workflows import variable
from pyunicore_fast.helpers.workflows.activities.loops import _loop


@dataclasses.dataclass
class Values(_api_object.ApiRequestObject):
    """Iterate over literal values."""

    values: list[Any]

    def _to_dict(self) -> dict[str, Any]:
        return {"values": self.values}


@dataclasses.dataclass
class Variable(variable.Variable):
    """A loop variable: start value, update ``expression`` and ``end_condition``."""

    expression: str
    end_condition: str

    def _to_dict(self) -> dict[str, Any]:
        return {
            "variable_name": self.name,
            "type": variable.VariableType.get_type_name(self.type),
            "start_value": self.initial_value,
            "expression": self.expression,
            "end_condition": self.end_condition,
        }


@dataclasses.dataclass
class Variables(_api_object.ApiRequestObject):
    """Iterate over loop variables."""

    variables: list[Variable]

    def _to_dict(self) -> dict[str, Any]:
        return {"variables": self.variables}


@dataclasses.dataclass
class File(_api_object.ApiRequestObject):
    """A file set resolved at run time: ``base`` plus include/exclude patterns."""

    base: str
    include: list[str]
    exclude: list[str]
    recurse: bool = False
    indirection: bool = False

    def _to_dict(self) -> dict[str, Any]:
        return {"base": self.base, "include": self.include, "exclude": self.exclude,
                "recurse": self.recurse, "indirection": self.indirection}


@dataclasses.dataclass
class Files(_api_object.ApiRequestObject):
    """Iterate over files."""

    files: list[File]

    def _to_dict(self) -> dict[str, Any]:
        return {"file_sets": self.files}


class ChunkingType:
    """``Normal``: number of files per chunk; ``Size``: kbytes per chunk."""

    Normal = "NORMAL"
    Size = "SIZE"


@dataclasses.dataclass
class Chunking(_api_object.ApiRequestObject):
    """Process files in chunks; exactly one of ``chunksize`` / ``chunksize_formula``."""

    chunksize: int | None = None
    chunksize_formula: str | None = None
    type: str = ChunkingType.Normal
    filename_format: str | None = None

    def __post_init__(self) -> None:
        if (self.chunksize is None) == (self.chunksize_formula is None):
            raise ValueError("Either `chunksize` or `chunksize_formula` must be given")

    def _to_dict(self) -> dict[str, Any]:
        return {"chunksize": self.chunksize, "type": self.type, "filename_format": self.filename_format,
                "chunksize_formula": self.chunksize_formula}


@dataclasses.dataclass
class ForEach(_loop.Loop):
    """Runs the body for each element of ``range`` (iterator variable ``iterator_name``)."""

    range: Values | Variables | Files
    iterator_name: str = "IT"
    chunking: Chunking | None = None

    def _type(self) -> str:
        return "FOR_EACH"

    def _activity_to_dict(self) -> dict[str, Any]:
        return {"iterator_name": self.iterator_name, "body": self.body, "chunking": self.chunking,
                **self.range.to_dict()}
