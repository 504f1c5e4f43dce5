"""The logs of many tasks as one stream: every replica of a service on every node, labelled with its task.

One reader per task pulls its node's stream (node_streams.py) and puts each
line, labelled `{"task", "name", "node"}`, on one small bounded queue, from
which the HTTP response takes them: when the client reads slowly the queue
fills, readers wait, and their agents' streams stop being read
(back-pressure; memory stays a few hundred lines). With `follow`, tasks that
get a container later join (checked every `poll` seconds); a task whose
container stops leaves (its engine stream ends); a reader whose node's
stream breaks (the agent restarted) says so on the stream with a `notice`
and, while its task lives, resumes after `retry` seconds from the last line
it saw.
"""

import asyncio
import datetime
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from corral.manager.node_streams import NodeStreams
from corral.model import Node, Task
from corral.model.errors import CorralError

QUEUE_LINES = 256
BATCH = 256  # lines handed on at once when they are waiting (one write downstream, not one per line)


@dataclass(frozen=True)
class LogRequest:
    follow: bool = False
    tail: int | None = None
    since: float | None = None

    def params(self) -> dict[str, str]:
        params = {"follow": "1" if self.follow else "0"}
        if self.tail is not None:
            params["tail"] = str(self.tail)
        if self.since is not None:
            params["since"] = f"{self.since:.9f}"
        return params


def task_name(task: Task) -> str:
    """`web.2` for a replica, `agent.node-1` for a global task (as `docker service logs` names them)."""
    return f"{task.service}.{task.slot if task.slot is not None else task.node}"


def has_logs(task: Task) -> bool:
    """A task whose container was made (its agent reported it): the engine may hold its output."""
    return bool(task.node and task.container_id)


def epoch_of(stamp: str) -> float | None:
    """Epoch seconds of an RFC 3339 time with up to nanoseconds ('2026-12-02T13:46:46.123456789Z')."""
    if not stamp:
        return None
    whole, _, fraction = stamp.rstrip("Z").partition(".")
    try:
        moment = datetime.datetime.fromisoformat(whole).replace(tzinfo=datetime.UTC)
    except ValueError:
        return None
    digits = "".join(c for c in fraction if c.isdigit())
    return moment.timestamp() + (int(digits) / 10 ** len(digits) if digits else 0.0)


@dataclass
class Sources:
    """What the merger reads: the tasks to show (again each poll), their nodes, and the streams."""

    tasks: Callable[[], list[Task]]
    node: Callable[[str], Node | None]
    streams: NodeStreams
    alive: Callable[[str], bool]  # whether a task may still print (a broken stream is resumed only then)


async def merged(
    sources: Sources, request: LogRequest, poll: float = 0.5, retry: float = 1.0,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> AsyncIterator[list[dict[str, Any]]]:
    """Batches of labelled lines (what is waiting on the queue, at least one line)."""
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=QUEUE_LINES)
    readers: dict[str, asyncio.Task[None]] = {}

    async def read(task: Task) -> None:
        label = {"task": task.id, "name": task_name(task), "node": task.node}
        options, last = request, ""
        while True:
            node = sources.node(task.node or "")
            try:
                if node is None:
                    raise CorralError(f"node {task.node} is no longer registered")
                async for item in sources.streams.lines(node, "GET", f"/v1/tasks/{task.id}/logs", options.params()):
                    last = str(item.get("time", "")) or last
                    await queue.put({**label, **item})
                return
            except CorralError as err:
                resume = request.follow and sources.alive(task.id)
                await queue.put({**label, "notice": f"{err}" + ("; resuming" if resume else "")})
                if not resume:
                    return
            await sleep(retry)
            since = epoch_of(last)
            options = LogRequest(follow=True, tail=None if since is not None else 0, since=since + 1e-9 if since is not None else None)

    def join() -> None:
        for task in sources.tasks():
            if task.id not in readers and has_logs(task):
                readers[task.id] = asyncio.create_task(read(task), name=f"logs {task.id}")

    try:
        join()
        loop = asyncio.get_running_loop()
        next_poll = loop.time() + poll
        while True:
            if not request.follow and queue.empty() and all(reader.done() for reader in readers.values()):
                return
            try:
                item = await asyncio.wait_for(queue.get(), max(0.0, next_poll - loop.time()))
            except TimeoutError:
                item = None
            if request.follow and loop.time() >= next_poll:
                join()
                next_poll = loop.time() + poll
            elif loop.time() >= next_poll:
                next_poll = loop.time() + poll
            if item is not None:
                batch = [item]
                while len(batch) < BATCH and not queue.empty():
                    batch.append(queue.get_nowait())
                yield batch
    finally:
        for reader in readers.values():
            reader.cancel()
        await asyncio.gather(*readers.values(), return_exceptions=True)
