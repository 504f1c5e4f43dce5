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

from corral.manager import credentials, node_changes, task_reports
from corral.manager.api.deps import agent_router, context, join_router
from corral.manager.context import ManagerContext
from corral.manager.heartbeats import hear
from corral.model import Node, PublishedPort, Resources, Task, TaskState
from corral.model.node import NodeLabels

join = join_router()
router = agent_router()


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
    node = await node_changes.register(
        ctx, body.name, body.address, body.resources, body.labels, body.engine, credentials.digest(credential)
    )
    return RegisterResponse(
        cluster_id=ctx.cluster_id, heartbeat_interval=ctx.settings.heartbeat_interval,
        node=node.model_copy(update={"credential": ""}),  # its digest stays in the store
        credential=credential,
    )


@router.post("/{node}/heartbeat")
async def heartbeat(node: str, ctx: ManagerContext = Depends(context)) -> dict[str, str | bool]:
    """Renew the node's lease; a node that was down is ready again (`recovered`: list the tasks afresh)."""
    heard = await hear(ctx, [node])  # the router's dependency answered 404 for an unknown node
    found = ctx.cache.nodes[node]
    return {"state": found.obj.state.value, "availability": found.obj.availability.value, "recovered": bool(heard.recovered)}


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
