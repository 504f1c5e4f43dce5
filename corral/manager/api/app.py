"""The FastAPI application: routers, error handling, and /v1/info."""

from fastapi import APIRouter, Depends, FastAPI
from pydantic import BaseModel

import corral
from corral.manager.api import (
    agent_batches, agents, discovery, errors, events, images, logs, managers, metrics, nodes, openapi, secrets, services, stacks,
    tasks, tokens, ui, volumes,
)
from corral.manager.api import node_top
from corral.manager.api import exec_sessions
from corral.manager.api.audit import AuditWrites
from corral.manager.api.auth import authorize
from corral.manager.api.body_limit import LimitRequestBody
from corral.manager.api.stale import MarkStale
from corral.manager.api.deps import context
from corral.manager.priority import CountUserRequests
from corral.manager.context import ManagerContext

info_router = APIRouter(prefix="/v1", tags=["cluster"])


class Info(BaseModel):
    version: str
    cluster_id: str
    revision: int
    nodes: int
    services: int
    tasks: int
    registry: str | None = None  # HOST:PORT of the cluster's image registry, where `corral deploy --build` pushes
    name: str = ""  # this manager's --name
    leading: bool = False  # this manager leads the control plane now, by its own term (a partitioned one stops within its lease)
    stale: str | None = None  # why this manager's cache may be stale (its watch of the store stalled), None while it follows


@info_router.get("/info", response_model=Info)
async def info(ctx: ManagerContext = Depends(context)) -> Info:
    cache = ctx.cache
    return Info(
        version=corral.__version__,
        cluster_id=ctx.cluster_id,
        revision=cache.revision,
        nodes=len(cache.nodes),
        services=len(cache.services),
        tasks=len(cache.tasks),
        registry=ctx.settings.registry_listen,
        name=ctx.settings.name,
        leading=ctx.leadership is not None and ctx.leadership.leading,
        stale=cache.stale,
    )


def create_app(ctx: ManagerContext) -> FastAPI:
    app = FastAPI(
        title="corral", version=corral.__version__, description="The corral container orchestrator API",
        docs_url=None, redoc_url=None,  # served by ui.install from the package: no CDN
        dependencies=[Depends(authorize)],  # every route: a token with the role roles.POLICY names (api/auth.py)
    )
    app.state.context = ctx
    errors.install(app)
    app.add_middleware(CountUserRequests, users=ctx.users_first)
    app.add_middleware(AuditWrites, ctx=ctx)
    app.add_middleware(LimitRequestBody, max_bytes=ctx.settings.limits.request_bytes)
    app.add_middleware(MarkStale, cache=ctx.cache)
    routers = (
        info_router, stacks.router, services.router, tasks.router, nodes.router,
        agents.trust, agents.join, agents.router, agent_batches.router, discovery.router, discovery.agent_routes, events.router, images.router,
        secrets.secrets_router, secrets.configs_router, secrets.agent_values, tokens.router, tokens.whoami_router,
        volumes.router, volumes.agent_routes, managers.router, logs.router,
    )
    for router in routers:
        app.include_router(router)
    app.include_router(node_top.router)
    app.include_router(exec_sessions.router)  # a WebSocket route: it checks its token itself (auth.authorize_session)
    ui.install(app)
    metrics.install(app, ctx)
    openapi.install(app)
    return app
