"""/v1/stacks: deploy a compose file as a stack, list stacks, remove one."""

from collections import Counter

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from corral.compose import parse_compose
from corral.manager import keys
from corral.manager.api.deps import context
from corral.manager.context import ManagerContext
from corral.manager.stacks import plan_deploy
from corral.manager.writes import dump
from corral.model.errors import Conflict, InvalidSpec, NotFound
from corral.store import Op

router = APIRouter(prefix="/v1/stacks", tags=["stacks"])

_DEPLOY_ATTEMPTS = 5


class DeployRequest(BaseModel):
    compose: str = Field(description="the compose file's text (YAML)")
    dry_run: bool = False
    prune: bool = Field(default=False, description="remove the stack's services the file no longer has")


class DeployResult(BaseModel):
    stack: str
    created: list[str]
    updated: list[str]
    unchanged: list[str]
    removed: list[str]
    warnings: list[str]
    dry_run: bool
    revision: int


class StackView(BaseModel):
    name: str
    services: int
    tasks: int


@router.post("/{stack}/deploy", response_model=DeployResult)
async def deploy(stack: str, body: DeployRequest, ctx: ManagerContext = Depends(context)) -> DeployResult:
    parsed = parse_compose(body.compose, stack)
    cache = ctx.cache
    for attempt in range(_DEPLOY_ATTEMPTS):  # the controller writes rollout status: a lost race is retried
        existing = {name: v.obj for name, v in cache.services.items()}
        plan = plan_deploy(existing, stack, parsed.services, ctx.clock(), body.prune, ctx.settings.service_network)
        stopping = {v.obj.service for v in cache.tasks.values() if not v.obj.terminal} if plan.create else set()
        for service in plan.create:
            if service.name in stopping:
                raise InvalidSpec(f"services.{service.name}", "tasks of a removed service by this name are still stopping; retry shortly")
        revision = cache.revision
        if body.dry_run:
            break
        ops = [Op.put(keys.service_key(s.name), dump(s), expect=0) for s in plan.create]
        ops += [Op.put(keys.service_key(s.name), dump(s), expect=cache.services[s.name].revision) for s in plan.update]
        ops += [Op.delete(keys.service_key(name), expect=cache.services[name].revision) for name in plan.remove]
        if not ops:
            break
        try:
            revision = await ctx.store.txn(ops)
        except Conflict:
            if attempt == _DEPLOY_ATTEMPTS - 1:
                raise
            seen = cache.revision
            await cache.wait_change(lambda: cache.revision > seen, 1.0)
            continue
        await cache.wait_for(revision)
        break
    return DeployResult(
        stack=stack,
        created=[s.name for s in plan.create],
        updated=[s.name for s in plan.update],
        unchanged=plan.unchanged,
        removed=plan.remove,
        warnings=parsed.warnings,
        dry_run=body.dry_run,
        revision=revision,
    )


@router.get("", response_model=list[StackView])
async def list_stacks(ctx: ManagerContext = Depends(context)) -> list[StackView]:
    services = Counter(v.obj.spec.stack for v in ctx.cache.services.values() if v.obj.spec.stack)
    tasks = Counter(v.obj.stack for v in ctx.cache.tasks.values() if v.obj.stack and not v.obj.terminal)
    return [StackView(name=name, services=count, tasks=tasks.get(name, 0)) for name, count in sorted(services.items())]


@router.delete("/{stack}", response_model=DeployResult)
async def remove_stack(stack: str, ctx: ManagerContext = Depends(context)) -> DeployResult:
    cache = ctx.cache
    names = sorted(name for name, v in cache.services.items() if v.obj.spec.stack == stack)
    if not names:
        raise NotFound(f"stack {stack!r} not found (see `corral stack ls`)")
    revision = await ctx.store.txn([Op.delete(keys.service_key(n), expect=cache.services[n].revision) for n in names])
    await cache.wait_for(revision)
    return DeployResult(stack=stack, created=[], updated=[], unchanged=[], removed=names, warnings=[], dry_run=False, revision=revision)
