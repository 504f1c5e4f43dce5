"""What an agent serves the manager about its containers: log streams and command runs (`corral service logs`, `corral exec`).

Routes (NDJSON, one JSON object a line, streamed as the engine gives it):
- `GET /v1/tasks/{task}/logs?follow=&tail=&since=`: `{"stream", "time", "line"}` per line;
- `POST /v1/tasks/{task}/exec` with `{"command": [...]}`: `{"stream", "data"}` per output chunk, then
  `{"exit_code": N}`;
- `GET /v1/tasks/{task}/stats`: one line, the container's resource use now (`corral service top`);
- `GET /v1/node/usage`: one line, what the node's containers use together now (`corral node top`, node_usage.py).
A failure after the stream started ends it with one `{"error": ...}` line. Only containers of this
agent (found by their task label) are reachable. Who may call is decided by the listener
(node_listener.py: the manager's client certificate, nothing else), not here.
"""

import dataclasses
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

from pydantic import BaseModel, Field, ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from corral.agent.clock import SYSTEM_CLOCK, Clock
from corral.agent.engines.base import Engine, EngineError, LogOptions
from corral.agent.node_usage import NodeUsage

MAX_COMMAND_BYTES = 64 * 1024


class ExecRequest(BaseModel):
    command: list[str] = Field(min_length=1, max_length=1024)


def _line(item: dict[str, Any]) -> bytes:
    return (json.dumps(item, separators=(",", ":")) + "\n").encode()


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message, "path": None}, status_code=status)


def log_options(query: dict[str, str]) -> LogOptions:
    """The query's options; ValueError naming the parameter that is wrong."""
    follow = query.get("follow", "0") in ("1", "true")
    tail = query.get("tail")
    since = query.get("since")
    try:
        tail_lines = int(tail) if tail not in (None, "") else None
    except ValueError:
        raise ValueError(f"tail: {tail!r} is not a whole number") from None
    if tail_lines is not None and tail_lines < 0:
        raise ValueError(f"tail: {tail_lines} is negative")
    try:
        since_time = float(since) if since not in (None, "") else None
    except ValueError:
        raise ValueError(f"since: {since!r} is not epoch seconds") from None
    return LogOptions(follow=follow, tail=tail_lines, since=since_time)


def node_app(engine: Callable[[], Engine | None], clock: Clock = SYSTEM_CLOCK) -> Starlette:
    """The app; `engine()` is the node's engine once the agent has one."""
    node_usage = NodeUsage(engine, clock)

    async def container_of(task_id: str) -> str:
        current = engine()
        if current is None:
            raise LookupError("the agent is starting: its engine is not ready")
        for container in await current.list():
            if container.task_id == task_id:
                return container.id
        raise LookupError(f"task {task_id} has no container on this node (removed by task history, or never started)")

    async def logs(request: Request) -> Response:
        task_id = request.path_params["task"]
        try:
            options = log_options(dict(request.query_params))
            container = await container_of(task_id)
        except ValueError as err:
            return _error(400, str(err))
        except LookupError as err:
            return _error(404, str(err))
        current = engine()
        assert current is not None

        async def body() -> AsyncIterator[bytes]:
            yield b""  # the headers now: the manager knows the stream is open
            try:
                async for lines in current.logs(container, options):
                    yield b"".join(_line({"stream": line.stream, "time": line.time, "line": line.text}) for line in lines)
            except EngineError as err:
                yield _line({"error": str(err), "path": None})

        return StreamingResponse(body(), media_type="application/x-ndjson")

    async def run(request: Request) -> Response:
        task_id = request.path_params["task"]
        raw = await request.body()
        if len(raw) > MAX_COMMAND_BYTES:
            return _error(413, f"the command is larger than {MAX_COMMAND_BYTES} bytes")
        try:
            command = ExecRequest.model_validate_json(raw).command
            container = await container_of(task_id)
        except ValidationError as err:
            return _error(400, f"command: {err.errors()[0]['msg']}")
        except LookupError as err:
            return _error(404, str(err))
        current = engine()
        assert current is not None

        async def body() -> AsyncIterator[bytes]:
            yield b""
            try:
                async for item in current.exec_stream(container, command):
                    if isinstance(item, int):
                        yield _line({"exit_code": item})
                    else:
                        yield _line({"stream": item.stream, "data": item.data.decode(errors="replace")})
            except EngineError as err:
                yield _line({"error": str(err), "path": None})

        return StreamingResponse(body(), media_type="application/x-ndjson")

    async def usage(request: Request) -> Response:
        try:
            container = await container_of(request.path_params["task"])
        except LookupError as err:
            return _error(404, str(err))
        current = engine()
        assert current is not None
        try:
            stats = await current.stats(container)
        except EngineError as err:
            return _error(502, str(err))
        return Response(_line(dataclasses.asdict(stats)), media_type="application/x-ndjson")

    async def node_use(request: Request) -> Response:
        try:
            use = await node_usage.now()
        except LookupError as err:
            return _error(503, str(err))
        except EngineError as err:
            return _error(502, str(err))
        return Response(_line(dataclasses.asdict(use)), media_type="application/x-ndjson")

    return Starlette(routes=[
        Route("/v1/node/usage", node_use, methods=["GET"]),
        Route("/v1/tasks/{task}/stats", usage, methods=["GET"]),
        Route("/v1/tasks/{task}/logs", logs, methods=["GET"]),
        Route("/v1/tasks/{task}/exec", run, methods=["POST"]),
    ])
