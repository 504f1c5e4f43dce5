"""/v1/services: list, inspect, scale, update, roll back and remove services; their tasks."""

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from corral.manager import keys
from corral.manager.api.deps import context
from corral.manager.api.views import ServiceView, TaskView
from corral.manager import rollout
from corral.manager.context import ManagerContext
from corral.manager.cache import Versioned
from corral.manager.writes import dump, put_with_retry
from corral.model import Service, ServiceMode, ServiceSpec, Task
from corral.model.errors import InvalidSpec, NotFound

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


@router.get("", response_model=list[ServiceView])
async def list_services(stack: str | None = None, ctx: ManagerContext = Depends(context)) -> list[ServiceView]:
    counts = ctx.cache.service_counts  # kept by the cache as tasks change: no scan of the tasks
    return [
        ServiceView.counted(v.obj, *counts.get(name, (0, 0)))
        for name, v in sorted(ctx.cache.services.items())
        if stack is None or v.obj.spec.stack == stack
    ]


@router.get("/{name}", response_model=ServiceView)
async def inspect_service(name: str, ctx: ManagerContext = Depends(context)) -> ServiceView:
    service = _service(ctx, name)
    return ServiceView.of(service, _tasks_by_service(ctx).get(name, []))


@router.get("/{name}/tasks", response_model=list[TaskView])
async def service_tasks(name: str, ctx: ManagerContext = Depends(context)) -> list[TaskView]:
    _service(ctx, name)
    tasks = _tasks_by_service(ctx).get(name, [])
    tasks.sort(key=lambda t: (t.slot if t.slot is not None else 0, t.node or "", -t.created_at))
    return [TaskView.of(t) for t in tasks]


@router.post("/{name}/scale", response_model=ServiceView)
async def scale_service(name: str, body: ScaleRequest, ctx: ManagerContext = Depends(context)) -> ServiceView:
    service = _service(ctx, name)
    if service.spec.mode == ServiceMode.global_:
        raise InvalidSpec("replicas", f"service {name} is global: it runs one task per node and cannot be scaled")
    if service.spec.replicas != body.replicas:
        spec = service.spec.model_copy(update={"replicas": body.replicas})
        updated = service.model_copy(update={"spec": spec, "updated_at": ctx.clock()})
        revision = await ctx.store.put(keys.service_key(name), dump(updated), expect=ctx.cache.services[name].revision)
        await ctx.cache.wait_for(revision)
        service = updated
    return ServiceView.of(service, _tasks_by_service(ctx).get(name, []))


@router.post("/{name}/update", response_model=ServiceView)
async def update_service(name: str, body: UpdateRequest, ctx: ManagerContext = Depends(context)) -> ServiceView:
    """Change the spec; when the tasks must change, a new version rolls out per update_config."""
    _patched_spec(_service(ctx, name), body)  # a bad request fails here, before anything is written
    service = await _change_service(ctx, name, lambda current: rollout.updated(current, _patched_spec(current, body), ctx.clock()))
    return ServiceView.of(service, _tasks_by_service(ctx).get(name, []))


@router.post("/{name}/rollback", response_model=ServiceView)
async def rollback_service(name: str, ctx: ManagerContext = Depends(context)) -> ServiceView:
    """Return to the previous spec, rolled out per rollback_config."""
    service = await _change_service(ctx, name, lambda current: rollout.rolled_back(current, ctx.clock()))
    return ServiceView.of(service, _tasks_by_service(ctx).get(name, []))


@router.post("/{name}/promote", response_model=ServiceView)
async def promote_service(name: str, ctx: ManagerContext = Depends(context)) -> ServiceView:
    """Lift a canary: the rollout goes on to every replica."""
    service = await _change_service(ctx, name, lambda current: rollout.promoted(current, ctx.clock()))
    return ServiceView.of(service, _tasks_by_service(ctx).get(name, []))


def _patched_spec(service: Service, body: UpdateRequest) -> ServiceSpec:
    spec = service.spec
    if body.replicas is not None and spec.mode == ServiceMode.global_:
        raise InvalidSpec("replicas", f"service {service.name} is global: it runs one task per node and cannot be scaled")
    for key in [*body.env, *body.env_remove]:
        if not key or "=" in key:
            raise InvalidSpec("env", f"invalid variable name {key!r}: must be non-empty, without '='")
    changes: dict[str, Any] = {}
    if body.image is not None:
        changes["image"] = body.image
    if body.env or body.env_remove:
        environment = {k: v for k, v in spec.environment.items() if k not in body.env_remove}
        changes["environment"] = {**environment, **body.env}
    if body.command is not None:
        changes["command"] = body.command
    if body.replicas is not None:
        changes["replicas"] = body.replicas
    if body.canary is not None:
        changes["canary"] = body.canary or None
    for field in ("update_config", "rollback_config"):
        patch = getattr(body, field)
        if patch is not None:
            changes[field] = {**getattr(spec, field).model_dump(), **patch}
    try:
        return ServiceSpec.model_validate({**spec.model_dump(), **changes})
    except ValidationError as error:
        problem = error.errors()[0]
        raise InvalidSpec(".".join(str(part) for part in problem["loc"]), problem["msg"]) from None


async def _change_service(ctx: ManagerContext, name: str, change: Callable[[Service], Service]) -> Service:
    """Write `change(service)` with compare-and-swap, again on a lost race (the controller writes rollout status)."""

    def changed(found: Versioned[Service] | None) -> Service:
        if found is None:
            raise NotFound(f"service {name!r} not found (see `corral service ls`)")
        return change(found.obj)

    return await put_with_retry(
        ctx.store, ctx.cache, keys.service_key(name), lambda: ctx.cache.services.get(name), changed, f"service {name}"
    )


@router.delete("/{name}", response_model=ServiceView)
async def remove_service(name: str, ctx: ManagerContext = Depends(context)) -> ServiceView:
    service = _service(ctx, name)
    revision = await ctx.store.delete(keys.service_key(name), expect=ctx.cache.services[name].revision)
    await ctx.cache.wait_for(revision)
    return ServiceView.of(service, [])
