"""Log streams and command runs in tasks' containers, relayed from the nodes' agents (NDJSON).

- `GET /v1/services/{name}/logs`: every task of the service that has a container, merged, each line
  `{"task", "name", "node", "stream", "time", "line"}` (or `{"task", "name", "node", "notice"}` when a
  node's stream broke); `follow`, `tail`, `since` (epoch seconds). Read: viewer.
- `GET /v1/tasks/{task}/logs`: one task's (id, id prefix, or SERVICE.SLOT).
- `GET /v1/services/{name}/top`: each running task's resource use now (CPU seconds, memory, network).
- `POST /v1/tasks/{task}/exec` `{"command": [...]}`: `{"stream", "data"}` per output chunk, then
  `{"exit_code": N}`. A write no rule names: admin only (roles.py).
A stream that fails once started ends with one `{"error": ..., "path": null}` line.
"""

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from corral.manager.api.deps import context
from corral.manager.context import ManagerContext
from corral.manager.node_streams import NodeStreams, NodeUnreachable
from corral.manager.task_logs import LogRequest, Sources, merged, task_name
from corral.manager.task_refs import find_task
from corral.manager.task_stats import read_stats
from corral.model import Task
from corral.model.errors import CorralError, NotFound
from corral.model.task import DesiredState

router = APIRouter(prefix="/v1", tags=["logs"])


class ExecRequest(BaseModel):
    command: list[str] = Field(min_length=1, max_length=1024, description="the program and its arguments (no shell)")


def streams_of(ctx: ManagerContext) -> NodeStreams:
    if ctx.node_streams is None:
        raise NodeUnreachable("this manager reaches no agents (it runs without the cluster CA)")
    return ctx.node_streams


def _ndjson(batches: AsyncIterator[list[dict[str, Any]]], first: list[dict[str, Any]] | None = None) -> StreamingResponse:
    """Each batch as one chunk of NDJSON lines."""

    async def lines() -> AsyncIterator[bytes]:
        yield b""  # the headers now: the client knows it is connected
        if first:
            yield "".join(json.dumps(item) + "\n" for item in first).encode()
        try:
            async for batch in batches:
                yield "".join(json.dumps(item) + "\n" for item in batch).encode()
        except CorralError as err:
            yield (json.dumps({"error": str(err), "path": None}) + "\n").encode()

    return StreamingResponse(lines(), media_type="application/x-ndjson")


def _request(follow: bool, tail: int | None, since: float | None) -> LogRequest:
    return LogRequest(follow=follow, tail=tail, since=since)


def _sources(ctx: ManagerContext, tasks: Any) -> Sources:
    cache = ctx.cache

    def alive(task_id: str) -> bool:
        found = cache.tasks.get(task_id)
        return found is not None and not found.obj.terminal and found.obj.desired_state == DesiredState.running

    def node(name: str) -> Any:
        found = cache.nodes.get(name)
        return found.obj if found else None

    return Sources(tasks=tasks, node=node, streams=streams_of(ctx), alive=alive)


FollowQuery = Query(False, description="go on with new lines (and new tasks) until the client leaves")
TailQuery = Query(None, ge=0, description="only the last N lines of each task")
SinceQuery = Query(None, ge=0, description="only lines from this time on (epoch seconds)")


@router.get("/services/{name}/logs")
async def service_logs(
    name: str, follow: bool = FollowQuery, tail: int | None = TailQuery, since: float | None = SinceQuery,
    ctx: ManagerContext = Depends(context),
) -> StreamingResponse:
    """The output of every task of the service, merged as it comes."""
    if name not in ctx.cache.services:
        raise NotFound(f"service {name!r} not found (see `corral service ls`)")
    sources = _sources(ctx, lambda: ctx.cache.tasks_of(name))
    return _ndjson(merged(sources, _request(follow, tail, since)))


@router.get("/tasks/{task}/logs")
async def task_logs(
    task: str, follow: bool = FollowQuery, tail: int | None = TailQuery, since: float | None = SinceQuery,
    ctx: ManagerContext = Depends(context),
) -> StreamingResponse:
    """One task's output (its id, a unique prefix of it, or SERVICE.SLOT)."""
    found = find_task(ctx.cache, task)
    if not found.container_id:
        raise NotFound(f"task {found.id} ({found.state.value}) has no container, so no logs: {found.error or 'it never started'}")
    sources = _sources(ctx, lambda: [found])
    return _ndjson(merged(sources, _request(follow, tail, since)))


@router.get("/services/{name}/top")
async def service_top(name: str, ctx: ManagerContext = Depends(context)) -> list[dict[str, Any]]:
    """Resource use of each running task of the service now, from its node's engine (`corral service top`):
    `{task, name, node, time, cpu_seconds, memory_working_set, rx_bytes, tx_bytes}`, or `{task, name, node, error}`."""
    if name not in ctx.cache.services:
        raise NotFound(f"service {name!r} not found (see `corral service ls`)")
    streams = streams_of(ctx)
    running = [t for t in ctx.cache.tasks_of(name) if t.state.value == "running" and t.node and t.container_id]

    async def sample(task: Task) -> dict[str, Any]:
        label: dict[str, Any] = {"task": task.id, "name": task_name(task), "node": task.node}
        try:
            node = running_node(ctx, task)
            figures = await read_stats(streams, node, task)
            return {**label, "time": ctx.clock(), **figures} if figures is not None else {**label, "error": "no figures"}
        except CorralError as err:
            return {**label, "error": str(err)}

    return list(await asyncio.gather(*(sample(t) for t in sorted(running, key=lambda t: (t.slot or 0, t.node or "")))))


@router.post("/tasks/{task}/exec")
async def exec_in_task(task: str, body: ExecRequest, ctx: ManagerContext = Depends(context)) -> StreamingResponse:
    """Run a command in the task's container; its output as it comes, then its exit code."""
    found = find_task(ctx.cache, task)
    node = running_node(ctx, found)
    items = streams_of(ctx).lines(node, "POST", f"/v1/tasks/{found.id}/exec", body={"command": body.command})
    first = await anext(items)  # an unreachable node or a missing container is an HTTP error, not a broken stream
    return _ndjson(_one_by_one(items), [first])


async def _one_by_one(items: AsyncIterator[dict[str, Any]]) -> AsyncIterator[list[dict[str, Any]]]:
    async for item in items:
        yield [item]


def running_node(ctx: ManagerContext, task: Task) -> Any:
    if task.terminal or not task.container_id or task.node is None:
        raise NotFound(f"task {task.id} is {task.state.value}: commands run only in a running task's container")
    found = ctx.cache.nodes.get(task.node)
    if found is None:
        raise NotFound(f"node {task.node} of task {task.id} is no longer registered")
    return found.obj
