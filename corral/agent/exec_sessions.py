"""The agent's end of an interactive command run (`corral exec -i/-t`): a WebSocket on the node listener.

`/v1/tasks/{task}/exec/session` (the manager's client certificate only, as every route of the listener):
the first message says what to run (`corral.client.exec_channels`), then stdin, resizes and the end of
stdin go to the command and its output comes back, ending with its exit code. If the manager leaves,
the command's streams are let go (its stdin ends).
"""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from starlette.websockets import WebSocket, WebSocketDisconnect

from corral.agent.engines.base import Attachment, Engine, EngineError
from corral.client import exec_channels as channels

log = logging.getLogger(__name__)


class SessionEnded(Exception):
    """The caller left, or sent what cannot be followed (the message says which)."""


async def _input(websocket: WebSocket, attachment: Attachment, tty: bool) -> None:
    """Follow the caller's messages until it leaves; SessionEnded for a message that is wrong."""
    while True:
        received = await websocket.receive()
        if received["type"] == "websocket.disconnect":
            return
        data = received.get("bytes")
        if data is None:
            raise SessionEnded("after the start message, only binary channel messages are taken")
        try:
            channel, payload = channels.split(data)
            if channel == channels.STDIN:
                await attachment.write(payload)
            elif channel == channels.RESIZE:
                rows, cols = channels.parse_resize(payload)
                if tty:
                    await _resize(attachment, rows, cols)
            elif channel == channels.CLOSE and payload == bytes((channels.STDIN,)):
                await attachment.close_stdin()
            else:
                raise ValueError(f"channel {channel} is not one a caller sends on")
        except ValueError as err:
            raise SessionEnded(str(err)) from None


async def _resize(attachment: Attachment, rows: int, cols: int) -> None:
    try:
        await attachment.resize(rows, cols)
    except EngineError as err:  # the command may have ended meanwhile: its output's end says so
        log.debug("exec resize to %sx%s: %s", rows, cols, err)


async def _output(websocket: WebSocket, attachment: Attachment) -> int:
    while (frame := await attachment.read()) is not None:
        channel = channels.STDERR if frame.stream == "stderr" else channels.STDOUT
        await websocket.send_bytes(channels.message(channel, frame.data))
    return await attachment.exit_code()


async def run_session(
    websocket: WebSocket, engine: Callable[[], Engine | None], container_of: Callable[[str], Awaitable[str]],
) -> None:
    await websocket.accept()
    try:
        session = channels.parse_start(await websocket.receive_text())
        container = await container_of(websocket.path_params["task"])
        current = engine()
        if current is None:
            raise LookupError("the agent is starting: its engine is not ready")
        attachment = await current.exec_attach(container, session.command, session.tty, session.stdin)
    except WebSocketDisconnect:
        return
    except (ValueError, KeyError, LookupError, EngineError) as err:
        await _finish(websocket, channels.status(error=str(err).strip("'\"")))
        return
    if session.tty and session.rows and session.cols:
        await _resize(attachment, session.rows, session.cols)
    reading = asyncio.create_task(_input(websocket, attachment, session.tty))
    writing = asyncio.create_task(_output(websocket, attachment))
    try:
        await asyncio.wait({reading, writing}, return_when=asyncio.FIRST_COMPLETED)
        if writing.done():
            failed = writing.exception()
            if failed is None:
                await _finish(websocket, channels.status(exit_code=writing.result()))
            elif isinstance(failed, EngineError):
                await _finish(websocket, channels.status(error=str(failed)))
            # else the caller is gone (sending failed): nobody to tell
        elif reading.exception() is not None:
            await _finish(websocket, channels.status(error=str(reading.exception())))
    finally:
        for task in (reading, writing):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await attachment.close()


async def _finish(websocket: WebSocket, last: bytes) -> None:
    with contextlib.suppress(Exception):  # the caller may be gone already
        await websocket.send_bytes(last)
        await websocket.close()
