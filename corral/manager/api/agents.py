"""/v1/agent/register: a node joins; and the body of a status report.

An agent registers its node with the join token and gets the node's
credential, which every other call carries (corral/manager/credentials.py).
Everything after (heartbeats, the watch of its tasks, status reports) goes
through the batched routes of `agent_batches.py`, the one protocol of lone
agents and fleets alike, and the mesh routes of `discovery.py`.
"""

import ipaddress

from fastapi import APIRouter, Depends, Request
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, Field, field_validator

from corral.manager import credentials, node_changes, node_identity, registry_peers
from corral.manager.api.deps import NodeCredential, agent_router, context, join_router, peer_node, require_node_credential
from corral.manager.context import ManagerContext
from corral.model import Node, PublishedPort, Resources, TaskState
from corral.model.errors import NotFound, Unauthorized
from corral.model.node import NodeLabels

join = join_router()
trust = APIRouter(prefix="/v1/agent", tags=["agent"])  # open: the CA certificate is public
router = agent_router()  # renewing a node certificate


class RegisterRequest(BaseModel):
    name: str = Field(pattern=r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$")
    address: str = Field(description="the node's IP address; published ports bind there")
    resources: Resources
    labels: NodeLabels = Field(default_factory=dict)
    engine: str = Field(default="docker", pattern=r"^[a-z][a-z0-9_-]{0,31}$")
    credential: str | None = Field(
        default=None, pattern=credentials.PATTERN, description="the credential an earlier registration returned (of this node, or of a node of the same fleet): kept"
    )
    agent_port: int | None = Field(
        default=None, ge=1, le=65535, description="the port of the agent's node listener on `address` (logs, exec; mutual TLS)",
    )
    csr: str | None = Field(
        default=None, max_length=8192,
        description="a PEM certificate signing request for the node's key, subject CN = the node's name: the reply carries its certificate",
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
    certificate: str | None = Field(default=None, description="the node's certificate (PEM) when a `csr` was sent: the client certificate of every other call")
    registry: str | None = Field(default=None, description="HOST:PORT of the cluster's registry: the node pulls from it with its name and credential (basic auth)")
    registries: list[str] = Field(
        default_factory=list, description="HOST:PORT of every manager's registry, this one's first: they hold the same images (several managers)"
    )


class RenewRequest(BaseModel):
    node: str = Field(pattern=r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$")
    csr: str = Field(max_length=8192, description="a PEM certificate signing request for the node's (new) key")


class RenewResponse(BaseModel):
    certificate: str = Field(description="the node's new certificate (PEM); the one before stays valid until the next renewal")


class TaskStatus(BaseModel):
    state: TaskState
    container_id: str = ""
    error: str = ""
    exit_code: int | None = Field(default=None, strict=True)
    ports: list[PublishedPort] = Field(default_factory=list)


@join.post("/register", response_model=RegisterResponse)
async def register(body: RegisterRequest, ctx: ManagerContext = Depends(context)) -> RegisterResponse:
    credential = body.credential or credentials.issue()
    certificate = node_identity.issue(ctx, body.name, body.csr) if body.csr else None
    node = await node_changes.register(
        ctx, body.name, body.address, body.resources, body.labels, body.engine, credentials.digest(credential),
        node_identity.serial_of(certificate) if certificate else None, agent_port=body.agent_port,
    )
    return RegisterResponse(
        cluster_id=ctx.cluster_id, heartbeat_interval=ctx.settings.heartbeat_interval,
        node=node.model_copy(update={"credential": ""}),  # its digest stays in the store
        credential=credential, certificate=node_identity.pem(certificate) if certificate else None,
        registry=ctx.settings.registry_listen, registries=await registry_peers.registries(ctx),
    )


@trust.get("/ca", response_class=PlainTextResponse, responses={200: {"content": {"application/x-pem-file": {}}}})
async def cluster_ca(ctx: ManagerContext = Depends(context)) -> PlainTextResponse:
    """The cluster CA's certificate (public). An agent fetches it before it trusts the connection, and checks it
    against the digest in its join token."""
    if ctx.ca is None:
        raise NotFound("this manager has no cluster CA")
    return PlainTextResponse(ctx.ca.certificate_pem.decode(), media_type="application/x-pem-file")


@router.post("/renew", response_model=RenewResponse)
async def renew(
    body: RenewRequest, request: Request, ctx: ManagerContext = Depends(context), caller: NodeCredential = Depends(require_node_credential)
) -> RenewResponse:
    """A new certificate for a node, asked for with its current one (and its credential) at two thirds of its life."""
    peer = peer_node(request)
    if peer is not None and peer != body.node:
        raise Unauthorized(f"the certificate presented is node {peer}'s, not node {body.node}'s")
    if body.node not in ctx.cache.nodes:
        raise NotFound(f"node {body.node!r} is not registered: its agent must register (again)")
    caller.check_nodes(ctx, [body.node])
    certificate = node_identity.issue(ctx, body.node, body.csr)
    await node_changes.renew_certificate(ctx, body.node, node_identity.serial_of(certificate))
    return RenewResponse(certificate=node_identity.pem(certificate))

