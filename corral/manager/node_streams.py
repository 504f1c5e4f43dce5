"""The manager as a client of the agents' node listeners: log and exec streams, relayed line by line.

The manager connects to `https://ADDRESS:AGENT_PORT` of a node (the port the
agent registered), trusts the cluster CA alone, checks that the certificate
is the node's (TLS server name = the node name, which its certificate
carries), and presents its own client certificate
(`corral.pki.manager_certs`), the only one agents accept. Each stream is read
a chunk at a time as its consumer asks: nothing is gathered whole, so a slow
reader slows the agent, which slows the engine (back-pressure).
"""

import json
import ssl
from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx
import websockets
from websockets.asyncio.client import ClientConnection, connect

from corral.model import Node
from corral.model.errors import CorralError, NotFound


class NodeUnreachable(CorralError):
    """The node's agent could not be reached, or refused, or its stream broke off."""

    status = 502


class NodeStreams:
    def __init__(self, context: ssl.SSLContext | None, connect_timeout: float = 5.0) -> None:
        """`context`: the manager's client context (None: a cluster without TLS, whose agents serve no streams)."""
        self._context = context
        self._connect_timeout = connect_timeout
        self._http = httpx.AsyncClient(verify=context or False, timeout=httpx.Timeout(connect_timeout, read=None))

    async def close(self) -> None:
        await self._http.aclose()

    async def lines(
        self, node: Node, method: str, path: str, params: Mapping[str, Any] | None = None, body: Any = None
    ) -> AsyncIterator[dict[str, Any]]:
        """The JSON objects of an NDJSON stream of the node's agent; an `{"error"}` line raises NodeUnreachable."""
        url = "https://" + self._where(node) + path
        try:
            async with self._http.stream(
                method, url, params=params, json=body, extensions={"sni_hostname": node.name}
            ) as response:
                if response.status_code >= 400:
                    raise _refusal(node, response.status_code, await response.aread())
                async for line in response.aiter_lines():
                    if not line.strip():
                        continue
                    item: dict[str, Any] = json.loads(line)
                    if "error" in item:
                        raise NodeUnreachable(f"node {node.name}: {item['error']}")
                    yield item
        except httpx.TransportError as err:
            raise NodeUnreachable(f"cannot reach node {node.name}'s agent at {node.address}:{node.agent_port}: {err or type(err).__name__}") from err


    async def session(self, node: Node, path: str) -> ClientConnection:
        """A WebSocket to the node's agent (`corral exec -it`), with the same mutual TLS as the streams."""
        url = "wss://" + self._where(node) + path
        try:
            return await connect(
                url, ssl=self._context, server_hostname=node.name, open_timeout=self._connect_timeout, compression=None,
            )
        except websockets.InvalidStatus as err:
            raise _refusal(node, err.response.status_code, bytes(err.response.body or b"")) from err
        except (OSError, TimeoutError, websockets.InvalidHandshake) as err:
            raise NodeUnreachable(f"cannot reach node {node.name}'s agent at {node.address}:{node.agent_port}: {err or type(err).__name__}") from err

    def _where(self, node: Node) -> str:
        """HOST:PORT of the node's listener; NodeUnreachable when it serves none."""
        if self._context is None or node.agent_port is None:
            raise NodeUnreachable(
                f"node {node.name} serves no logs or exec: its agent has no node listener "
                "(a cluster without TLS, an agent started with no --node-port, or a hollow node)"
            )
        host = f"[{node.address}]" if ":" in node.address else node.address
        return f"{host}:{node.agent_port}"


def _refusal(node: Node, status: int, body: bytes) -> CorralError:
    try:
        message = str(json.loads(body).get("error"))
    except ValueError:
        message = body.decode(errors="replace")
    if status == 404:
        return NotFound(f"node {node.name}: {message}")
    return NodeUnreachable(f"node {node.name} refused: {message} (HTTP {status})")
