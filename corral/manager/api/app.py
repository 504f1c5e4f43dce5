"""The FastAPI application: routers, error handling, and /v1/info."""

from fastapi import APIRouter, Depends, FastAPI, Request
from pydantic import BaseModel

import corral
from corral.manager.api import agent_batches, agents, discovery, errors, events, images, nodes, services, stacks, tasks
from corral.manager.api.deps import context
from corral.manager.priority import CountUserRequests
from corral.manager.context import ManagerContext
from corral.model.errors import Unauthorized

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


@info_router.get("/join-token")
async def join_token(request: Request, ctx: ManagerContext = Depends(context)) -> dict[str, str]:
    """The join token, for callers on the manager's own machine only."""
    host = request.client.host if request.client else ""
    if not host.startswith("127.") and host != "::1":
        raise Unauthorized("the join token is only given to callers on the manager's machine")
    return {"token": ctx.join_token}


def create_app(ctx: ManagerContext) -> FastAPI:
    app = FastAPI(title="corral", version=corral.__version__, description="The corral container orchestrator API")
    app.state.context = ctx
    errors.install(app)
    app.add_middleware(CountUserRequests, users=ctx.users_first)
    for router in (info_router, stacks.router, services.router, tasks.router, nodes.router, agents.router, agent_batches.router, discovery.router, events.router, images.router):
        app.include_router(router)
    return app
