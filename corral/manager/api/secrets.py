"""/v1/secrets and /v1/configs: create, list, inspect, remove; and the agents' route to a value they need.

The two resources share one shape and one router factory. No route gives a
secret's value to a user: listings and inspect show metadata only (name,
size, creation time, digest of the stored bytes). A config is not secret:
its inspect shows the value too. The one way to a secret's value is
`GET /v1/agent/{node}/secrets/{name}`, behind the node's credential, and
only while a task assigned to that node refers to it.
"""

import base64
import binascii

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from corral.manager.access import secrets
from corral.manager.access.roles import Forbidden
from corral.manager.access.secrets import NAME_PATTERN, Kind, ValueMetadata
from corral.manager.api.deps import agent_router, context
from corral.manager.api.openapi import error_responses
from corral.manager.context import ManagerContext
from corral.model.errors import InvalidSpec

agent_values = agent_router()


class CreateValue(BaseModel):
    name: str = Field(pattern=NAME_PATTERN, description="letters, digits, '_', '.' and '-'")
    data: str = Field(description="the value, base64")


class ConfigView(ValueMetadata):
    data: str = Field(description="the config's value, base64 (configs are not secret)")


class AgentValue(BaseModel):
    kind: Kind
    name: str
    data: str = Field(description="the value, base64")


def _decode(data: str) -> bytes:
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidSpec("data", "must be the value in base64") from None


def _key(ctx: ManagerContext, kind: Kind) -> bytes | None:
    return ctx.secrets_key() if kind == "secret" else None


def _router(kind: Kind) -> APIRouter:
    router = APIRouter(prefix=f"/v1/{kind}s", tags=[f"{kind}s"])

    @router.post("", name=f"create_{kind}", response_model=ValueMetadata, status_code=201, responses=error_responses(409))
    async def create(body: CreateValue, ctx: ManagerContext = Depends(context)) -> ValueMetadata:
        return await secrets.create(ctx.store, kind, body.name, _decode(body.data), ctx.clock(), _key(ctx, kind))

    @router.get("", name=f"list_{kind}s", response_model=list[ValueMetadata])
    async def list_values(ctx: ManagerContext = Depends(context)) -> list[ValueMetadata]:
        return await secrets.list_metadata(ctx.store, kind)

    @router.delete("/{name}", name=f"remove_{kind}", response_model=ValueMetadata, responses=error_responses(409))
    async def remove(name: str, ctx: ManagerContext = Depends(context)) -> ValueMetadata:
        """409 while a service refers to it."""
        return await secrets.remove(ctx.store, kind, name, (v.obj.spec for v in ctx.cache.services.values()))

    return router


secrets_router = _router("secret")
configs_router = _router("config")


@secrets_router.get("/{name}", response_model=ValueMetadata)
async def inspect_secret(name: str, ctx: ManagerContext = Depends(context)) -> ValueMetadata:
    """Metadata only: a secret's value is never shown."""
    return await secrets.inspect(ctx.store, "secret", name)


@configs_router.get("/{name}", response_model=ConfigView)
async def inspect_config(name: str, ctx: ManagerContext = Depends(context)) -> ConfigView:
    stored = await secrets.record(ctx.store, "config", name)  # a config's `data` is its value, in base64
    return ConfigView(**stored.metadata().model_dump(), data=stored.data)


async def _for_node(ctx: ManagerContext, node: str, kind: Kind, name: str) -> AgentValue:
    """A value, for an agent whose node runs a task that refers to it; Forbidden otherwise."""
    wanted = any(
        reference.source == name
        for task in ctx.cache.tasks_on(node)
        if not task.terminal
        for reference in (task.spec.secrets if kind == "secret" else task.spec.configs)
    )
    if not wanted:
        raise Forbidden(f"no task assigned to node {node!r} uses {kind} {name!r}")
    value = await secrets.read(ctx.store, kind, name, _key(ctx, kind))
    return AgentValue(kind=kind, name=name, data=base64.b64encode(value).decode())


@agent_values.get("/{node}/secrets/{name}", response_model=AgentValue, responses=error_responses(403))
async def secret_for_node(node: str, name: str, ctx: ManagerContext = Depends(context)) -> AgentValue:
    """A secret's value, only for a node that runs a task using it."""
    return await _for_node(ctx, node, "secret", name)


@agent_values.get("/{node}/configs/{name}", response_model=AgentValue, responses=error_responses(403))
async def config_for_node(node: str, name: str, ctx: ManagerContext = Depends(context)) -> AgentValue:
    """A config's value, for a node that runs a task using it."""
    return await _for_node(ctx, node, "config", name)
