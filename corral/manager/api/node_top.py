"""`GET /v1/top/nodes`: each node's capacity, what its tasks reserve and what its containers use now
(`corral node top`, the UI's cluster page); `?node=NAME` (repeated) for some. A read: viewer (roles.py's read rule).

Not `/v1/nodes/top`: that is the path of a node named "top" (`GET /v1/nodes/{name}`).
"""

from typing import Any

from fastapi import APIRouter, Depends, Query

from corral.manager import node_top
from corral.manager.api.deps import context
from corral.manager.context import ManagerContext
from corral.model.errors import NotFound

router = APIRouter(prefix="/v1/top", tags=["nodes"])


@router.get("/nodes")
async def nodes_top(
    node: list[str] | None = Query(None, description="only these nodes (repeat it for several)"), ctx: ManagerContext = Depends(context)
) -> list[dict[str, Any]]:
    """A row per node: `{node, state, tasks, resources: {cpus, memory}, reserved: {cpus, memory}, used: {cpus, memory}
    | null, containers, unmeasured, window, time}`, or with `error` (and `used: null`) when its agent gave no figures.
    `used.cpus` is CPU cores (CPU seconds per second over `window` seconds), memory in bytes (working sets)."""
    cache = ctx.cache
    if node:
        missing = [name for name in node if name not in cache.nodes]
        if missing:
            raise NotFound(f"node {missing[0]!r} not found (see `corral node ls`)")
        nodes = [cache.nodes[name].obj for name in dict.fromkeys(node)]
    else:
        nodes = [entry.obj for entry in cache.nodes.values()]
    return await node_top.top(ctx.node_streams, nodes, cache.node_usage, ctx.clock())
