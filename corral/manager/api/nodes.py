"""/v1/nodes: list and inspect nodes, drain/activate them, set labels, remove them."""

from collections.abc import Sequence
from dataclasses import dataclass

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel

from corral.manager import node_changes
from corral.manager.api.deps import context
from corral.manager.api.pages import PAGED, Listings, PageRequest, listings, page_request
from corral.manager.api.views import NodeView
from corral.manager.health import node_health
from corral.manager.context import ManagerContext
from corral.model import Node, NodeAvailability, Task
from corral.model.errors import NotFound
from corral.model.node import NodeLabels

router = APIRouter(prefix="/v1/nodes", tags=["nodes"])


class NodeUpdate(BaseModel):
    availability: NodeAvailability | None = None
    labels: NodeLabels | None = None  # replaces the user labels when given


def _node(ctx: ManagerContext, name: str) -> Node:
    found = ctx.cache.nodes.get(name)
    if found is None:
        raise NotFound(f"node {name!r} not found (see `corral node ls`)")
    return found.obj


def _view(ctx: ManagerContext, node: Node, tasks: list[Task]) -> NodeView:
    """`tasks`: the node's, e.g. from the cache's index (`tasks_on`: no scan)."""
    last = ctx.leases.last.get(node.name)
    health = node_health(node, max(last or 0.0, node.last_heartbeat), ctx.clock(), ctx.settings.node_lease)
    return NodeView.of(node, tasks, last, health)


@dataclass(slots=True)
class EncodedNode:
    """A node's view as JSON (`json`), kept with what it was filled in from; made again when any of it changes."""

    node: Node
    template: bytes  # NodeView.json_template(node)
    seen: float | None = None  # the lease's last heartbeat it was filled with
    usage: list[float] | None = None  # a copy of the cache's node_usage it was filled with
    heartbeat: float = 0.0  # the later of `seen` and the node's record's
    late: bool = False  # its lease had run out (health "late", unless the node is down)
    json: bytes = b""


# Node name -> its kept encoding, per app; the template is remade when the cache holds a new Node.
NodeTemplates = dict[str, EncodedNode]


async def _templates(request: Request) -> NodeTemplates:
    state = request.app.state
    if not hasattr(state, "node_templates"):
        state.node_templates = {}
    templates: NodeTemplates = state.node_templates  # Starlette's State is untyped: this is what it holds
    return templates


def listing_json(ctx: ManagerContext, templates: NodeTemplates, chosen: Sequence[Node] | None = None) -> bytes:
    """The nodes' views (`chosen`, default every node by name) as one JSON array: each Node encoded once, the rest
    from the cache's totals; a node whose totals, heartbeat and health did not change since the last listing is
    not filled in again (during a deploy most nodes' are the same from one listing to the next)."""
    now, lease = ctx.clock(), ctx.settings.node_lease
    nodes, last_seen, usage = ctx.cache.nodes, ctx.leases.last, ctx.cache.node_usage
    if len(templates) > len(nodes):  # forget removed nodes
        for name in templates.keys() - nodes.keys():
            del templates[name]
    views = []
    for node in chosen if chosen is not None else [nodes[name].obj for name in sorted(nodes)]:
        name = node.name
        kept = templates.get(name)
        if kept is None or kept.node is not node:
            kept = templates[name] = EncodedNode(node, NodeView.json_template(node))
        seen, used = last_seen.get(name), usage.get(name)
        # As node_health decides, with the same heartbeat when `seen` is the same: only the clock moved.
        if kept.json and seen == kept.seen and used == kept.usage and (now - kept.heartbeat > lease) == kept.late:
            views.append(kept.json)
            continue
        heartbeat = max(seen or 0.0, node.last_heartbeat)
        health = node_health(node, heartbeat, now, lease)
        count, cpus, memory = used or (0, 0.0, 0)
        kept.json = NodeView.fill_json(kept.template, int(count), max(0.0, round(cpus, 9)), max(0, int(memory)), heartbeat, health)
        kept.seen, kept.usage, kept.heartbeat, kept.late = seen, None if used is None else list(used), heartbeat, now - heartbeat > lease
        views.append(kept.json)
    return b"[" + b",".join(views) + b"]"


# Returns the JSON itself, so FastAPI neither validates nor encodes a NodeView per node (most
# of the cost at 5,000 nodes); `response_model` still documents the answer in the OpenAPI schema.
@router.get("", response_model=list[NodeView], responses=PAGED)
async def list_nodes(
    ctx: ManagerContext = Depends(context), templates: NodeTemplates = Depends(_templates),
    paging: PageRequest = Depends(page_request), held: Listings = Depends(listings),
) -> Response:
    """Every node by name; with `limit`, a page of them (api/pages.py)."""
    if paging.limit is None:
        return Response(listing_json(ctx, templates), media_type="application/json")
    nodes = ctx.cache.nodes
    page = held.page("/v1/nodes", ctx.cache.revision, lambda: [nodes[name].obj for name in sorted(nodes)], paging, ctx.clock())
    return Response(listing_json(ctx, templates, page.items), media_type="application/json", headers=page.headers())


@router.get("/{name}", response_model=NodeView)
async def inspect_node(name: str, ctx: ManagerContext = Depends(context)) -> NodeView:
    return _view(ctx, _node(ctx, name), ctx.cache.tasks_on(name))


@router.patch("/{name}", response_model=NodeView)
async def update_node(name: str, body: NodeUpdate, ctx: ManagerContext = Depends(context)) -> NodeView:
    node = await node_changes.change(ctx, name, body.availability, body.labels)
    return _view(ctx, node, ctx.cache.tasks_on(name))


@router.delete("/{name}", response_model=NodeView)
async def remove_node(name: str, force: bool = False, ctx: ManagerContext = Depends(context)) -> NodeView:
    node = await node_changes.remove(ctx, name, force)
    return _view(ctx, node, [])
