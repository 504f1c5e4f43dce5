"""What the API returns for each object: the fields documented in docs/api.md."""

from collections.abc import Callable, Iterable
from typing import Any

from pydantic import BaseModel, Field, TypeAdapter
from pydantic_core import to_json

from corral.model import Node, Resources, Service, ServiceMode, ServiceSpec, Task, UpdateStatus
from corral.model.autoscale import AutoscaleDecision
from corral.model.job import JobStatus
from corral.model.task import DesiredState, TERMINAL_STATES, TaskState


class TaskView(BaseModel):
    id: str
    service: str
    stack: str
    slot: int | None
    node: str | None
    desired_state: str
    state: str
    error: str
    exit_code: int | None
    container_id: str
    image: str
    address: str
    version: int
    attempt: int
    created_at: float
    updated_at: float

    @staticmethod
    def of(task: Task) -> "TaskView":
        return TaskView(
            id=task.id,
            service=task.service,
            stack=task.stack,
            slot=task.slot,
            node=task.node,
            desired_state=task.desired_state.value,
            state=task.state.value,
            error=task.error,
            exit_code=task.exit_code,
            container_id=task.container_id,
            image=task.spec.image,
            address=task.address,
            version=task.spec_version,
            attempt=task.attempt,
            created_at=task.created_at,
            updated_at=task.updated_at,
        )


def by_service_and_slot(task: Task) -> tuple[str, int, str, float]:
    """`GET /v1/tasks`' order: by service, slot and node, newest first."""
    return (task.service, task.slot if task.slot is not None else 0, task.node or "", -task.created_at)


def by_slot(task: Task) -> tuple[int, str, float]:
    """A service's tasks' order: by slot and node, newest first."""
    return (task.slot if task.slot is not None else 0, task.node or "", -task.created_at)


_TASK_VIEWS = TypeAdapter(list[TaskView])
VIEWS_AT_ONCE = 500  # task views made and encoded in one go by `task_list_json`


def task_list_json(tasks: list[Task], order: Callable[[Task], Any]) -> bytes:
    """The JSON array of the tasks' views, sorted by `order`, made and encoded VIEWS_AT_ONCE at a time.

    For a whole listing (100,000 tasks: about a second of work), called in a worker thread: on the
    event loop it held every other request, the agents' too, for that long; in the thread the GIL
    goes back to the loop between two slices (each a few ms; an encoding holds it throughout).
    """
    tasks = sorted(tasks, key=order)
    parts = []
    for start in range(0, len(tasks), VIEWS_AT_ONCE):
        parts.append(_TASK_VIEWS.dump_json([TaskView.of(task) for task in tasks[start : start + VIEWS_AT_ONCE]])[1:-1])
    return b"[" + b",".join(parts) + b"]"


class ServiceView(BaseModel):
    name: str
    stack: str
    image: str
    mode: str
    replicas: int  # desired (for global: the number of tasks that should run)
    running: int
    ports: list[str]
    vip: str  # where the other services of its stack reach it by name ("" before it has one)
    version: int
    created_at: float
    updated_at: float
    spec: ServiceSpec
    update_status: UpdateStatus | None = None  # the latest rollout: state, updated/total, message
    previous_spec: ServiceSpec | None = None  # what `corral service rollback` returns to
    reconcile_error: str = ""  # why the controller's last reconcile of it failed (retried with back-off)
    job_status: JobStatus | None = None  # a job's current run and the runs before it
    autoscale_status: AutoscaleDecision | None = None  # the autoscaler's last decision: replicas, usage, reason
    job: str = ""  # a job's state in a few words: `3/3 completed`, `2/3 running`, `failed: backoff limit reached`
    completed: int = 0  # replicas that ran to completion and rest (a restart policy that restarts no completed task)
    unbound_ports: dict[str, list[str]] = Field(
        default_factory=dict, description="published port (8080/tcp) -> nodes whose routing mesh could not listen on it"
    )

    @staticmethod
    def of(service: Service, tasks: Iterable[Task]) -> "ServiceView":
        live = [t for t in tasks if t.desired_state == DesiredState.running]
        return ServiceView.counted(service, len(live), sum(1 for t in live if t.state == TaskState.running))

    @staticmethod
    def counted(service: Service, live: int, running: int) -> "ServiceView":
        """From the numbers of its live and running tasks (the cache keeps them: no scan)."""
        spec = service.spec
        desired = spec.replicas if spec.mode in (ServiceMode.replicated, ServiceMode.replicated_job) else live
        ports = [
            f"{p.published}:{p.target}/{p.protocol}" if p.published else f"{p.target}/{p.protocol}" for p in spec.ports
        ]
        return ServiceView(
            name=service.name,
            stack=spec.stack,
            image=spec.image,
            mode=spec.mode.value,
            replicas=desired,
            running=running,
            ports=ports,
            vip=service.vip,
            version=service.version,
            created_at=service.created_at,
            updated_at=service.updated_at,
            spec=spec,
            update_status=service.update_status,
            previous_spec=service.previous_spec,
            reconcile_error=service.reconcile_error,
            job_status=service.job_status,
            autoscale_status=service.autoscale_status,
            job=service.job_status.summary(running) if service.job_status is not None else "",
        )


class NodeView(BaseModel):
    name: str
    address: str
    state: str
    availability: str
    labels: dict[str, str]
    resources: Resources
    reserved: Resources
    tasks: int
    engine: str
    last_heartbeat: float
    health: str = Field(description="ok: lease current; late: lease ran out, within grace; down")
    registered_at: float
    message: str

    @staticmethod
    def of(node: Node, tasks: Iterable[Task], last_heartbeat: float | None, health: str) -> "NodeView":
        mine = [t for t in tasks if t.node == node.name and t.state not in TERMINAL_STATES]
        # Summed as numbers: a Resources per task made `node ls` cost seconds at 100,000 tasks.
        reserved = Resources(
            cpus=sum(t.spec.reservations.cpus for t in mine), memory=sum(t.spec.reservations.memory for t in mine)
        )
        return NodeView.counted(node, len(mine), reserved, last_heartbeat, health)

    @staticmethod
    def counted(node: Node, tasks: int, reserved: Resources, last_heartbeat: float | None, health: str) -> "NodeView":
        """From the number of its live tasks and what they reserve (the cache keeps them: no scan)."""
        return NodeView(
            name=node.name,
            address=node.address,
            state=node.state.value,
            availability=node.availability.value,
            labels=node.labels,
            resources=node.resources,
            reserved=reserved,
            tasks=tasks,
            engine=node.engine,
            last_heartbeat=max(last_heartbeat or 0.0, node.last_heartbeat),
            health=health,
            registered_at=node.registered_at,
            message=node.message,
        )

    # `GET /v1/nodes` at 5,000 nodes spent most of its time making, validating and encoding a
    # NodeView per node. It encodes each Node once instead (`json_template`, kept until the Node
    # changes) and fills in the fields that change without it (`fill_json`): the same JSON.

    @staticmethod
    def json_template(node: Node) -> bytes:
        """The node's view as JSON, with `%`-placeholders for the fields `fill_json` fills in."""
        known = {
            "name": node.name,
            "address": node.address,
            "state": node.state.value,
            "availability": node.availability.value,
            "labels": node.labels,
            "resources": node.resources.model_dump(),
            "engine": node.engine,
            "registered_at": node.registered_at,
            "message": node.message,
        }
        fields = []
        for name in NodeView.model_fields:  # in the model's order; a new field unknown here is a KeyError, not a gap
            value = _NODE_LIVE[name] if name in _NODE_LIVE else to_json(known[name]).replace(b"%", b"%%")  # a literal %
            fields.append(b'"%s":%s' % (name.encode(), value))
        return b"{" + b",".join(fields) + b"}"

    @staticmethod
    def fill_json(template: bytes, tasks: int, cpus: float, memory: int, heartbeat: float, health: str) -> bytes:
        """The view as JSON from the node's `json_template` and what its live tasks reserve.

        `heartbeat` is the node's last heartbeat (the later of its lease's and its record's).
        """
        # Positional (named placeholders cost 3x as much), in the order of `_NODE_LIVE`.
        health_json = _HEALTH_JSON.get(health) or to_json(health)
        return template % (to_json(float(cpus)), int(memory), int(tasks), to_json(float(heartbeat)), health_json)


# The fields of a node's view that change without the Node, as placeholders of `NodeView.json_template`,
# in the model's order: `fill_json` fills them in this order (tests/manager/test_node_listing.py
# checks the result against the model's JSON).
_NODE_LIVE = {
    "reserved": b'{"cpus":%s,"memory":%d}',
    "tasks": b"%d",
    "last_heartbeat": b"%s",
    "health": b"%s",
}
_HEALTH_JSON = {health: to_json(health) for health in ("ok", "late", "down")}  # encoded once: 10% of a listing
