"""The agent hears of its containers' changes from the engine instead of listing them every second.

`EventFollower` keeps a subscription open and says when to look again; the agent's reconcile loop lists on a
wake (an event, new tasks, an operation done) and otherwise only on the slow resync while the engine tells of
every change, on the fast timer while it cannot (or after a failed round). All on a fake clock.
"""

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx

from corral.agent.clock import FakeClock
from corral.agent.daemon import Agent, EngineFactory
from corral.agent.engines.base import ContainerInfo, EngineError
from corral.agent.engines.docker import DockerEngine
from corral.agent.engines.docker_api import EngineAPI
from corral.agent.engines.docker_events import EventFollower, event_container, event_filters
from corral.agent.engines.hollow import HollowEngine
from corral.agent.settings import AgentSettings


class ScriptedStream:
    """Each subscription takes the next script: a list of events (then the stream ends), or an error at once.
    A subscription past the script stays open with no events until `more` is put."""

    def __init__(self, scripts: list[list[str] | EngineError]) -> None:
        self.scripts = scripts
        self.subscriptions = 0
        self.more: asyncio.Queue[str] = asyncio.Queue()

    async def __call__(self, opened: Callable[[], None]) -> AsyncIterator[object]:
        self.subscriptions += 1
        if not self.scripts:
            opened()
            while True:
                yield await self.more.get()
        script = self.scripts.pop(0)
        if isinstance(script, EngineError):
            raise script
        opened()
        for event in script:
            yield event


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def lists_reach(engine: "CountingEngine", count: int) -> None:
    """Turn the event loop (not the clock) until the engine was listed `count` times."""
    for _ in range(200):
        if engine.lists >= count:
            await settle()
            assert engine.lists == count
            return
        await asyncio.sleep(0)
    raise AssertionError(f"listed {engine.lists} times, not {count}")


async def test_follower_wakes_on_every_event_and_heals_a_lost_stream_with_back_off() -> None:
    clock = FakeClock()
    stream = ScriptedStream([["die", "destroy"], EngineError("engine away"), EngineError("engine away")])
    follower = EventFollower(stream, clock)
    woken: list[bool] = []
    running = asyncio.create_task(follower.run(lambda: woken.append(follower.live)))
    try:
        await clock.sleeping(1)
        # opened (look once: changes while nobody listened), two events, then the stream ended: look again
        assert woken == [True, True, True, False] and not follower.live and follower.events == 2
        clock.advance(0.5)  # first back-off; the engine refuses: nothing to look at, a longer wait
        await clock.sleeping(1)
        assert stream.subscriptions == 2 and len(woken) == 4
        clock.advance(0.9)
        await settle()
        assert stream.subscriptions == 2  # 1 s now, not 0.5
        clock.advance(0.1)
        await clock.sleeping(1)
        clock.advance(2.0)  # third refusal waited 2 s; now the subscription holds
        await settle()
        assert stream.subscriptions == 4 and follower.live and woken[-1] is True
        stream.more.put_nowait("start")
        await settle()
        assert len(woken) == 6 and follower.events == 3
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
    assert not follower.live


def test_event_filters_name_only_this_agents_containers() -> None:
    filters = event_filters("c1", "n1")
    assert filters["type"] == ["container"]
    assert filters["label"] == ["corral.cluster=c1", "corral.node=n1"]
    assert {"start", "die", "destroy", "oom"} <= set(filters["event"])


class CountingEngine(HollowEngine):
    def __init__(self) -> None:
        super().__init__("n1")
        self.lists = 0
        self.live = False
        self.fail = False

    @property
    def following(self) -> bool:
        return self.live

    async def list(self) -> list[ContainerInfo]:
        self.lists += 1
        if self.fail:
            raise EngineError("engine away")
        return await super().list()


async def test_reconcile_loop_lists_on_wakes_and_the_slow_resync_while_the_engine_tells(tmp_path: Path) -> None:
    clock = FakeClock()
    settings = AgentSettings(
        manager_url="http://127.0.0.1:9", name="n1", address="127.0.0.1", token="t", engine="hollow",
        state_dir=tmp_path, poll_interval=1.0, resync_interval=30.0,
    )
    agent = Agent(settings, EngineFactory("hollow"), clock=clock)
    engine = CountingEngine()
    agent.engine = engine
    agent.take_changes(True, [], [])
    loop = asyncio.create_task(agent._reconcile_loop())
    try:
        await clock.sleeping(1)
        assert engine.lists == 1
        clock.advance(1.0)  # no events from the engine: the fast timer
        await clock.sleeping(1)
        assert engine.lists == 2

        engine.live = True
        clock.advance(1.0)  # the round that sees the engine telling; from now on only wakes and the resync
        await clock.sleeping(1)
        assert engine.lists == 3
        clock.advance(29.0)
        await settle()
        assert engine.lists == 3
        agent._wake.set()  # an engine event (the daemon gives `follow` this very callback)
        await lists_reach(engine, 4)
        clock.advance(30.0)
        await clock.sleeping(1)
        assert engine.lists == 5

        engine.fail = True  # a failed round is tried again on the fast timer, events or not
        agent._wake.set()
        await lists_reach(engine, 6)
        engine.fail = False
        clock.advance(1.0)
        await clock.sleeping(1)
        assert engine.lists == 7
        clock.advance(1.0)
        await settle()
        assert engine.lists == 7  # healthy again: back to the resync
    finally:
        loop.cancel()
        await asyncio.gather(loop, return_exceptions=True)
        await agent.client.close()


class ListingApi:
    """The engine the adapter lists with, over a mock transport: one listing, inspects counted."""

    def __init__(self, summaries: list[dict[str, Any]], inspects: dict[str, dict[str, Any]]) -> None:
        self.summaries = summaries
        self.inspects = inspects
        self.inspected: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/containers/json":
            return httpx.Response(200, json=self.summaries)
        container_id = request.url.path.split("/")[2]
        self.inspected.append(container_id)
        if container_id not in self.inspects:
            return httpx.Response(404, json={"message": f"No such container: {container_id}"})
        return httpx.Response(200, json=self.inspects[container_id])

    def engine(self, files_root: Path) -> DockerEngine:
        return DockerEngine("c1", "n1", api=EngineAPI(httpx.MockTransport(self)), files_root=files_root)


RUNNING = {
    "Id": "aaa", "State": "running", "Status": "Up 3 minutes", "Labels": {"corral.task": "t1"},
    "Ports": [
        {"PrivatePort": 8080, "Type": "tcp"},  # exposed only
        {"IP": "127.0.0.2", "PrivatePort": 9090, "PublicPort": 31001, "Type": "udp"},
        {"IP": "127.0.0.2", "PrivatePort": 80, "PublicPort": 31000, "Type": "tcp"},
        {"IP": "127.0.0.2", "PrivatePort": 80, "PublicPort": 31000, "Type": "tcp"},
    ],
    "NetworkSettings": {"Networks": {"corral-x": {"IPAddress": "10.99.0.5"}}},
}


def exited(container_id: str, code: int) -> dict[str, Any]:
    return {"Id": container_id, "State": "exited", "Status": f"Exited ({code}) 2 seconds ago", "Labels": {"corral.task": "t2"}}


def inspect(container_id: str, code: int, oom: bool = False) -> dict[str, Any]:
    return {
        "Id": container_id, "Config": {"Labels": {"corral.task": "t2"}},
        "State": {"Status": "exited", "Running": False, "ExitCode": code, "Error": "", "OOMKilled": oom},
        "NetworkSettings": {"Ports": {}, "Networks": {}},
    }


async def test_docker_listing_inspects_only_stopped_containers_once_per_status(tmp_path: Path) -> None:
    api = ListingApi([RUNNING, exited("bbb", 137), exited("ccc", 1)], {"bbb": inspect("bbb", 137, oom=True)})
    engine = api.engine(tmp_path)
    try:
        found = {info.id: info for info in await engine.list()}
        assert set(found) == {"aaa", "bbb"}  # ccc was removed between the listing and its inspect
        running = found["aaa"]
        assert running.running and running.task_id == "t1" and running.ip == "10.99.0.5"
        assert [(p.target, p.protocol, p.host_ip, p.host_port) for p in running.ports] == [
            (80, "tcp", "127.0.0.2", 31000), (9090, "udp", "127.0.0.2", 31001),
        ]
        assert not found["bbb"].running and found["bbb"].exit_code == 137 and found["bbb"].error == "killed: out of memory"
        assert sorted(api.inspected) == ["bbb", "ccc"]

        api.summaries = [RUNNING, exited("bbb", 137)]
        await engine.list()
        assert sorted(api.inspected) == ["bbb", "ccc"]  # known already: no inspect

        api.summaries = [RUNNING, exited("bbb", 0)]  # restarted by hand and ended again: looked at afresh
        api.inspects["bbb"] = inspect("bbb", 0)
        again = {info.id: info for info in await engine.list()}
        assert api.inspected.count("bbb") == 2 and again["bbb"].exit_code == 0 and again["bbb"].error == ""
    finally:
        await engine.close()


async def test_a_container_an_event_named_is_inspected_though_the_listing_still_shows_it_running(tmp_path: Path) -> None:
    api = ListingApi([RUNNING], {"aaa": {**inspect("aaa", 137), "Config": {"Labels": {"corral.task": "t1"}}}})
    engine = api.engine(tmp_path)
    try:
        engine._named.add(event_container('{"status": "die", "id": "aaa", "Actor": {"ID": "aaa"}}'))
        [died] = await engine.list()  # the engine's listing lags its event: the inspect tells the truth
        assert (died.task_id, died.running, died.exit_code) == ("t1", False, 137) and api.inspected == ["aaa"]
        [listed] = await engine.list()  # next time the listing alone again
        assert listed.running and api.inspected == ["aaa"]
    finally:
        await engine.close()


def test_event_container_reads_the_id_or_nothing() -> None:
    assert event_container('{"Type": "container", "Actor": {"ID": "bbb"}}') == "bbb"
    assert event_container("not json") == "" and event_container("[1]") == ""
