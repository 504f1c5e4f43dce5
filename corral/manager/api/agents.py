"""/v1/agent: what node agents call. Every call carries the join token.

An agent registers its node, renews its lease with heartbeats, long-polls
for the tasks assigned to it (the whole list each time: level-driven, so a
lost response costs nothing), and reports each task's observed state.
"""

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from corral.manager import node_changes, task_reports
from corral.manager.api.deps import context, require_token
from corral.manager.context import ManagerContext
from corral.model import Node, PublishedPort, Resources, Task, TaskState
from corral.model.errors import NotFound

router = APIRouter(prefix="/v1/agent", tags=["agent"], dependencies=[Depends(require_token)])


class RegisterRequest(BaseModel):
    name: str = Field(pattern=r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$")
    address: str
    resources: Resources
    labels: dict[str, str] = Field(default_factory=dict)
    engine: str = "docker"


class RegisterResponse(BaseModel):
    cluster_id: str
    heartbeat_interval: float
    node: Node


class AssignedTasks(BaseModel):
    revision: int
    tasks: list[Task]


class TaskStatus(BaseModel):
    state: TaskState
    container_id: str = ""
    error: str = ""
    exit_code: int | None = None
    ports: list[PublishedPort] = Field(default_factory=list)


@router.post("/register", response_model=RegisterResponse)
async def register(body: RegisterRequest, ctx: ManagerContext = Depends(context)) -> RegisterResponse:
    node = await node_changes.register(ctx, body.name, body.address, body.resources, body.labels, body.engine)
    return RegisterResponse(cluster_id=ctx.cluster_id, heartbeat_interval=ctx.settings.heartbeat_interval, node=node)


@router.post("/{node}/heartbeat")
async def heartbeat(node: str, ctx: ManagerContext = Depends(context)) -> dict[str, str]:
    found = ctx.cache.nodes.get(node)
    if found is None:
        raise NotFound(f"node {node!r} is not registered")
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
    return await task_reports.report(ctx, node, task_id, body)
