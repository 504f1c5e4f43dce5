"""Merging many tasks' log streams: labels, end, joining replicas, broken streams resumed, and back-pressure.

The node streams are a fake here (the merger's own logic is under test); the real relay over
mutual TLS is tested in tests/agent/test_node_listener.py, and end to end in tests/e2e/test_logs_exec.py.
"""

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from corral.manager.task_logs import BATCH, QUEUE_LINES, LogRequest, Sources, epoch_of, merged, task_name
from corral.model import Node, Task
from corral.model.errors import CorralError
from tests.manager.factories import make_node, make_service, make_task


class FakeStreams:
    """Per task id: a list of lines, or a function making an endless stream; records what was asked."""

    def __init__(self) -> None:
        self.lines_of: dict[str, list[dict[str, Any]]] = {}
        self.asked: list[tuple[str, dict[str, str]]] = []
        self.produced = 0
        self.break_once: set[str] = set()
        self.endless: set[str] = set()

    async def lines(self, node: Node, method: str, path: str, params: dict[str, str] | None = None, body: Any = None) -> AsyncIterator[dict[str, Any]]:
        task_id = path.split("/")[3]
        self.asked.append((task_id, dict(params or {})))
        for item in self.lines_of.get(task_id, []):
            self.produced += 1
            yield item
        if task_id in self.break_once:
            self.break_once.discard(task_id)
            raise CorralError(f"lost node {node.name}'s stream")
        while task_id in self.endless:
            self.produced += 1
            yield {"stream": "stdout", "time": "", "line": "x" * 100}


def _sources(tasks: list[Task], streams: FakeStreams, alive: bool = True) -> Sources:
    return Sources(tasks=lambda: list(tasks), node=lambda name: make_node(name), streams=streams, alive=lambda _id: alive)  # type: ignore[arg-type]


def _line(text: str, time: str = "2026-12-02T13:00:00.5Z", stream: str = "stdout") -> dict[str, Any]:
    return {"stream": stream, "time": time, "line": text}


async def _all(stream: AsyncIterator[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    return [item async for batch in stream for item in batch]


async def _take(stream: AsyncIterator[list[dict[str, Any]]], count: int) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []
    while len(got) < count:
        got += await asyncio.wait_for(anext(stream), 5)
    return got


async def _one(stream: AsyncIterator[list[dict[str, Any]]]) -> dict[str, Any]:
    """The next line (the tests' sources give one line at a time, so each batch here holds one)."""
    [item] = await asyncio.wait_for(anext(stream), 5)
    return item


def _tasks() -> list[Task]:
    web = make_service("web", replicas=2)
    return [
        make_task(web, 1, id="t1", node="node-1", container_id="c1"),
        make_task(web, 2, id="t2", node="node-2", container_id="c2"),
        make_task(web, 3, id="t3", node=None, container_id=""),  # not started: no logs
    ]


async def test_every_task_with_a_container_is_read_and_each_line_labelled() -> None:
    streams = FakeStreams()
    streams.lines_of = {"t1": [_line("a"), _line("b", stream="stderr")], "t2": [_line("c")]}
    items = await asyncio.wait_for(_all(merged(_sources(_tasks(), streams), LogRequest(tail=3))), 5)
    assert sorted((i["name"], i["node"], i["stream"], i["line"]) for i in items) == [
        ("web.1", "node-1", "stderr", "b"), ("web.1", "node-1", "stdout", "a"), ("web.2", "node-2", "stdout", "c"),
    ]
    assert sorted(task for task, _ in streams.asked) == ["t1", "t2"]
    assert all(params == {"follow": "0", "tail": "3"} for _, params in streams.asked)


async def test_follow_takes_in_tasks_that_get_a_container_later() -> None:
    tasks = _tasks()
    streams = FakeStreams()
    streams.lines_of = {"t1": [_line("a")], "t3": [_line("late")]}
    stream = merged(_sources(tasks, streams), LogRequest(follow=True), poll=0.01)
    first = await _one(stream)
    assert first["line"] == "a"
    tasks[2] = tasks[2].model_copy(update={"node": "node-3", "container_id": "c3"})
    late = await _one(stream)
    assert (late["name"], late["node"], late["line"]) == ("web.3", "node-3", "late")
    await stream.aclose()


async def test_a_broken_stream_says_so_and_resumes_after_the_last_line_it_saw() -> None:
    tasks = _tasks()[:1]
    streams = FakeStreams()
    streams.lines_of = {"t1": [_line("a", "2026-12-02T13:00:00.25Z")]}
    streams.break_once = {"t1"}
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        streams.lines_of["t1"] = [_line("b")]

    stream = merged(_sources(tasks, streams), LogRequest(follow=True, tail=10), poll=0.01, retry=1.0, sleep=sleep)
    got = await _take(stream, 3)
    await stream.aclose()
    assert [g.get("line") for g in got] == ["a", None, "b"]
    assert "lost node node-1's stream; resuming" in got[1]["notice"]
    assert slept == [1.0]
    _, resumed = streams.asked[1]
    assert resumed["follow"] == "1" and "tail" not in resumed
    assert float(resumed["since"]) == pytest.approx(epoch_of("2026-12-02T13:00:00.25Z") or 0, abs=1e-6)


async def test_without_follow_a_broken_stream_ends_with_a_notice() -> None:
    streams = FakeStreams()
    streams.lines_of = {"t1": [_line("a")]}
    streams.break_once = {"t1"}
    items = await asyncio.wait_for(_all(merged(_sources(_tasks()[:1], streams), LogRequest())), 5)
    assert items[0]["line"] == "a" and items[1]["notice"].endswith("stream") and len(items) == 2


async def test_a_reader_that_does_not_read_holds_the_streams_back() -> None:
    streams = FakeStreams()
    streams.endless = {"t1", "t2"}
    stream = merged(_sources(_tasks(), streams), LogRequest(follow=True), poll=0.01)
    await anext(stream)
    await asyncio.sleep(0.2)  # the reader pauses: the sources may fill the queue, no more
    paused_at = streams.produced
    await asyncio.sleep(0.2)
    assert streams.produced == paused_at <= BATCH + QUEUE_LINES + 4  # the batch taken, the queue, one per reader
    await _take(stream, 2000)
    assert streams.produced > 2000
    await stream.aclose()
    assert streams.endless  # closed while they would go on for ever: the readers were cancelled


def test_names_and_times() -> None:
    web = make_service("web")
    assert task_name(make_task(web, 2)) == "web.2"
    assert task_name(make_task(web, None, node="node-4")) == "web.node-4"
    assert epoch_of("1970-01-01T00:00:01.500000001Z") == pytest.approx(1.500000001)
    assert epoch_of("") is None and epoch_of("yesterday") is None
