"""What one task asks of a node, reduced to the fields the scheduler looks at.

Tasks of one service built from the same spec ask for the same thing, so the
scheduler groups unplaced tasks by their `Demand` and does the per-node work
(filters, ranking set-up) once per group rather than once per task.
"""

from dataclasses import dataclass, field

from corral.model import ServiceSpec, Task
from corral.model.affinity import Affinity

HostPort = tuple[int, str]
"""A host-mode published port: (port, protocol)."""


@dataclass(frozen=True, slots=True)
class Demand:
    service: str
    cpus: float
    memory: int
    constraints: tuple[str, ...]
    max_per_node: int | None
    host_ports: tuple[HostPort, ...]
    spread: tuple[str, ...] = ()  # node label keys to spread over, outermost first (placement.preferences)
    affinities: tuple[Affinity, ...] = ()  # require: filters; prefer: a ranking step

    @property
    def reserves(self) -> bool:
        """Whether placing it takes CPU or memory from the node."""
        return self.cpus > 0 or self.memory > 0


def demand_of(task: Task) -> Demand:
    """The demand of `task`, from its spec (reservations, placement, host ports)."""
    spec = task.spec
    reservations = spec.reservations
    placement = spec.placement
    ports = spec.ports
    host_ports: tuple[HostPort, ...] = ()
    if ports:
        host_ports = tuple(
            sorted({(p.published, p.protocol) for p in ports if p.mode == "host" and p.published is not None})
        )
    return Demand(
        service=task.service,
        cpus=reservations.cpus,
        memory=reservations.memory,
        constraints=tuple(placement.constraints),
        max_per_node=placement.max_replicas_per_node,
        host_ports=host_ports,
        spread=tuple(spread.removeprefix("node.labels.") for spread in placement.preferences),
        affinities=tuple(spec.affinities),
    )


@dataclass
class DemandCache:
    """`demand_of` for many tasks, computed once per spec object they share.

    Keyed by the identity of the spec, which the cache keeps alive so that the
    identity cannot be reused by another object while the cache is in use.
    Meant for one pass over a batch of tasks, not to be kept.
    """

    _by_spec: dict[tuple[int, str], tuple[ServiceSpec, Demand]] = field(default_factory=dict)

    def of(self, task: Task) -> Demand:
        key = (id(task.spec), task.service)
        hit = self._by_spec.get(key)
        if hit is None:
            hit = self._by_spec[key] = (task.spec, demand_of(task))
        return hit[1]
