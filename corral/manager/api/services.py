"""/v1/services: list, inspect, scale and remove services; their tasks."""

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from corral.manager import keys
from corral.manager.api.deps import context
from corral.manager.api.views import ServiceView, TaskView
from corral.manager.context import ManagerContext
from corral.manager.writes import dump
from corral.model import Service, ServiceMode, Task
from corral.model.errors import InvalidSpec, NotFound
from corral.store import Op

router = APIRouter(prefix="/v1/services", tags=["services"])


class ScaleRequest(BaseModel):
    replicas: int = Field(ge=0)


def _service(ctx: ManagerContext, name: str) -> Service:
    found = ctx.cache.services.get(name)
    if found is None:
        raise NotFound(f"service {name!r} not found (see `corral service ls`)")
    return found.obj


def _tasks_by_service(ctx: ManagerContext) -> dict[str, list[Task]]:
    return ctx.cache.tasks_by(lambda task: task.service)


@router.get("", response_model=list[ServiceView])
async def list_services(stack: str | None = None, ctx: ManagerContext = Depends(context)) -> list[ServiceView]:
    tasks = _tasks_by_service(ctx)
    return [
        ServiceView.of(v.obj, tasks.get(name, []))
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


@router.delete("/{name}", response_model=ServiceView)
async def remove_service(name: str, ctx: ManagerContext = Depends(context)) -> ServiceView:
    service = _service(ctx, name)
    revision = await ctx.store.delete(keys.service_key(name), expect=ctx.cache.services[name].revision)
    await ctx.cache.wait_for(revision)
    return ServiceView.of(service, [])
