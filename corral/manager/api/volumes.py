"""/v1/volumes: the named volumes the nodes hold (list, inspect, remove); and the agents' side of removal.

A volume is removed by its node's agent: `DELETE /v1/volumes/{name}` marks
it (409 while a live task uses it), the agent polls
`GET /v1/agent/{node}/volumes` for what is marked, removes it from its
engine and reports `POST /v1/agent/{node}/volumes/removed`; the record goes.
"""

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, Field

from corral.manager.api.deps import agent_router, context
from corral.manager.api.pages import PAGED, Listings, PageRequest, listing_name, listings, page_request
from corral.manager.api.openapi import error_responses
from corral.manager.context import ManagerContext
from corral.manager.volumes import records
from corral.model.errors import NotFound
from corral.model.volume import Volume

router = APIRouter(prefix="/v1/volumes", tags=["volumes"])
agent_routes = agent_router()


class VolumeView(Volume):
    in_use_by: list[str] = Field(default_factory=list, description="ids of the live tasks on its node that mount it")


class Removed(BaseModel):
    names: list[str] = Field(description="volumes the agent removed from its engine")


def _view(ctx: ManagerContext, volume: Volume) -> VolumeView:
    using = records.users(volume, ctx.cache.tasks_on(volume.node))
    return VolumeView(**volume.model_dump(), in_use_by=[task.id for task in using])


@router.get("", response_model=list[VolumeView], responses=PAGED)
async def list_volumes(
    response: Response, stack: str | None = None, node: str | None = None, ctx: ManagerContext = Depends(context),
    paging: PageRequest = Depends(page_request), held: Listings = Depends(listings),
) -> list[VolumeView]:
    """The volumes; with `limit`, a page of them (api/pages.py)."""

    def chosen() -> list[Volume]:
        return [v.obj for v in records.matching(ctx.cache, node=node, stack=stack)]

    if paging.limit is None:
        return [_view(ctx, volume) for volume in chosen()]
    page = held.page(listing_name("/v1/volumes", stack=stack, node=node), ctx.cache.revision, chosen, paging, ctx.clock())
    page.apply(response)
    return [_view(ctx, volume) for volume in page.items]


@router.get("/{name}", response_model=list[VolumeView])
async def inspect_volume(name: str, node: str | None = None, ctx: ManagerContext = Depends(context)) -> list[VolumeView]:
    """Every node's volume by that name (a disposable volume may be on several)."""
    found = records.matching(ctx.cache, name=name, node=node)
    if not found:
        raise NotFound(f"volume {name!r} not found (see `corral volume ls`)")
    return [_view(ctx, v.obj) for v in found]


@router.delete("/{name}", response_model=list[VolumeView], responses=error_responses(409))
async def remove_volume(
    name: str, node: str | None = Query(default=None, description="only the one on this node"), ctx: ManagerContext = Depends(context)
) -> list[VolumeView]:
    """Marks the volume for removal by its node's agent; 409 while a live task uses it."""
    return [_view(ctx, volume) for volume in await records.ask_removal(ctx, name, node)]


@agent_routes.get("/{node}/volumes", response_model=list[Volume])
async def volumes_to_remove(node: str, ctx: ManagerContext = Depends(context)) -> list[Volume]:
    """The node's volumes marked for removal."""
    return [v.obj for v in records.matching(ctx.cache, node=node) if v.obj.removing]


@agent_routes.post("/{node}/volumes/removed", response_model=Removed)
async def volumes_removed(node: str, body: Removed, ctx: ManagerContext = Depends(context)) -> Removed:
    """The agent removed these from its engine: their records go."""
    return Removed(names=await records.forget_removed(ctx, node, body.names))
