"""The ``Resources`` block of a job description."""

from __future__ import annotations

import dataclasses
from typing import Any

from pyunicore_fast.helpers import _api_object


@dataclasses.dataclass
class Resources(_api_object.ApiRequestObject):
    """Batch resources: ``runtime`` (seconds or with ``min``/``h``/``d``), ``queue``,
    ``nodes``, total ``cpus``, ``cpus_per_node``, ``memory`` (per node), ``reservation``,
    ``node_constraints``, ``qos``."""

    runtime: str | int | None = None
    queue: str | None = None
    nodes: int | None = None
    cpus: int | None = None
    cpus_per_node: int | None = None
    memory: str | None = None
    reservation: str | None = None
    node_constraints: str | None = None
    qos: str | None = None

    def _to_dict(self) -> dict[str, Any]:
        return {
            "Runtime": self.runtime,
            "Queue": self.queue,
            "Nodes": self.nodes,
            "CPUs": self.cpus,
            "CPUsPerNode": self.cpus_per_node,
            "Memory": self.memory,
            "Reservation": self.reservation,
            "NodeConstraints": self.node_constraints,
            "QoS": self.qos,
        }
