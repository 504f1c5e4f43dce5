"""/v1/services: list, inspect, scale, update, roll back and remove services; their tasks."""

import asyncio
from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, ConfigDict, Field

from corral.manager import rollout, service_changes
from corral.manager.jobs import runs as job_runs
from corral.manager.api.deps import context
from corral.manager.api.pages import PAGED, Listings, PageRequest, listing_name, listings, page_request
from corral.manager.api.views import ServiceView, TaskView, by_slot, task_list_json
from corral.manager.context import ManagerContext
from corral.manager.service_changes import SpecPatch
from corral.manager.service_status import completed_slots, unbound_ports
from corral.model import Service, Task
from corral.model.errors import NotFound

router = APIRouter(prefix="/v1/services", tags=["services"])


class ScaleRequest(BaseModel):
    replicas: int = Field(ge=0)


class UpdateRequest(BaseModel):
    """A partial change of a service's spec; what is left out stays as it is."""

    model_config = ConfigDict(extra="forbid")

    image: str | None = Field(default=None, min_length=1)
    env: dict[str, str] = Field(default_factory=dict, description="environment variables to set (merged into the spec's)")
    env_remove: list[str] = Field(default_factory=list, description="environment variables to remove")
    command: list[str] | None = None
    replicas: int | None = Field(default=None, ge=0)
    canary: int | None = Field(default=None, ge=0, description="update only this many replicas, then hold; 0 removes the canary")
    update_config: dict[str, Any] | None = Field(default=None, description="UpdateConfig fields to change")
    rollback_config: dict[str, Any] | None = Field(default=None, description="UpdateConfig fields to change")


def _service(ctx: ManagerContext, name: str) -> Service:
    found = ctx.cache.services.get(name)
    if found is None:
        raise NotFound(f"service {name!r} not found (see `corral service ls`)")
    return found.obj


def _tasks_by_service(ctx: ManagerContext) -> dict[str, list[Task]]:
    return {name: ctx.cache.tasks_of(name) for name in ctx.cache.services}  # from the cache's index: no scan


@router.get("", response_model=list[ServiceView], responses=PAGED)
async def list_services(
    response: Response, stack: str | None = None, ctx: ManagerContext = Depends(context),
    paging: PageRequest = Depends(page_request), held: Listings = Depends(listings),
) -> list[ServiceView]:
    """Every service by name; with `limit`, a page of them (api/pages.py)."""
    cache = ctx.cache

    def chosen() -> list[Service]:
        return [v.obj for _, v in sorted(cache.services.items()) if stack is None or v.obj.spec.stack == stack]

    if paging.limit is None:
        services: Sequence[Service] = chosen()
    else:
        page = held.page(listing_name("/v1/services", stack=stack), cache.revision, chosen, paging, ctx.clock())
        page.apply(response)
        services = page.items
    counts = cache.service_counts  # kept by the cache as tasks change: no scan of the tasks
    return [_with_status(ctx, ServiceView.counted(service, *counts.get(service.name, (0, 0))), service) for service in services]


def _with_status(ctx: ManagerContext, view: ServiceView, service: Service) -> ServiceView:
    """The row's completed replicas and unbound published ports (service_status.py); the tasks are read only
    for a service whose restart policy leaves completed tasks resting."""
    completed = completed_slots(service, ctx.cache.tasks_of(service.name)) if service.spec.restart_policy.condition != "any" else 0
    unbound = unbound_ports(service, ctx.mesh_errors)
    return view.model_copy(update={"completed": completed, "unbound_ports": unbound}) if completed or unbound else view


@router.get("/{name}", response_model=ServiceView)
async def inspect_service(name: str, ctx: ManagerContext = Depends(context)) -> ServiceView:
    service = _service(ctx, name)
    return _with_status(ctx, ServiceView.of(service, _tasks_by_service(ctx).get(name, [])), service)


@router.get("/{name}/tasks", response_model=list[TaskView], responses=PAGED)
async def service_tasks(
    name: str, response: Response, ctx: ManagerContext = Depends(context),
    paging: PageRequest = Depends(page_request), held: Listings = Depends(listings),
) -> list[TaskView] | Response:
    """The service's tasks by slot; with `limit`, a page of them, in the manager's own order (api/pages.py; unsorted,
    as `GET /v1/tasks`: `corral service ps` sorts what it read)."""
    if paging.limit is None or paging.token is None:
        _service(ctx, name)  # a later page lists the service as it was at the first page's revision
    if paging.limit is None:  # made into JSON in a worker thread (views.task_list_json)
        return Response(await asyncio.to_thread(task_list_json, ctx.cache.tasks_of(name), by_slot), media_type="application/json")
    page = held.page(f"/v1/services/{name}/tasks", ctx.cache.revision, lambda: ctx.cache.tasks_of(name), paging, ctx.clock())
    page.apply(response)
    return [TaskView.of(t) for t in page.items]


@router.post("/{name}/scale", response_model=ServiceView)
async def scale_service(name: str, body: ScaleRequest, ctx: ManagerContext = Depends(context)) -> ServiceView:
    service = await service_changes.change(
        ctx, name, lambda current: service_changes.scaled(current, body.replicas, ctx.clock(), ctx.settings.limits)
    )
    return ServiceView.of(service, _tasks_by_service(ctx).get(name, []))


@router.post("/{name}/update", response_model=ServiceView)
async def update_service(name: str, body: UpdateRequest, ctx: ManagerContext = Depends(context)) -> ServiceView:
    """Change the spec; when the tasks must change, a new version rolls out per update_config."""
    patch = SpecPatch(
        image=body.image, env=body.env, env_remove=body.env_remove, command=body.command, replicas=body.replicas,
        canary=body.canary, update_config=body.update_config, rollback_config=body.rollback_config,
    )
    limits = ctx.settings.limits
    service = await service_changes.change(ctx, name, lambda current: service_changes.updated(current, patch, ctx.clock(), limits))
    return ServiceView.of(service, _tasks_by_service(ctx).get(name, []))


@router.post("/{name}/rollback", response_model=ServiceView)
async def rollback_service(name: str, ctx: ManagerContext = Depends(context)) -> ServiceView:
    """Return to the previous spec, rolled out per rollback_config."""
    service = await service_changes.change(ctx, name, lambda current: rollout.rolled_back(current, ctx.clock()))
    return ServiceView.of(service, _tasks_by_service(ctx).get(name, []))


@router.post("/{name}/promote", response_model=ServiceView)
async def promote_service(name: str, ctx: ManagerContext = Depends(context)) -> ServiceView:
    """Lift a canary: the rollout goes on to every replica."""
    service = await service_changes.change(ctx, name, lambda current: rollout.promoted(current, ctx.clock()))
    return ServiceView.of(service, _tasks_by_service(ctx).get(name, []))


@router.post("/{name}/run", response_model=ServiceView)
async def run_job(name: str, ctx: ManagerContext = Depends(context)) -> ServiceView:
    """Run a job again: a new run with every completion to do (409 while a run is under way)."""
    service = await service_changes.change(ctx, name, lambda current: job_runs.rerun(current, ctx.clock()))
    return ServiceView.of(service, _tasks_by_service(ctx).get(name, []))


@router.delete("/{name}", response_model=ServiceView)
async def remove_service(name: str, ctx: ManagerContext = Depends(context)) -> ServiceView:
    service = await service_changes.remove(ctx, name)
    return ServiceView.of(service, [])
