"""Each node's resources: its capacity, what its tasks reserve (the cache's totals) and what its containers
use now (asked of its agent over the node streams, all nodes at once): `corral node top`, the UI's cluster page.

The agent measures (agent/node_usage.py: the sum of its running containers' figures, CPU as a rate
between two samples); the manager keeps nothing between calls. A node that is down, serves no node
listener (hollow, no TLS) or does not answer within `timeout` gets a row with `used: null` and `error`.
"""

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from corral.manager.node_streams import NodeStreams
from corral.model import Node, NodeState
from corral.model.errors import CorralError

TIMEOUT = 5.0  # seconds for one node's answer (the agent samples twice, 0.5 s apart, on a first ask)
AT_ONCE = 64  # nodes asked concurrently


def row(node: Node, reserved: Sequence[float]) -> dict[str, Any]:
    """A node's row without its use: capacity and reservations (`reserved`: the cache's [tasks, cpus, memory])."""
    tasks, cpus, memory = reserved if reserved else (0, 0.0, 0)
    return {
        "node": node.name,
        "state": node.state.value,
        "tasks": int(tasks),
        "resources": {"cpus": node.resources.cpus, "memory": node.resources.memory},
        "reserved": {"cpus": max(0.0, round(cpus, 9)), "memory": max(0, int(memory))},
        "used": None,
    }


def with_use(base: dict[str, Any], figures: Mapping[str, Any], time: float) -> dict[str, Any]:
    """The row with the agent's figures: `used` {cpus (cores), memory (bytes)} over `window` seconds."""
    return {
        **base,
        "time": time,
        "used": {"cpus": float(figures["cpu_cores"]), "memory": int(figures["memory_working_set"])},
        "containers": int(figures["containers"]),
        "unmeasured": int(figures["unmeasured"]),
        "window": float(figures["window"]),
    }


async def read_use(streams: NodeStreams, node: Node) -> dict[str, Any] | None:
    """The agent's `{cpu_cores, memory_working_set, containers, unmeasured, window}`; NodeUnreachable when it cannot be asked."""
    async for figures in streams.lines(node, "GET", "/v1/node/usage"):
        return figures
    return None


async def top(
    streams: NodeStreams | None, nodes: Iterable[Node], reserved: Mapping[str, Sequence[float]], time: float,
    timeout: float = TIMEOUT,
) -> list[dict[str, Any]]:
    """A row per node, by name, each with what it uses now or the reason it has no figures."""
    gate = asyncio.Semaphore(AT_ONCE)

    async def one(node: Node) -> dict[str, Any]:
        base = row(node, reserved.get(node.name, ()))
        if node.state != NodeState.ready:
            return {**base, "error": f"node is {node.state.value}"}
        if streams is None:
            return {**base, "error": "this manager reaches no agents (it runs without the cluster CA)"}
        try:
            async with gate:
                figures = await asyncio.wait_for(read_use(streams, node), timeout)
        except TimeoutError:
            return {**base, "error": f"no answer from its agent within {timeout:g}s"}
        except CorralError as err:
            return {**base, "error": str(err)}
        if figures is None:
            return {**base, "error": "its agent gave no figures"}
        return with_use(base, figures, time)

    return list(await asyncio.gather(*(one(node) for node in sorted(nodes, key=lambda n: n.name))))
