"""Data types shared by every plane. Imports nothing else of corral's.

The objects kept in the store (services, tasks, nodes) are pydantic models,
because they cross the HTTP edge and the store as JSON unchanged; values that
live only inside one process (scheduler snapshots, reconcile actions) are
dataclasses next to the code that uses them.
"""

from typing import TYPE_CHECKING

from corral.lazy_exports import exports

if TYPE_CHECKING:
    from corral.model.node import Node, NodeAvailability, NodeState
    from corral.model.resources import Resources
    from corral.model.service import (
        FileReference,
        Placement,
        NetworkAttachment,
        PortSpec,
        RestartPolicy,
        Service,
        ServiceMode,
        ServiceSpec,
        UpdateConfig,
        UpdateState,
        UpdateStatus,
    )
    from corral.model.task import PublishedPort, Task, TaskState, TERMINAL_STATES

__getattr__ = exports(__name__, {
    "node": ["Node", "NodeAvailability", "NodeState"],
    "resources": ["Resources"],
    "service": ["FileReference", "Placement", "NetworkAttachment", "PortSpec", "RestartPolicy", "Service", "ServiceMode", "ServiceSpec", "UpdateConfig", "UpdateState", "UpdateStatus"],
    "task": ["PublishedPort", "Task", "TaskState", "TERMINAL_STATES"],
})

__all__ = [
    "FileReference",
    "Node",
    "NodeAvailability",
    "NodeState",
    "Placement",
    "NetworkAttachment",
    "PortSpec",
    "PublishedPort",
    "Resources",
    "RestartPolicy",
    "Service",
    "ServiceMode",
    "ServiceSpec",
    "Task",
    "TaskState",
    "TERMINAL_STATES",
    "UpdateConfig",
    "UpdateState",
    "UpdateStatus",
]
