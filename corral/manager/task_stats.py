"""A running task's resource use now, read from its node's agent over the node streams
(`corral service top`, the autoscaler)."""

from typing import Any

from corral.manager.node_streams import NodeStreams
from corral.model import Node, Task


async def read_stats(streams: NodeStreams, node: Node, task: Task) -> dict[str, Any] | None:
    """`{cpu_seconds, memory_working_set, rx_bytes, tx_bytes}` of the task's container, None when the agent gave none;
    NodeUnreachable (a CorralError) when its node cannot be asked."""
    async for figures in streams.lines(node, "GET", f"/v1/tasks/{task.id}/stats"):
        return figures
    return None
