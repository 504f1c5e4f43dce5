"""/v1/agent: what node agents call.

An agent registers its node with the join token and gets the node's
credential, which every other call carries (corral/manager/credentials.py);
then it renews its lease with heartbeats, long-polls
for the tasks assigned to it (the whole list each time: level-driven, so a
lost response costs nothing), and reports each task's observed state.
"""

import ipaddress

from fastapi import Depends, Query
from pydantic import BaseModel, Field, field_validator

from corral.manager import credentials, keys
from corral.manager.api.deps import agent_router, context, join_router
from corral.manager.cluster import registered_node
from corral.manager.context import ManagerContext
from corral.manager.cache import Versioned
from corral.manager.writes import put_with_retry
from corral.model import Node, PublishedPort, Resources, Task, TaskState
from corral.model.node import NodeLabels
from corral.model.errors import NotFound
from corral.model.task import TERMINAL_STATES

join = join_router()
router = agent_router()

# The order a task moves through; a report never moves a task backwards.
_PROGRESS = {TaskState.assigned: 1, TaskState.starting: 2, TaskState.running: 3}


class RegisterRequest(BaseModel):
    name: str = Field(pattern=r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$")
    address: str = Field(description="the node's IP address; published ports bind there")
    resources: Resources
    labels: NodeLabels = Field(default_factory=dict)
    engine: str = Field(default="docker", pattern=r"^[a-z][a-z0-9_-]{0,31}$")
    credential: str | None = Field(
        default=None, pattern=credentials.PATTERN, description="the credential an earlier registration returned (of this node, or of a node of the same fleet): kept"
    )

    @field_validator("address")
    @classmethod
    def _ip_address(cls, value: str) -> str:
        try:
            return str(ipaddress.ip_address(value))
        except ValueError:
            raise ValueError(f"{value!r} is not an IP address") from None


class RegisterResponse(BaseModel):
    cluster_id: str
    heartbeat_interval: float
    node: Node
    credential: str = Field(description="the node's credential: `Authorization: Bearer ...` on every other agent call")


class AssignedTasks(BaseModel):
    revision: int
    tasks: list[Task]


class TaskStatus(BaseModel):
    state: TaskState
    container_id: str = ""
    error: str = ""
    exit_code: int | None = Field(default=None, strict=True)
    ports: list[PublishedPort] = Field(default_factory=list)


@join.post("/register", response_model=RegisterResponse)
async def register(body: RegisterRequest, ctx: ManagerContext = Depends(context)) -> RegisterResponse:
    credential = body.credential or credentials.issue()
    now = ctx.clock()
    # The lease first: no controller pass may see the node ready again with its old, expired lease.
    ctx.leases.renew(body.name, now)
    node = await put_with_retry(
        ctx.store,
        ctx.cache,
        keys.node_key(body.name),
        lambda: ctx.cache.nodes.get(body.name),
        lambda current: registered_node(
            current.obj if current else None, body.name, body.address, body.resources, body.labels, body.engine, now
        ).model_copy(update={"credential": credentials.digest(credential)}),
        f"node {body.name}",
        attempts=5,
    )
    return RegisterResponse(
        cluster_id=ctx.cluster_id, heartbeat_interval=ctx.settings.heartbeat_interval,
        node=node.model_copy(update={"credential": ""}),  # its digest stays in the store
        credential=credential,
    )


@router.post("/{node}/heartbeat")
async def heartbeat(node: str, ctx: ManagerContext = Depends(context)) -> dict[str, str]:
    found = ctx.cache.nodes[node]  # the router's dependency answered 404 for an unknown node
    ctx.leases.renew(node, ctx.clock())
    return {"state": found.obj.state.value, "availability": found.obj.availability.value}


@router.get("/{node}/tasks", response_model=AssignedTasks)
async def assigned_tasks(
    node: str, after: int = 0, wait: float = Query(default=0.0, ge=0, le=60), ctx: ManagerContext = Depends(context)
) -> AssignedTasks:
    cache = ctx.cache
    if wait:
        await cache.wait_change(lambda: cache.node_changed.get(node, 0) > after, float(wait))
    return AssignedTasks(revision=max(cache.node_changed.get(node, 0), 1), tasks=cache.tasks_on(node))


@router.put("/{node}/tasks/{task_id}/status", response_model=Task)
async def report_status(node: str, task_id: str, body: TaskStatus, ctx: ManagerContext = Depends(context)) -> Task:
    def reported(found: Versioned[Task] | None) -> Task:
        if found is None or found.obj.node != node:
            raise NotFound(f"task {task_id} is not assigned to node {node}")
        return _with_status(found.obj, body, ctx.clock())

    return await put_with_retry(
        ctx.store, ctx.cache, keys.task_key(task_id), lambda: ctx.cache.tasks.get(task_id), reported, f"task {task_id}"
    )


def _with_status(task: Task, status: TaskStatus, now: float) -> Task:
    """The task after a report; reports that would move it backwards change nothing."""
    if task.state in TERMINAL_STATES:
        return task
    if status.state not in TERMINAL_STATES and _PROGRESS.get(status.state, 0) < _PROGRESS.get(task.state, 0):
        return task
    update: dict = {"state": status.state, "error": status.error, "exit_code": status.exit_code}
    if status.container_id:
        update["container_id"] = status.container_id
    if status.ports:
        update["ports"] = status.ports
    changes = {name: value for name, value in update.items() if getattr(task, name) != value}
    if not changes:
        return task
    if status.state == TaskState.running and task.started_at is None:
        changes["started_at"] = now  # a rollout's monitor counts from here
    changes["updated_at"] = now
    return task.model_copy(update=changes)
