"""The FastAPI application: routers, error handling, and /v1/info."""

from fastapi import APIRouter, Depends, FastAPI
from pydantic import BaseModel

import corral
from corral.manager.api import (
    agent_batches, agents, discovery, errors, events, images, logs, metrics, nodes, openapi, secrets, services, stacks, tasks,
)
from corral.manager.api.body_limit import LimitRequestBody
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
    )


def create_app(ctx: ManagerContext) -> FastAPI:
    app = FastAPI(title="corral", version=corral.__version__, description="The corral container orchestrator API")
    app.state.context = ctx
    errors.install(app)
    app.add_middleware(CountUserRequests, users=ctx.users_first)
    app.add_middleware(LimitRequestBody, max_bytes=ctx.settings.limits.request_bytes)
    routers = (
        info_router, stacks.router, services.router, tasks.router, nodes.router,
        agents.trust, agents.join, agents.router, agent_batches.router, discovery.router, discovery.agent_routes, events.router, images.router,
        secrets.secrets_router, secrets.configs_router, secrets.agent_values,
        logs.router,
    )
    for router in routers:
        app.include_router(router)
    metrics.install(app, ctx)
    openapi.install(app)
    return app
