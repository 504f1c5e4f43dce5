"""/v1/stacks: deploy a compose file as a stack, list stacks, remove one."""

import asyncio
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from corral.compose import parse_compose
from corral.manager import stacks
from corral.manager.access.stack_values import plan_values, removal_ops, stack_values
from corral.manager.api.deps import context
from corral.manager.context import ManagerContext
from corral.manager.volumes import records as volume_records
from corral.model import ServiceSpec
from corral.model.spec_diff import spec_changes
from corral.store import Op

router = APIRouter(prefix="/v1/stacks", tags=["stacks"])

# Compose files are read here, off the event loop: heartbeats and other requests are answered meanwhile.
# Each read is bounded (Limits, parse_budget); two at a time, the others queue.
_PARSERS = ThreadPoolExecutor(max_workers=2, thread_name_prefix="compose-parse")


class DeployRequest(BaseModel):
    compose: str = Field(description="the compose file's text (YAML)")
    dry_run: bool = False
    prune: bool = Field(default=False, description="remove the stack's services the file no longer has")
    # Read by the CLI from the compose file's `file:` and `environment:` sources (the manager never reads the
    # user's files); stored encrypted (secrets) with the deploy, see docs/security.md.
    secrets: dict[str, str] = Field(default_factory=dict, description="secret values by stored name, base64")
    configs: dict[str, str] = Field(default_factory=dict, description="config values by stored name, base64")


class FieldChangeView(BaseModel):
    field: str = Field(description="dotted path in the service spec, e.g. limits.memory")
    old: Any = Field(description="the stored value; null when absent (a created service)")
    new: Any = Field(description="the value the deploy sets; null when removed")


class DeployResult(BaseModel):
    stack: str
    created: list[str]
    updated: list[str]
    unchanged: list[str]
    removed: list[str]
    warnings: list[str]
    dry_run: bool
    revision: int
    created_secrets: list[str] = Field(default_factory=list, description="secrets the deploy stored (names only)")
    created_configs: list[str] = Field(default_factory=list, description="configs the deploy stored")
    changes: dict[str, list[FieldChangeView]] = Field(
        default_factory=dict, description="per created or updated service, each field that changes (old -> new)"
    )


class StackView(BaseModel):
    name: str
    services: int
    tasks: int


@router.post("/{stack}/deploy", response_model=DeployResult)
async def deploy(stack: str, body: DeployRequest, ctx: ManagerContext = Depends(context)) -> DeployResult:
    settings = ctx.settings
    parsed = await asyncio.get_running_loop().run_in_executor(
        _PARSERS, parse_compose, body.compose, stack, settings.limits, settings.parse_budget, time.monotonic, settings.allow_bind,
        settings.allow_privileged,
    )
    values = await plan_values(
        ctx.store, stack, parsed.definitions(), body.secrets, body.configs, ctx.clock(), ctx.secrets_key() if parsed.secrets else None
    )
    before = {name: v.obj.spec for name, v in ctx.cache.services.items()}
    plan, revision = await stacks.deploy(ctx, stack, parsed.services, body.prune, body.dry_run, values.ops)
    changes = {
        s.name: [FieldChangeView(field=c.field, old=c.old, new=c.new) for c in spec_changes(before.get(s.name), s.spec)]
        for s in [*plan.create, *plan.update]
    }
    return DeployResult(
        stack=stack,
        created=[s.name for s in plan.create],
        updated=[s.name for s in plan.update],
        unchanged=plan.unchanged,
        removed=plan.remove,
        warnings=parsed.warnings,
        dry_run=body.dry_run,
        revision=revision,
        created_secrets=values.secrets,
        created_configs=values.configs,
        changes=changes,
    )


@router.get("", response_model=list[StackView])
async def list_stacks(ctx: ManagerContext = Depends(context)) -> list[StackView]:
    services = Counter(v.obj.spec.stack for v in ctx.cache.services.values() if v.obj.spec.stack)
    tasks = Counter(v.obj.stack for v in ctx.cache.tasks.values() if v.obj.stack and not v.obj.terminal)
    return [StackView(name=name, services=count, tasks=tasks.get(name, 0)) for name, count in sorted(services.items())]


@router.delete("/{stack}", response_model=DeployResult)
async def remove_stack(
    stack: str,
    volumes: bool = Query(default=False, description="remove its named volumes too (kept by default)"),
    ctx: ManagerContext = Depends(context),
) -> DeployResult:
    owned = await stack_values(ctx.store, stack)  # its secrets and configs go too, unless another stack uses them

    def also(remaining: list[ServiceSpec]) -> list[Op]:
        held = volume_records.removal_ops(volume_records.matching(ctx.cache, stack=stack), ctx.cache.nodes) if volumes else []
        return [*removal_ops(owned, remaining), *held]

    names, revision = await stacks.remove(ctx, stack, also)
    return DeployResult(stack=stack, created=[], updated=[], unchanged=[], removed=names, warnings=[], dry_run=False, revision=revision)
