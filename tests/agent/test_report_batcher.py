"""The link's status reports: one call at a time, a newer report of a task replaces one not yet sent, never backwards.

A scripted client stands in for the manager: each call waits until the test answers it, so
the test decides what is in flight and what is still queued.
"""

import asyncio
from typing import Any

from corral.agent.clock import FakeClock
from corral.agent.link import ReportBatcher
from corral.agent.reconcile import Report
from corral.model import TaskState


class HeldManager:
    """Records each status call and answers it when the test says, with the state it was sent."""

    def __init__(self) -> None:
        self.calls: list[list[dict[str, Any]]] = []
        self.release = asyncio.Event()
        self.called = asyncio.Event()

    async def request(self, method: str, path: str, json_body: dict[str, Any]) -> dict[str, Any]:
        reports = json_body["reports"]
        self.calls.append(reports)
        self.called.set()
        await self.release.wait()
        self.release.clear()
        return {"results": [{"status": 200, "state": r["state"]} for r in reports]}


async def _settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


def _states(call: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(r["task_id"], r["state"]) for r in call]


async def _batcher() -> tuple[HeldManager, ReportBatcher, "asyncio.Task[None]"]:
    manager = HeldManager()
    batcher = ReportBatcher(manager, window=0.0, batch=1000, clock=FakeClock())  # type: ignore[arg-type]
    return manager, batcher, asyncio.create_task(batcher.run())


async def test_running_made_while_starting_is_queued_replaces_it_one_write() -> None:
    manager, batcher, running = await _batcher()
    try:
        first = asyncio.create_task(batcher.send("n1", Report("t0", TaskState.running)))  # a call in flight
        await manager.called.wait()
        starting = asyncio.create_task(batcher.send("n1", Report("t1", TaskState.starting)))
        await _settle()
        done = asyncio.create_task(batcher.send("n1", Report("t1", TaskState.running, "c1")))
        await _settle()
        manager.release.set()  # the first call ends; the queued reports go next, together
        await first
        await _settle()
        assert _states(manager.calls[1]) == [("t1", "running")]  # one report of t1: `starting` was replaced
        manager.release.set()
        assert (await starting)["state"] == "running" and (await done)["state"] == "running"
        assert len(manager.calls) == 2
    finally:
        running.cancel()


async def test_a_report_made_while_the_last_is_in_flight_goes_after_its_answer() -> None:
    manager, batcher, running = await _batcher()
    try:
        starting = asyncio.create_task(batcher.send("n1", Report("t1", TaskState.starting)))
        await manager.called.wait()  # `starting` is in flight
        manager.called.clear()
        done = asyncio.create_task(batcher.send("n1", Report("t1", TaskState.running, "c1")))
        await _settle()
        assert len(manager.calls) == 1  # `running` waits for the call in flight
        manager.release.set()
        assert (await starting)["state"] == "starting"
        await manager.called.wait()
        assert _states(manager.calls[1]) == [("t1", "running")]
        manager.release.set()
        assert (await done)["state"] == "running"
    finally:
        running.cancel()


async def test_a_report_that_would_take_a_queued_one_backwards_does_not_replace_it() -> None:
    manager, batcher, running = await _batcher()
    try:
        first = asyncio.create_task(batcher.send("n1", Report("t0", TaskState.running)))
        await manager.called.wait()
        manager.called.clear()
        ahead = asyncio.create_task(batcher.send("n1", Report("t1", TaskState.running, "c1")))
        await _settle()
        behind = asyncio.create_task(batcher.send("n1", Report("t1", TaskState.starting)))
        ended = asyncio.create_task(batcher.send("n1", Report("t2", TaskState.starting)))
        await _settle()
        failed = asyncio.create_task(batcher.send("n1", Report("t2", TaskState.failed, error="exit 1")))
        await _settle()
        manager.release.set()
        await first
        await manager.called.wait()
        assert _states(manager.calls[1]) == [("t1", "running"), ("t2", "failed")]  # an end always replaces
        manager.release.set()
        assert [(await f)["state"] for f in (ahead, behind, ended, failed)] == ["running", "running", "failed", "failed"]
    finally:
        running.cancel()
