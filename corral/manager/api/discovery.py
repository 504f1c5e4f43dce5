"""Service discovery over HTTP: a service's endpoints (and a watch on them), each node's mesh routes.

    GET /v1/services/{name}/endpoints              the endpoints, a JSON list
    GET /v1/services/{name}/endpoints?watch=true   NDJSON: the list now, then again at every change
    GET /v1/services/{name}/mesh                   its published routes, and any node that cannot serve them
    GET /v1/agent/{node}/mesh?known=FP&wait=S      long poll: the mesh routes once they differ from FP
    PUT /v1/agent/{node}/mesh/errors               the listeners a node could not open
"""

import json
from collections.abc import AsyncIterator

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from corral.manager import discovery
from corral.manager.api.deps import agent_router, context
from corral.manager.context import ManagerContext
from corral.manager.discovery import Endpoint, Route, ServiceName
from corral.model.errors import NotFound

router = APIRouter(prefix="/v1", tags=["discovery"])
agent_routes = agent_router()  # what agents call: the node credential is checked

WATCH_HEARTBEAT = 15.0  # seconds between repeats of an unchanged list on a watch (keeps proxies honest)


class MeshRoutes(BaseModel):
    fingerprint: str
    routes: list[Route]
    names: list[ServiceName] = Field(default_factory=list, description="every service's DNS records, for the node's responder")
    dns: str = Field(default="", description="the address of every node's DNS responder, the containers' resolver")
    service_network: str = Field(default="", description="where the VIPs and the DNS address come from")


class MeshErrors(BaseModel):
    errors: dict[str, str] = Field(default_factory=dict, description="listener (PORT/PROTOCOL) -> why it cannot be served")


class ServiceMesh(BaseModel):
    routes: list[Route]
    errors: dict[str, dict[str, str]] = Field(description="node -> listener -> error")


def _endpoints(ctx: ManagerContext, name: str) -> list[Endpoint]:
    if name not in ctx.cache.services:
        raise NotFound(f"service {name!r} not found (see `corral service ls`)")
    return discovery.endpoints(ctx.cache.tasks_of(name))


def _routes(ctx: ManagerContext) -> list[Route]:
    """Read on every change while agents long-poll, through the cache's per-service index."""
    services = {name: v.obj for name, v in ctx.cache.services.items()}
    return discovery.routes(services, {name: ctx.cache.tasks_of(name) for name in services})


def _mesh(ctx: ManagerContext) -> MeshRoutes:
    """What every node's mesh and DNS responder serve, with its fingerprint: computed once per change of the cache,
    however many agents' long polls look (each looks at every change, and answers with it)."""
    changes = ctx.cache.changes
    if ctx.mesh_routes is not None and ctx.mesh_routes[0] == changes and isinstance(ctx.mesh_routes[1], MeshRoutes):
        return ctx.mesh_routes[1]
    services = {name: v.obj for name, v in ctx.cache.services.items()}
    tasks = {name: ctx.cache.tasks_of(name) for name in services}
    routes, names = discovery.routes(services, tasks), discovery.names(services, tasks)
    mesh = MeshRoutes(
        fingerprint=discovery.fingerprint([*routes, *names]), routes=routes, names=names,
        dns=discovery.dns_address(ctx.settings.service_network), service_network=ctx.settings.service_network,
    )
    ctx.mesh_routes = (changes, mesh)
    return mesh


@router.get("/services/{name}/endpoints", response_model=list[Endpoint])
async def service_endpoints(
    name: str, watch: bool = False, ctx: ManagerContext = Depends(context)
) -> list[Endpoint] | StreamingResponse:
    current = _endpoints(ctx, name)
    if not watch:
        return current

    async def lines() -> AsyncIterator[bytes]:
        known = ""
        while True:
            found = _endpoints(ctx, name)
            fingerprint = discovery.fingerprint(found)
            if fingerprint != known:
                known = fingerprint
                yield (json.dumps([e.model_dump() for e in found]) + "\n").encode()
            await ctx.cache.wait_change(
                lambda: name not in ctx.cache.services or discovery.fingerprint(_endpoints(ctx, name)) != known,
                WATCH_HEARTBEAT,
            )
            if name not in ctx.cache.services or ctx.cache.closing:
                return

    return StreamingResponse(lines(), media_type="application/x-ndjson")


@router.get("/services/{name}/mesh", response_model=ServiceMesh)
async def service_mesh(name: str, ctx: ManagerContext = Depends(context)) -> ServiceMesh:
    _endpoints(ctx, name)
    routes = [r for r in _routes(ctx) if r.service == name]
    mine = {f"{r.port}/{r.protocol}" for r in routes}
    errors = {
        node: {listener: error for listener, error in found.items() if listener in mine}
        for node, found in sorted(ctx.mesh_errors.items())
    }
    return ServiceMesh(routes=routes, errors={node: found for node, found in errors.items() if found})


@agent_routes.get("/{node}/mesh", response_model=MeshRoutes)
async def mesh_routes(
    node: str, known: str = "", wait: float = Query(default=0.0, ge=0, le=60), ctx: ManagerContext = Depends(context)
) -> MeshRoutes:
    if wait:
        await ctx.cache.wait_change(lambda: _mesh(ctx).fingerprint != known, float(wait))
    return _mesh(ctx)


@agent_routes.put("/{node}/mesh/errors", response_model=MeshErrors)
async def mesh_errors(node: str, body: MeshErrors, ctx: ManagerContext = Depends(context)) -> MeshErrors:
    if body.errors:
        ctx.mesh_errors[node] = dict(body.errors)
    else:
        ctx.mesh_errors.pop(node, None)
    return body
