"""What one task asks of a node, reduced to the fields the scheduler looks at.

Tasks of one service built from the same spec ask for the same thing, so the
scheduler groups unplaced tasks by their `Demand` and does the per-node work
(filters, ranking set-up) once per group rather than once per task.
"""

from dataclasses import dataclass

from corral.model import Task

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
    )
