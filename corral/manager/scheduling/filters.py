"""Feasibility: the steps that decide whether a node can take a task.

Each filter answers one question about one node and, when the answer is no,
says why in a few words ("drained", "insufficient cpu", ...): the words are
what `reasons` counts to explain an unplaced task. Adding a kind of
constraint means adding one filter class and one line in `chain_for`.

Filters are *static* when their verdict depends on the node alone (its state
and labels), so the set of nodes passing them is cached in the index until
the node table changes, and *dynamic* when placing tasks can change it
(replica counts, free resources, ports): those run on the nodes a ranker is
about to choose from, and placing tasks only ever turns their verdict from
yes to no.
"""

from dataclasses import dataclass, field
from typing import ClassVar, Protocol

from corral.model.constraint import Constraint
from corral.manager.scheduling.demand import Demand, HostPort
from corral.manager.scheduling.snapshot import NodeSlot

CPU_SLACK = 1e-9  # as in Resources.fits_in: float sums of reservations must not refuse an exact fit

INSUFFICIENT_CPU = "insufficient cpu"
INSUFFICIENT_MEMORY = "insufficient memory"


class Filter(Protocol):
    dynamic: ClassVar[bool]

    def reject(self, slot: NodeSlot) -> str | None:
        """Why `slot` cannot take the task, None if it can."""
        ...


@dataclass(frozen=True, slots=True)
class Available:
    """The node is ready and active: down, drained and paused nodes take no new task."""

    dynamic: ClassVar[bool] = False

    def reject(self, slot: NodeSlot) -> str | None:
        return slot.unavailable


@dataclass(frozen=True, slots=True)
class Constraints:
    """Every placement constraint holds on the node's name and labels."""

    constraints: tuple[Constraint, ...]
    dynamic: ClassVar[bool] = False

    def reject(self, slot: NodeSlot) -> str | None:
        for constraint in self.constraints:
            if not constraint.matches(slot.name, slot.labels):
                return f"constraint {constraint}"
        return None


@dataclass(frozen=True, slots=True)
class MaxReplicas:
    """The node runs fewer than `limit` tasks of the service."""

    service: str
    limit: int
    dynamic: ClassVar[bool] = True

    def reject(self, slot: NodeSlot) -> str | None:
        if slot.replicas.get(self.service, 0) >= self.limit:
            return f"max replicas per node ({self.limit})"
        return None


@dataclass(frozen=True, slots=True)
class FreeCpu:
    """The CPU not reserved by the node's tasks covers the task's reservation."""

    cpus: float
    dynamic: ClassVar[bool] = True

    def reject(self, slot: NodeSlot) -> str | None:
        if self.cpus > slot.cpus - slot.cpu_used + CPU_SLACK:
            return INSUFFICIENT_CPU
        return None


@dataclass(frozen=True, slots=True)
class FreeMemory:
    """The memory not reserved by the node's tasks covers the task's reservation."""

    memory: int
    dynamic: ClassVar[bool] = True

    def reject(self, slot: NodeSlot) -> str | None:
        if self.memory > slot.memory - slot.mem_used:
            return INSUFFICIENT_MEMORY
        return None


@dataclass(frozen=True, slots=True)
class HostPorts:
    """No task on the node already binds one of the task's host-mode published ports."""

    ports: tuple[HostPort, ...]
    dynamic: ClassVar[bool] = True

    def reject(self, slot: NodeSlot) -> str | None:
        for port in self.ports:
            if port in slot.ports:
                return f"host port {port[0]}/{port[1]} in use"
        return None


@dataclass(frozen=True, slots=True)
class RequiredAffinity:
    """The node runs a task of `service` (affinity), or none (anti-affinity): x-corral-(anti-)affinity, mode require."""

    service: str
    anti: bool
    dynamic: ClassVar[bool] = True  # other services' placements change it

    def reject(self, slot: NodeSlot) -> str | None:
        runs = slot.replicas.get(self.service, 0) > 0
        if self.anti and runs:
            return f"runs {self.service} (anti-affinity)"
        if not self.anti and not runs:
            return f"does not run {self.service} (affinity)"
        return None


@dataclass(frozen=True)
class Chain:
    """The filters one demand goes through, static ones first."""

    static: tuple[Filter, ...]
    dynamic: tuple[Filter, ...]
    steps: tuple[Filter, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "steps", self.static + self.dynamic)

    def reject(self, slot: NodeSlot) -> tuple[int, str] | None:
        """The position and reason of the first filter rejecting `slot`, None if all pass."""
        for position, step in enumerate(self.steps):
            reason = step.reject(slot)
            if reason is not None:
                return position, reason
        return None

    def fits_now(self, slot: NodeSlot) -> bool:
        """Whether `slot`, known to pass the static filters, passes the dynamic ones now."""
        for step in self.dynamic:
            if step.reject(slot) is not None:
                return False
        return True


def chain_for(demand: Demand, constraints: tuple[Constraint, ...]) -> Chain:
    """The filters for `demand`, with its placement constraints already parsed; unneeded steps left out."""
    steps: list[Filter] = [Available()]
    if constraints:
        steps.append(Constraints(constraints))
    if demand.max_per_node is not None:
        steps.append(MaxReplicas(demand.service, demand.max_per_node))
    if demand.cpus > 0:
        steps.append(FreeCpu(demand.cpus))
    if demand.memory > 0:
        steps.append(FreeMemory(demand.memory))
    if demand.host_ports:
        steps.append(HostPorts(demand.host_ports))
    steps.extend(RequiredAffinity(rule.service, rule.anti) for rule in demand.affinities if rule.mode == "require")
    return Chain(
        static=tuple(step for step in steps if not step.dynamic),
        dynamic=tuple(step for step in steps if step.dynamic),
    )
