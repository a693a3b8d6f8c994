"""Workflow description dataclasses (``pyunicore.helpers.workflows``)."""

from pyunicore_fast.helpers.workflows import activities
from pyunicore_fast.helpers.workflows.description import Description
from pyunicore_fast.helpers.workflows.transition import Transition
from pyunicore_fast.helpers.workflows.variable import Variable, VariableType

__all__ = ["Description", "Transition", "Variable", "VariableType", "activities"]
