"""Base class of the request dataclasses: ``to_dict()`` renders the JSON the server expects.

None values are dropped recursively (the server treats a missing key as "default", while an
explicit null may be an error), nested request objects are rendered, and booleans become the
strings ``"true"``/``"false"`` as in PyUNICORE's helpers.
"""

from __future__ import annotations

import abc
from typing import Any


class ApiRequestObject(abc.ABC):
    """Any object that is sent to the UNICORE API as JSON."""

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready dict (None values removed)."""
        return _create_dict_with_not_none_values(self._to_dict())

    @abc.abstractmethod
    def _to_dict(self) -> dict[str, Any]:
        """The raw dict, possibly with None values and nested objects."""


def _create_dict_with_not_none_values(kwargs: dict[str, Any]) -> dict[str, Any]:
    return {key: _convert_value(value) for key, value in kwargs.items() if value is not None}


def _convert_value(value: Any) -> Any:
    if isinstance(value, dict):
        return _create_dict_with_not_none_values(value)
    if isinstance(value, (list, tuple, set)):
        return _create_list_with_not_none_values(value)
    if isinstance(value, ApiRequestObject):
        return value.to_dict()
    if isinstance(value, bool):
        return str(value).lower()
    return value


def _create_list_with_not_none_values(values: Any) -> list[Any]:
    return [_convert_value(value) for value in values if value is not None]
