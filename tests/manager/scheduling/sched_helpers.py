"""Builders for scheduler tests: nodes, specs and tasks with few keystrokes."""

from collections import Counter

from corral.manager.scheduling import Plan
from corral.model import Node, NodeAvailability, NodeState, Placement, PortSpec, Resources, ServiceSpec, Task, TaskState

GiB = 1 << 30
MiB = 1 << 20


def node(
    name: str,
    cpus: float = 4,
    memory: int = 8 * GiB,
    labels: dict[str, str] | None = None,
    state: NodeState = NodeState.ready,
    availability: NodeAvailability = NodeAvailability.active,
) -> Node:
    return Node(
        name=name,
        address="10.0.0.1",
        labels=labels or {},
        resources=Resources(cpus=cpus, memory=memory),
        state=state,
        availability=availability,
        last_heartbeat=0.0,
        registered_at=0.0,
    )


def spec(
    name: str = "web",
    cpus: float = 0.0,
    memory: int = 0,
    constraints: list[str] | None = None,
    max_per_node: int | None = None,
    ports: list[PortSpec] | None = None,
) -> ServiceSpec:
    return ServiceSpec(
        name=name,
        image="nginx",
        reservations=Resources(cpus=cpus, memory=memory),
        placement=Placement(constraints=constraints or [], max_replicas_per_node=max_per_node),
        ports=ports or [],
    )


def task(
    task_id: str,
    service_spec: ServiceSpec,
    node_name: str | None = None,
    state: TaskState = TaskState.new,
    not_before: float = 0.0,
    slot: int | None = 1,
) -> Task:
    return Task(
        id=task_id,
        service=service_spec.name,
        slot=slot,
        node=node_name,
        state=state,
        spec=service_spec,
        not_before=not_before,
        created_at=0.0,
        updated_at=0.0,
    )


def tasks(prefix: str, service_spec: ServiceSpec, count: int) -> list[Task]:
    return [task(f"{prefix}{i}", service_spec, slot=i + 1) for i in range(count)]


def per_node(plan: Plan) -> Counter[str]:
    """How many assignments each node got."""
    return Counter(a.node for a in plan.assignments)


def where(plan: Plan) -> dict[str, str]:
    """Task id -> node."""
    return {a.task_id: a.node for a in plan.assignments}


def reasons(plan: Plan) -> dict[str, str]:
    """Task id -> why it was not placed."""
    return {u.task_id: u.reason for u in plan.unplaced}
