"""A lone agent speaks the fleet's protocol (a fleet of one) to a real manager; its time is a fake clock.

The manager is real (SQLite store, uvicorn, HTTP on loopback) and runs on
real time; the agent's waits (registration back-off, heartbeat interval,
reconcile poll) are on a `FakeClock` the test moves, so each step happens
when the test says, never because the machine was fast or slow.
"""

import asyncio
import time
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from corral.agent.clock import FakeClock
from corral.agent.daemon import Agent, EngineFactory
from corral.agent.engines.hollow import HollowTiming
from corral.agent.link import LinkSettings, ManagerLink
from corral.agent.settings import AgentSettings
from corral.client import ApiError
from corral.manager.cluster import load_or_create_token
from corral.pki import load_or_create_ca
from tests.tls import admin_headers, verify
from corral.manager.context import ManagerContext
from corral.manager.server import Manager
from corral.manager.settings import ManagerSettings
from corral.model import Resources, Task

COMPOSE = """
services:
  web:
    image: corral-demo:latest
    deploy: {replicas: 3}
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _settings(url: str, token: str) -> AgentSettings:
    return AgentSettings(
        manager_url=url, name="solo", address="127.0.0.1", token=token, engine="hollow",
        resources=Resources(cpus=4, memory=8 << 30), poll_interval=10.0, long_poll=5.0,
    )


async def _until(check: Callable[[], Awaitable[Any]], what: str, within: float = 20.0) -> Any:
    """Poll the real manager (real time) until `check` is truthy: the manager is not on the fake clock."""
    deadline = asyncio.get_running_loop().time() + within
    while not (result := await check()):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)
    return result


@pytest.fixture
async def manager(tmp_path: Path) -> AsyncIterator[tuple[Manager, ManagerContext]]:
    running = Manager(ManagerSettings(data_dir=tmp_path, listen_port=_free_port(), node_lease=30.0))
    ctx = await running.start()
    yield running, ctx
    await running.stop()


async def test_registration_waits_for_the_manager_with_back_off(tmp_path: Path) -> None:
    clock = FakeClock()
    settings = ManagerSettings(data_dir=tmp_path, listen_port=_free_port())
    token = load_or_create_token(tmp_path, load_or_create_ca(tmp_path, time.time()).certificate)  # the manager finds both
    agent = Agent(_settings(settings.url, token), EngineFactory("hollow"), clock=clock)
    starting = asyncio.create_task(agent.start())
    try:
        await clock.sleeping(1)  # nothing listens yet: the first attempt failed, the agent waits 0.5 s
        clock.advance(0.5)
        await clock.sleeping(1)  # the second failed too: now it waits 1 s
        clock.advance(0.5)
        await asyncio.sleep(0.05)
        assert clock.sleepers == 1 and not agent.registered.is_set()  # half way through the back-off

        manager = Manager(settings)
        await manager.start()
        try:
            clock.advance(0.5)
            await asyncio.wait_for(starting, 10)
            assert agent.registered.is_set()
            async with httpx.AsyncClient(base_url=settings.url, verify=verify(settings.data_dir), headers=admin_headers(settings.data_dir)) as api:
                nodes = (await api.get("/v1/nodes")).json()  # an admin's look: a node's identity reads nothing outside /v1/agent
            assert [n["name"] for n in nodes] == ["solo"]
        finally:
            await agent.stop()
            await manager.stop()
    finally:
        starting.cancel()


async def test_registration_gives_up_after_its_patience(tmp_path: Path) -> None:
    clock = FakeClock()
    agent = Agent(_settings(f"http://127.0.0.1:{_free_port()}", "t"), EngineFactory("hollow"), clock=clock)
    starting = asyncio.create_task(agent.start())
    try:
        for delay in (0.5, 1, 2, 4, 5, 5, 5, 5, 5):  # 32.5 s: past the 30 s of patience
            await clock.sleeping(1)
            clock.advance(delay)
        with pytest.raises(ApiError, match="cannot reach the manager"):
            await asyncio.wait_for(starting, 5)
    finally:
        await agent.client.close()


async def test_a_wrong_token_is_refused_at_once(manager: tuple[Manager, ManagerContext]) -> None:
    agent = Agent(_settings(manager[0].settings.url, "wrong"), EngineFactory("hollow"), clock=FakeClock())
    with pytest.raises(ApiError) as refused:
        await asyncio.wait_for(agent.start(), 10)  # no retry: the fake clock is never moved
    assert refused.value.status == 401
    await agent.client.close()


async def test_a_lone_agent_runs_its_tasks_and_joins_again_once_forgotten(manager: tuple[Manager, ManagerContext]) -> None:
    clock = FakeClock()
    running, ctx = manager
    agent = Agent(_settings(running.settings.url, ctx.join_token), EngineFactory("hollow", HollowTiming(0.01, 0.02)), clock=clock)
    await agent.start()
    async with httpx.AsyncClient(base_url=running.settings.url, timeout=30, verify=verify(running.settings.data_dir), headers=admin_headers(running.settings.data_dir)) as api:
        try:
            assert (await api.post("/v1/stacks/app/deploy", json={"compose": COMPOSE})).status_code == 200

            async def running() -> list[dict[str, Any]] | None:
                tasks = [t for t in (await api.get("/v1/services/app_web/tasks")).json() if t["desired_state"] == "running"]
                return tasks if len(tasks) == 3 and all(t["state"] == "running" for t in tasks) else None

            tasks = await _until(running, "3 running tasks")  # the watch brought them, the batched reports said so
            assert {t["node"] for t in tasks} == {"solo"}
            assert len(await agent.engine.list()) == 3  # type: ignore[union-attr]

            # The node is removed behind the agent's back: the next heartbeat is answered "unknown",
            # and the agent registers again, then takes its whole task list again.
            assert (await api.delete("/v1/nodes/solo", params={"force": "true"})).status_code == 200
            clock.advance(ctx.settings.heartbeat_interval)

            async def back() -> bool:
                return (await api.get("/v1/nodes/solo")).status_code == 200

            await _until(back, "the node to register again")
            # Its tasks were lost with the node and replaced; the agent runs the new ones, and only them.
            tasks_again = await _until(running, "the replacements running")
            assert not {t["id"] for t in tasks_again} & {t["id"] for t in tasks}
            live = {task_id for task_id, task in agent.tasks.items() if task.desired_state == "running"}
            assert live == {t["id"] for t in tasks_again}

            async def old_containers_gone() -> bool:
                clock.advance(agent.settings.poll_interval)  # the reconcile poll: lists the engine again
                return {c.task_id for c in await agent.engine.list()} == live  # type: ignore[union-attr]

            await _until(old_containers_gone, "the lost tasks' containers removed")
        finally:
            await agent.stop()


class ScriptedManager:
    """Answers the link's watch calls from a script (the real manager does not compact yet), and records them."""

    def __init__(self, answers: list[dict[str, Any] | ApiError]) -> None:
        self.answers = answers
        self.asked: list[dict[str, int]] = []
        self.hold = asyncio.Event()  # a call with no scripted answer waits for this (a long poll)

    async def request(self, method: str, path: str, *, json_body: Any = None, **_: Any) -> Any:
        if path == "/v1/agent/heartbeats":
            return await self.post(path, json_body)
        assert (method, path) == ("POST", "/v1/agent/watch")
        self.asked.append(dict(json_body["after"]))
        if not self.answers:
            await self.hold.wait()
            return {"revision": 0, "nodes": {}, "more": False}
        answer = self.answers.pop(0)
        if isinstance(answer, ApiError):
            raise answer
        return answer

    async def post(self, path: str, body: Any = None) -> Any:
        await self.hold.wait()  # heartbeats: not the point here


class Node:
    def __init__(self, name: str) -> None:
        self.name = name
        self.taken: list[tuple[bool, list[str], list[str]]] = []
        self.rejoined = 0

    def take_changes(self, full: bool, tasks: list[Task], removed: list[str]) -> None:
        self.taken.append((full, [t.id for t in tasks], removed))

    async def rejoin(self) -> None:
        self.rejoined += 1


def _entry(revision: int, full: bool, ids: list[str] = [], removed: list[str] = []) -> dict[str, Any]:
    task = {"service": "s", "slot": 1, "node": "n1", "state": "assigned", "created_at": 0, "updated_at": 0,
            "spec": {"name": "s", "image": "img"}}
    return {"revision": revision, "full": full, "tasks": [{**task, "id": i} for i in ids], "removed": removed}


async def _watching(manager: ScriptedManager, calls: int) -> None:
    await _until(lambda: asyncio.sleep(0, len(manager.asked) >= calls), f"watch call {calls}", within=5)


async def _one_node_long_polling() -> tuple[ScriptedManager, ManagerLink, Node]:
    """A link for node n1 whose first watch got its list (revision 9) and whose second is a long poll, out."""
    scripted = ScriptedManager([{"revision": 9, "nodes": {"n1": _entry(9, True, ["t1"])}, "more": False}])
    link = ManagerLink(scripted, long_poll=60, settings=LinkSettings.lone(), clock=FakeClock())  # type: ignore[arg-type]
    n1 = Node("n1")
    link.attach(n1)
    link.start()
    await _watching(scripted, 2)
    return scripted, link, n1


async def test_a_compacted_watch_makes_every_node_take_its_whole_list_again() -> None:
    scripted = ScriptedManager([
        {"revision": 7, "nodes": {"n1": _entry(7, True, ["t1"]), "n2": _entry(5, True)}, "more": False},
        ApiError("required revision 7 has been compacted; the oldest available is 40", status=410),
        {"revision": 41, "nodes": {"n1": _entry(41, True, ["t2"]), "n2": _entry(41, True)}, "more": False},
    ])
    link = ManagerLink(scripted, long_poll=5, settings=LinkSettings.lone(), clock=FakeClock())  # type: ignore[arg-type]
    n1, n2 = Node("n1"), Node("n2")
    link.attach(n1)
    link.attach(n2)
    link.start()
    try:
        await _watching(scripted, 4)
        assert scripted.asked == [{"n1": 0, "n2": 0}, {"n1": 7, "n2": 5}, {"n1": 0, "n2": 0}, {"n1": 41, "n2": 41}]
        assert n1.taken == [(True, ["t1"], []), (True, ["t2"], [])]  # the whole list, twice: nothing stale kept
        assert n2.taken == [(True, [], []), (True, [], [])]
    finally:
        await link.stop()


async def test_a_node_that_starts_over_does_not_wait_for_the_long_poll_out() -> None:
    scripted, link, n1 = await _one_node_long_polling()
    try:
        link.start_over("n1")  # (the node registered again: the manager may have lost what it saw)
        await _watching(scripted, 3)
        assert scripted.asked == [{"n1": 0}, {"n1": 9}, {"n1": 0}]
    finally:
        await link.stop()


async def test_failed_watch_calls_back_off_on_the_clock() -> None:
    clock = FakeClock()
    down = ApiError("cannot reach the manager")
    scripted = ScriptedManager([down, down, down, {"revision": 3, "nodes": {"n1": _entry(3, True)}, "more": False}])
    link = ManagerLink(scripted, long_poll=5, settings=LinkSettings.lone(), clock=clock)  # type: ignore[arg-type]
    link.attach(Node("n1"))
    link.start()
    try:
        for calls, delay in ((1, 0.5), (2, 1.0), (3, 2.0)):  # 0.5 s, doubling
            await _watching(scripted, calls)
            await clock.sleeping(1)
            clock.advance(delay - 0.01)
            assert clock.sleepers == 1 and len(scripted.asked) == calls  # not yet
            clock.advance(0.01)
        await _watching(scripted, 5)  # the answer, then at once the next call (a long poll)
        assert scripted.asked[3:] == [{"n1": 0}, {"n1": 3}]
    finally:
        await link.stop()


async def test_a_node_the_manager_had_marked_down_lists_its_tasks_afresh() -> None:
    scripted, link, n1 = await _one_node_long_polling()
    try:  # the long poll is out (maybe on a connection a partition broke)
        beats: list[list[str]] = []

        async def recovered(path: str, body: Any = None) -> Any:
            beats.append(body["nodes"])
            return {"unknown": [], "recovered": ["n1"]}

        scripted.post = recovered  # type: ignore[method-assign]
        await link.heartbeat(["n1"])
        await _watching(scripted, 3)  # asked again at once, for the whole list
        assert beats == [["n1"]] and scripted.asked == [{"n1": 0}, {"n1": 9}, {"n1": 0}]
        assert n1.rejoined == 0  # it is registered: nothing to join
    finally:
        await link.stop()
