"""/v1/nodes: list and inspect nodes, drain/activate them, set labels, remove them."""

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from corral.manager import keys
from corral.manager.api.deps import context
from corral.manager.api.views import NodeView
from corral.manager.health import node_health
from corral.manager.context import ManagerContext
from corral.manager.writes import dump
from corral.model import Resources, Node, NodeAvailability, NodeState, Task
from corral.model.errors import InvalidSpec, NotFound
from corral.store import Op

router = APIRouter(prefix="/v1/nodes", tags=["nodes"])


class NodeUpdate(BaseModel):
    availability: NodeAvailability | None = None
    labels: dict[str, str] | None = None  # replaces the user labels when given


def _node(ctx: ManagerContext, name: str) -> Node:
    found = ctx.cache.nodes.get(name)
    if found is None:
        raise NotFound(f"node {name!r} not found (see `corral node ls`)")
    return found.obj


def _tasks_by_node(ctx: ManagerContext) -> dict[str, list[Task]]:
    return {name: ctx.cache.tasks_on(name) for name in ctx.cache.nodes}  # from the cache's index: no scan


def _view(ctx: ManagerContext, node: Node, tasks: list[Task] | None) -> NodeView:
    """`tasks` None: from the cache's running totals of the node's live tasks (no scan)."""
    last = ctx.leases.last.get(node.name)
    settings = ctx.settings
    heartbeat = max(last or 0.0, node.last_heartbeat)
    health = node_health(node, heartbeat, ctx.clock(), settings.node_lease)
    if tasks is not None:
        return NodeView.of(node, tasks, last, health)
    count, cpus, memory = ctx.cache.node_usage.get(node.name, (0, 0.0, 0))
    reserved = Resources(cpus=max(0.0, round(cpus, 9)), memory=max(0, int(memory)))
    return NodeView.counted(node, int(count), reserved, last, health)


@router.get("", response_model=list[NodeView])
async def list_nodes(ctx: ManagerContext = Depends(context)) -> list[NodeView]:
    return [_view(ctx, v.obj, None) for _, v in sorted(ctx.cache.nodes.items())]


@router.get("/{name}", response_model=NodeView)
async def inspect_node(name: str, ctx: ManagerContext = Depends(context)) -> NodeView:
    return _view(ctx, _node(ctx, name), _tasks_by_node(ctx).get(name, []))


@router.patch("/{name}", response_model=NodeView)
async def update_node(name: str, body: NodeUpdate, ctx: ManagerContext = Depends(context)) -> NodeView:
    node = _node(ctx, name)
    changes: dict = {}
    if body.availability is not None:
        changes["availability"] = body.availability
    if body.labels is not None:
        changes["labels"] = body.labels
    if changes:
        node = node.model_copy(update=changes)
        revision = await ctx.store.put(keys.node_key(name), dump(node), expect=ctx.cache.nodes[name].revision)
        await ctx.cache.wait_for(revision)
    return _view(ctx, node, _tasks_by_node(ctx).get(name, []))


@router.delete("/{name}", response_model=NodeView)
async def remove_node(name: str, force: bool = False, ctx: ManagerContext = Depends(context)) -> NodeView:
    node = _node(ctx, name)
    if node.state == NodeState.ready and not force:
        raise InvalidSpec("name", f"node {name} is up: drain it and stop its agent first, or pass force=true")
    revision = await ctx.store.txn([Op.delete(keys.node_key(name), expect=ctx.cache.nodes[name].revision)])
    ctx.leases.forget(name)
    await ctx.cache.wait_for(revision)
    return _view(ctx, node, [])
