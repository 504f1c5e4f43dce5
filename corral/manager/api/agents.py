"""/v1/agent/register: a node joins; and the body of a status report.

An agent registers its node with the join token and gets the node's
credential, which every other call carries (corral/manager/credentials.py).
Everything after (heartbeats, the watch of its tasks, status reports) goes
through the batched routes of `agent_batches.py`, the one protocol of lone
agents and fleets alike, and the mesh routes of `discovery.py`.
"""

import ipaddress

from fastapi import Depends
from pydantic import BaseModel, Field, field_validator

from corral.manager import credentials, node_changes
from corral.manager.api.deps import context, join_router
from corral.manager.context import ManagerContext
from corral.model import Node, PublishedPort, Resources, TaskState
from corral.model.node import NodeLabels

join = join_router()


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
