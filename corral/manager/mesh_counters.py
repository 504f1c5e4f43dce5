"""What a node's routing mesh has carried per service so far, read from its agent over the node streams
(the autoscaler's `requests_per_second` target). The mesh counts connections, not HTTP requests."""

import asyncio

from corral.manager.node_streams import NodeStreams, NodeUnreachable
from corral.model import Node

READ_TIMEOUT = 5.0  # seconds: an agent slower than this gives no figures this time


async def read_connections(streams: NodeStreams, node: Node, timeout: float = READ_TIMEOUT) -> dict[str, int]:
    """Service name -> connections the node's mesh has accepted for it; NodeUnreachable (a CorralError) when the
    node cannot be asked or is too slow."""
    try:
        async with asyncio.timeout(timeout):
            async for figures in streams.lines(node, "GET", "/v1/mesh/counters"):
                services = figures.get("services")
                if not isinstance(services, dict):
                    return {}
                return {str(name): int(counters.get("connections", 0)) for name, counters in services.items() if isinstance(counters, dict)}
    except TimeoutError:
        raise NodeUnreachable(f"node {node.name}: no mesh counters within {timeout:g}s") from None
    return {}
