"""`corral exec -i/-t`: a command run with stdin and a terminal, relayed between the caller and the task's agent.

WebSocket `/v1/tasks/{task}/exec/session` (TASK: an id, a unique id prefix, or SERVICE.SLOT). Admin only:
FastAPI's dependencies serve requests, not WebSockets, so the route checks the bearer token itself
(`auth.authorize_session`, method `WEBSOCKET` in roles.POLICY) and writes the audit record the middleware
writes for requests. A refusal (no token, a weak role, no such task, a task not running, an unreachable
node) is an HTTP answer to the handshake with the usual error body. Once open, messages go both ways
as they are (`corral.client.exec_channels`): the manager needs to understand none of them, and each is
sent on only when the other side took the previous one. If the agent's connection breaks, the caller
gets a status message saying so; if the caller leaves, the agent's connection is closed.
"""

import asyncio
import contextlib
import logging

from fastapi import APIRouter
from starlette.websockets import WebSocket
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, ConnectionClosedOK

from corral.client import exec_channels as channels
from corral.manager import keys
from corral.manager.api.audit import audit_record
from corral.manager.api.auth import authorize_session
from corral.manager.api.errors import error_response
from corral.manager.api.logs import running_node, streams_of
from corral.manager.context import ManagerContext
from corral.manager.task_refs import find_task
from corral.model.errors import CorralError

log = logging.getLogger(__name__)

TEMPLATE = "/v1/tasks/{task}/exec/session"
router = APIRouter()


async def exec_session(websocket: WebSocket) -> None:
    ctx: ManagerContext = websocket.app.state.context
    try:
        caller = await authorize_session(websocket, TEMPLATE)
        task = find_task(ctx.cache, websocket.path_params["task"])
        node = running_node(ctx, task)
        agent = await streams_of(ctx).session(node, f"/v1/tasks/{task.id}/exec/session")
    except CorralError as err:
        await _refuse(websocket, err.status, str(err))
        return
    try:
        await ctx.store.put(keys.AUDIT, audit_record(caller, "WEBSOCKET", websocket.url.path, 101, ctx.clock()))
    except Exception:  # noqa: BLE001 - as the audit middleware: the session goes on, the log says the trail missed it
        log.exception("audit: could not record the exec session of %s by %s", task.id, caller.name)
    await websocket.accept()
    try:
        await relay(websocket, agent, node.name)
    finally:
        await agent.close()


async def relay(caller: WebSocket, agent: ClientConnection, node: str) -> None:
    """Messages both ways until one side ends; the caller hears why if the agent's side broke."""

    async def up() -> None:
        while True:
            received = await caller.receive()
            if received["type"] == "websocket.disconnect":
                return
            data = received.get("bytes")
            await agent.send(data if data is not None else received.get("text") or "")

    async def down() -> None:
        async for item in agent:
            if isinstance(item, bytes):
                await caller.send_bytes(item)
            else:
                await caller.send_text(item)

    upward, downward = asyncio.create_task(up()), asyncio.create_task(down())
    try:
        await asyncio.wait({upward, downward}, return_when=asyncio.FIRST_COMPLETED)
        broke = downward.exception() if downward.done() else None
        if downward.done() and (broke is None or isinstance(broke, ConnectionClosedOK)):
            with contextlib.suppress(Exception):
                await caller.close()
        elif isinstance(broke, (ConnectionClosed, OSError)):
            with contextlib.suppress(Exception):
                await caller.send_bytes(channels.status(error=f"lost node {node}'s agent: {broke}"))
                await caller.close()
    finally:
        for task in (upward, downward):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


async def _refuse(websocket: WebSocket, status: int, message: str) -> None:
    """The error as an HTTP answer to the handshake (as any route's), or as a status message where the server
    cannot answer a handshake that way."""
    if "websocket.http.response" in websocket.scope.get("extensions", {}):
        await websocket.send_denial_response(error_response(status, message))
        return
    await websocket.accept()
    await websocket.send_bytes(channels.status(error=message))
    await websocket.close(code=1008)


router.add_websocket_route(TEMPLATE, exec_session)
