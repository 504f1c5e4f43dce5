"""/v1/agent heartbeats, watch and status: the one protocol of every agent process (one node or a fleet).

Every call is about many nodes at once (a lone agent names one): with
thousands of nodes behind one process, a call per node per heartbeat, per
long poll and per status report is what would cost the most. Leases are
renewed in `ctx.leases`, the tasks come from the cache's per-node index,
and a report changes a task through one rule (`task_reports.with_status`).

- the watch sends only what changed on each node since the revision the
  caller last saw (the tasks changed, the ids of those that left), or the
  whole list when `after` is 0 or older than the cache remembers; about
  WATCH_REPLY_TASKS tasks a reply, with `"more": true` when other nodes'
  changes wait for the next call; an agent's own reports are not sent back;
- the status reports of one request are written in one store transaction;
  a report that loses a race is retried (after the cache caught up), and
  the others still land.

Replies are built as plain JSON (no response model): they are large, and
their fields are those of `Task` (docs/api.md).
"""

import asyncio

import orjson

from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

from fastapi import Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field, ValidationError

from corral.manager import task_reports
from corral.manager.api.agents import TaskStatus
from corral.manager.api.openapi import body_of
from corral.manager.api.deps import NodeCredential, agent_router, context, require_node_credential
from corral.manager.cache import StateCache
from corral.manager.context import ManagerContext
from corral.manager.heartbeats import hear
from corral.manager.writes import dump
from corral.model import TaskState

router = agent_router()

MAX_BATCH = 20_000
WATCH_REPLY_TASKS = 1000  # tasks in one watch reply, about (a node's list is never split)


class NodeBatch(BaseModel):
    """The body of a call about many nodes: each node it names that is registered must hold the credential."""

    def named_nodes(self) -> Iterable[str]:
        raise NotImplementedError


class HeartbeatBatch(NodeBatch):
    nodes: list[str] = Field(max_length=MAX_BATCH)

    def named_nodes(self) -> Iterable[str]:
        return self.nodes


class WatchRequest(NodeBatch):
    after: dict[str, int] = Field(description="node -> the revision last seen; 0 sends the node's whole list")
    wait: float = Field(default=0.0, ge=0, le=60, description="seconds to wait for a change when none is there")

    def named_nodes(self) -> Iterable[str]:
        return self.after


class NodeTaskStatus(TaskStatus):
    node: str
    task_id: str


class StatusBatch(NodeBatch):
    reports: list[NodeTaskStatus] = Field(max_length=MAX_BATCH)

    def named_nodes(self) -> Iterable[str]:
        return {report.node for report in self.reports}


B = TypeVar("B", bound=NodeBatch)


def _body(model: type[B]) -> Callable[..., Awaitable[B]]:
    """The request body read straight from its bytes by pydantic (Rust), not through Python's json
    and a validation of the decoded objects: these bodies carry thousands of entries, parsed once no
    user's request is in flight (priority.py). A bad body is a 422 as usual. Then the credential is checked against every node the body names."""

    async def parse(
        request: Request,
        credential: NodeCredential = Depends(require_node_credential),
        ctx: ManagerContext = Depends(context),
    ) -> B:
        raw = await request.body()
        await ctx.users_first.wait_turn()  # a body of thousands of entries is parsed in one go: users' requests first
        try:
            body = model.model_validate_json(raw, strict=True)  # strict: `false` is no number
        except ValidationError as err:
            raise RequestValidationError(err.errors(include_url=False)) from err
        credential.check_nodes(ctx, body.named_nodes())
        return body

    return parse


def _json(body: object) -> Response:
    return Response(orjson.dumps(body), media_type="application/json")


@router.post("/heartbeats", openapi_extra=body_of(HeartbeatBatch))
async def heartbeats(body: HeartbeatBatch = Depends(_body(HeartbeatBatch)), ctx: ManagerContext = Depends(context)) -> dict[str, list[str]]:
    """Renew the lease of every registered node named; the unknown ones must register again, the
    `recovered` ones (down until now, ready again) should list their tasks afresh."""
    heard = await hear(ctx, body.nodes)
    return {"unknown": heard.unknown, "recovered": heard.recovered}


@router.post("/watch", openapi_extra=body_of(WatchRequest))
async def watch(body: WatchRequest = Depends(_body(WatchRequest)), ctx: ManagerContext = Depends(context)) -> Response:
    """The changes on the nodes named since the revision each was last seen at; waits for one."""
    cache = ctx.cache
    loop = asyncio.get_running_loop()
    # No node named is registered: nothing to wait for (each must register first), answered at once.
    wait = body.wait if any(node in cache.nodes for node in body.after) else 0.0
    deadline = loop.time() + wait

    position = -1  # before the journal: the first look checks every node named
    found: list[str] = []
    while True:
        found, position = cache.nodes_changed_since(position, body.after), cache.journal_end
        if found or cache.closing or (left := deadline - loop.time()) <= 0:
            break  # (closing: wait_change no longer waits, and the manager must get to stop)
        # each wake reads only the journal entries written since the last look
        await cache.wait_change(lambda: cache.journal_end > position, left)
    async with ctx.agent_batches:
        await ctx.users_first.wait_turn()
        reply = _watch_reply(cache, found, body.after)  # read on the event loop: the cache changes only there
        # Encoded in a worker thread (about 1,000 tasks to dump): the tasks in it are never changed in place.
        return await asyncio.to_thread(_encoded, reply)


def _watch_reply(cache: StateCache, found: list[str], after: dict[str, int]) -> dict[str, Any]:
    """The reply, its tasks not yet dumped (`_encoded` does)."""
    nodes = {}
    sent = 0
    more = False
    for node in found:
        if sent >= WATCH_REPLY_TASKS:  # the rest next call (their `after` stays): no reply stalls the loop
            more = True
            break
        full, tasks, removed = cache.node_delta(node, after[node])
        sent += len(tasks) + len(removed)
        nodes[node] = {
            "revision": cache.node_changed.get(node, cache.revision),
            "full": full,
            "tasks": tasks,
            "removed": removed,
        }
    return {"revision": cache.revision, "nodes": nodes, "more": more}


def _encoded(reply: dict[str, Any]) -> Response:
    for entry in reply["nodes"].values():
        entry["tasks"] = [dump(task) for task in entry["tasks"]]
    return _json(reply)


@router.post("/status", openapi_extra=body_of(StatusBatch))
async def report_statuses(body: StatusBatch = Depends(_body(StatusBatch)), ctx: ManagerContext = Depends(context)) -> Response:
    """Apply many status reports in one transaction; one result per report, in order.

    A result is {"status": 200, "state": the task's state after the report},
    or {"status": 404 | 409, "error": why}.
    """
    results = [
        {"status": 200, "state": result.value} if isinstance(result, TaskState) else {"status": result.status, "error": str(result)}
        for result in await task_reports.report_batch(ctx, body.reports)
    ]
    return _json({"results": results})
