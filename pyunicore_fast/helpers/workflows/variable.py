"""Workflow variables."""

from __future__ import annotations

import dataclasses
from typing import Any

from pyunicore_fast.helpers import _api_object


class VariableType:
    """The variable types the workflow engine knows, as Python types."""

    String = str
    Integer = int
    Float = float
    Boolean = bool

    @classmethod
    def get_types(cls) -> tuple[type, ...]:
        return tuple(cls._types().keys())

    @classmethod
    def get_type_name(cls, type: type) -> str:
        """``str`` -> ``STRING`` etc."""
        return cls._types()[type]

    @classmethod
    def _types(cls) -> dict[type, str]:
        return {cls.String: "STRING", cls.Integer: "INTEGER", cls.Float: "FLOAT", cls.Boolean: "BOOLEAN"}


@dataclasses.dataclass
class Variable(_api_object.ApiRequestObject):
    """A workflow variable: ``name``, ``type`` (a :class:`VariableType`), ``initial_value``."""

    name: str
    type: Any
    initial_value: Any

    def __post_init__(self) -> None:
        allowed = VariableType.get_types()
        if self.type not in allowed:
            raise ValueError(f"{self.type} is not a valid variable type. Allowed variable types: {allowed}")
        # bool is an int subclass: an Integer variable must not accept True/False silently
        wrong_bool = self.type is not bool and isinstance(self.initial_value, bool)
        if not isinstance(self.initial_value, self.type) or wrong_bool:
            raise ValueError(f"Initial value of {self} has incorrect type {type(self.initial_value)}, "
                             f"expected {self.type}")

    def _to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": VariableType.get_type_name(self.type),
            "initial_value": self._convert_value(),
        }

    def _convert_value(self) -> Any:
        if self.type == VariableType.Boolean:
            return str(self.initial_value).lower()
        return self.initial_value
