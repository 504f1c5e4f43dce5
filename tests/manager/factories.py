"""Small builders for manager tests, and a toy cluster to run replication against.

Everything is deterministic: ids come from `id_gen()` (itertools.count), times
are passed in explicitly.
"""

import itertools
from collections.abc import Callable, Iterable, Mapping

from corral.manager import health, replication
from corral.manager.replication import ReplicationPlan
from corral.model import (
    Node,
    NodeAvailability,
    NodeState,
    Placement,
    Resources,
    RestartPolicy,
    Service,
    ServiceMode,
    ServiceSpec,
    Task,
    TaskState,
)
from corral.model.task import DesiredState, TERMINAL_STATES, UNPLACED_STATES

RUNNING = DesiredState.running
SHUTDOWN = DesiredState.shutdown


def id_gen(prefix: str = "t") -> Callable[[], str]:
    counter = itertools.count(1)
    return lambda: f"{prefix}{next(counter):04d}"  # zero-padded: sorts like the number


def make_spec(name: str = "s", image: str = "nginx:1", **fields: object) -> ServiceSpec:
    return ServiceSpec(name=name, image=image, **fields)  # type: ignore[arg-type]


def make_service(
    name: str = "s",
    replicas: int = 3,
    version: int = 1,
    *,
    restart: RestartPolicy | dict | None = None,
    constraints: list[str] | None = None,
    global_: bool = False,
    created_at: float = 0.0,
    **spec_fields: object,
) -> Service:
    if isinstance(restart, dict):
        restart = RestartPolicy(**restart)
    if restart is not None:
        spec_fields["restart_policy"] = restart
    if constraints is not None:
        spec_fields["placement"] = Placement(constraints=constraints)
    if global_:
        spec_fields["mode"] = ServiceMode.global_
    spec = make_spec(name, replicas=replicas, **spec_fields)
    return Service(spec=spec, version=version, created_at=created_at, updated_at=created_at)


def make_task(
    service: Service,
    slot: int | None = 1,
    *,
    id: str | None = None,
    state: TaskState = TaskState.running,
    desired: DesiredState = RUNNING,
    node: str | None | object = ...,
    created_at: float = 0.0,
    **fields: object,
) -> Task:
    return Task(
        id=id or f"{service.name}.{slot if slot is not None else node}",
        service=service.name,
        stack=service.spec.stack,
        slot=slot,
        node=(None if state in UNPLACED_STATES else "n1") if node is ... else node,  # type: ignore[arg-type]
        desired_state=desired,
        state=state,
        spec=service.spec.task_shape(),
        spec_version=service.version,
        created_at=created_at,
        updated_at=created_at,
        **fields,  # type: ignore[arg-type]
    )


def make_node(
    name: str = "n1",
    *,
    state: NodeState = NodeState.ready,
    availability: NodeAvailability = NodeAvailability.active,
    labels: dict[str, str] | None = None,
    last_heartbeat: float = 0.0,
    address: str = "10.0.0.1",
) -> Node:
    return Node(
        name=name,
        address=address,
        labels=labels or {},
        resources=Resources(cpus=4, memory=1 << 33),
        state=state,
        availability=availability,
        last_heartbeat=last_heartbeat,
        registered_at=0.0,
    )


def nodes_by_name(*nodes: Node) -> dict[str, Node]:
    return {n.name: n for n in nodes}


def services_by_name(*services: Service) -> dict[str, Service]:
    return {s.name: s for s in services}


# -- applying plans


def apply_plan(tasks: dict[str, Task], plan: ReplicationPlan) -> None:
    """Write a replication plan into `tasks` (id -> task) as the controller would."""
    for task_id in plan.delete:
        assert task_id in tasks, f"plan deletes unknown task {task_id}"
        del tasks[task_id]
    for task in plan.update:
        assert task.id in tasks, f"plan updates unknown task {task.id}"
        tasks[task.id] = task
    for task in plan.create:
        assert task.id not in tasks, f"plan creates existing task {task.id}"
        tasks[task.id] = task


def reconcile_until_quiet(
    services: Mapping[str, Service],
    tasks: dict[str, Task],
    nodes: Mapping[str, Node],
    now: float,
    new_id: Callable[[], str],
    max_rounds: int = 5,
) -> int:
    """Reconcile and apply until the plan is empty; returns the rounds that changed something."""
    for rounds in range(max_rounds + 1):
        plan = replication.reconcile(services, list(tasks.values()), nodes, now, new_id)
        if plan.empty:
            return rounds
        apply_plan(tasks, plan)
        if isinstance(services, dict):
            services.update({s.name: s for s in plan.services})
    raise AssertionError(f"replication did not settle in {max_rounds} rounds; last plan: {plan}")


def live(tasks: Iterable[Task]) -> list[Task]:
    """The tasks replication wants running."""
    return [t for t in tasks if t.desired_state == RUNNING]


def slot_of(tasks: Iterable[Task], slot: int | str) -> list[Task]:
    key = str(slot)
    return [t for t in tasks if t.slot_key == key]


class ToyCluster:
    """Replication plus a naive scheduler and agent, enough to play event sequences.

    The scheduler puts every unplaced desired-running task on the first usable
    node (ignoring restart delays); the agent runs what it is given and stops
    what it is asked to stop, at once.
    """

    def __init__(self, services: dict[str, Service], nodes: dict[str, Node], now: float = 1000.0) -> None:
        self.services = services
        self.nodes = nodes
        self.tasks: dict[str, Task] = {}
        self.now = now
        self.new_id = id_gen()
        self.observers: list[Callable[["ToyCluster"], None]] = []

    def replicate(self) -> bool:
        plan = replication.reconcile(self.services, list(self.tasks.values()), self.nodes, self.now, self.new_id)
        apply_plan(self.tasks, plan)
        for service in plan.services:  # rollout status, rollbacks
            self.services[service.name] = service
        return not plan.empty

    def heal(self) -> bool:
        plan = health.reconcile(self.nodes, self.tasks.values(), {}, self.now, down_after=1e12)
        for node in plan.nodes:
            self.nodes[node.name] = node
        for task in plan.tasks:
            self.tasks[task.id] = task
        return not plan.empty

    def usable_nodes(self) -> list[Node]:
        return [
            n for n in self.nodes.values() if n.state == NodeState.ready and n.availability == NodeAvailability.active
        ]

    def schedule(self) -> bool:
        usable = self.usable_nodes()
        changed = False
        for task in list(self.tasks.values()):
            if task.state not in UNPLACED_STATES or task.desired_state != RUNNING:
                continue
            if task.node is not None:  # a global task: pinned
                target = task.node if any(n.name == task.node for n in usable) else None
            else:
                target = usable[(task.slot or 0) % len(usable)].name if usable else None
            if target is not None:
                self.tasks[task.id] = task.model_copy(update={"node": target, "state": TaskState.running})
                changed = True
        return changed

    def run_agents(self) -> bool:
        changed = False
        for task in list(self.tasks.values()):
            if task.desired_state == SHUTDOWN and task.state not in TERMINAL_STATES:
                self.tasks[task.id] = task.model_copy(update={"state": TaskState.shutdown})
                changed = True
        return changed

    def settle(self, max_rounds: int = 30) -> int:
        for rounds in range(max_rounds):
            self.now += 1.0
            changed = self.heal()
            changed |= self.replicate()
            for observe in self.observers:
                observe(self)
            changed |= self.schedule()
            changed |= self.run_agents()
            if not changed:
                return rounds
        raise AssertionError(f"cluster did not settle in {max_rounds} rounds")

    # -- events

    def fail(self, task_id: str, state: TaskState = TaskState.failed, exit_code: int | None = 1) -> None:
        task = self.tasks[task_id]
        self.tasks[task_id] = task.model_copy(
            update={"state": state, "exit_code": exit_code, "error": f"exited with code {exit_code}"}
        )

    def set_availability(self, name: str, availability: NodeAvailability) -> None:
        self.nodes[name] = self.nodes[name].model_copy(update={"availability": availability})

    def set_node_state(self, name: str, state: NodeState) -> None:
        self.nodes[name] = self.nodes[name].model_copy(update={"state": state})

    def scale(self, name: str, replicas: int) -> None:
        service = self.services[name]
        self.services[name] = service.model_copy(update={"spec": service.spec.model_copy(update={"replicas": replicas})})

    def update_image(self, name: str, image: str) -> None:
        service = self.services[name]
        self.services[name] = service.model_copy(
            update={"spec": service.spec.model_copy(update={"image": image}), "version": service.version + 1}
        )


def alias_bomb() -> str:
    """A "billion laughs" compose file (9**8 strings) whose bomb sits in deploy.resources.limits.cpus."""
    lines = ['x-a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for previous, name in zip("abcdefg", "bcdefgh"):
        lines.append(f"x-{name}: &{name} [{','.join(['*' + previous] * 9)}]")
    lines.append("services:\n  web:\n    image: x\n    deploy:\n      resources:\n        limits:\n          cpus: *h")
    return "\n".join(lines) + "\n"


def many_services(count: int) -> str:
    return "services:\n" + "".join(f"  s{i}:\n    image: x\n" for i in range(count))
