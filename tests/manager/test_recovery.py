"""Nodes recover by themselves, and the manager's own stalls declare nobody dead.

A real store (SQLite), cache, control loop and API app, driven by a fake clock:
no sleeping to make time pass, the controller's passes are run by hand.
"""

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from corral.manager.api.app import create_app
from tests.tls import new_admin_headers
from corral.manager.cache import StateCache
from corral.manager.cluster import Leases
from corral.manager.context import ManagerContext
from corral.manager.controller import Controller
from corral.manager.settings import ManagerSettings
from corral.manager.stalls import TICK, StallWatch
from corral.store import Store, open_store

LEASE, GRACE = 3.0, 2.0
WEB = "services:\n  web:\n    image: corral-demo:latest\n    deploy: {replicas: 2}\n"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float, watch: StallWatch | None = None) -> None:
        """Time passes; with `watch`, the event loop runs all along (the monitor ticks every TICK)."""
        if watch is None:
            self.now += seconds
            return
        end = self.now + seconds
        while self.now < end:
            self.now = min(end, self.now + TICK)
            watch.tick()


@dataclass
class Manager:
    clock: FakeClock
    store: Store
    cache: StateCache
    leases: Leases
    stalls: StallWatch
    controller: Controller
    api: httpx.AsyncClient
    token: str

    credential: str = ""  # the nodes' (they share one, as a fleet's do)

    async def agent(self, method: str, path: str, body: Any = None) -> Any:
        response = await self.api.request(method, path, json=body, headers={"Authorization": f"Bearer {self.credential}"})
        assert response.status_code == 200, response.text
        return response.json()

    async def register(self, name: str) -> None:
        body = {"name": name, "address": "10.0.0.1", "resources": {"cpus": 4, "memory": 1 << 33}}
        if self.credential:
            body["credential"] = self.credential
        response = await self.api.post("/v1/agent/register", json=body, headers={"Authorization": f"Bearer {self.token}"})
        assert response.status_code == 200, response.text
        self.credential = response.json()["credential"]

    async def heartbeat(self, *names: str) -> dict[str, list[str]]:
        return dict(await self.agent("POST", "/v1/agent/heartbeats", {"nodes": list(names)}))

    async def node_state(self, name: str) -> str:
        return str((await self.api.get(f"/v1/nodes/{name}")).json()["state"])

    async def tasks(self) -> list[dict[str, Any]]:
        return list((await self.api.get("/v1/services/app_web/tasks")).json())

    async def run_all_running(self) -> None:
        """Every placed task is reported running by its agent."""
        reports = [
            {"node": task["node"], "task_id": task["id"], "state": "running", "container_id": "c-" + task["id"]}
            for task in await self.tasks() if task["state"] == "assigned"
        ]
        if reports:
            await self.agent("POST", "/v1/agent/status", {"reports": reports})

    async def settle(self, passes: int = 4) -> None:
        for _ in range(passes):
            await self.controller.pass_once()


@pytest.fixture
async def manager(tmp_path: Path) -> AsyncIterator[Manager]:
    clock = FakeClock()
    settings = ManagerSettings(data_dir=tmp_path, node_lease=LEASE, node_grace=GRACE, stall_threshold=1.0)
    store = await open_store(settings.store)
    cache = StateCache(store)
    running = asyncio.create_task(cache.run())
    await cache.synced.wait()
    leases = Leases()
    stalls = StallWatch(leases, clock, settings.stall_threshold)
    ctx = ManagerContext(settings=settings, store=store, cache=cache, leases=leases, join_token="tok", cluster_id="c", clock=clock)
    controller = Controller(store, cache, leases, settings, clock=clock, stalls=stalls)
    headers = await new_admin_headers(store)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(ctx)), base_url="http://corral", headers=headers) as api:
        yield Manager(clock, store, cache, leases, stalls, controller, api, "tok")
    await cache.close()
    running.cancel()
    await asyncio.gather(running, return_exceptions=True)
    await store.close()


async def _two_nodes_one_task_each(m: Manager) -> dict[str, str]:
    await m.register("n1")
    await m.register("n2")
    deployed = await m.api.post("/v1/stacks/app/deploy", json={"compose": WEB})
    assert deployed.status_code == 200
    await m.settle()
    await m.run_all_running()
    await m.settle()
    tasks = await m.tasks()
    assert sorted(t["node"] for t in tasks) == ["n1", "n2"] and all(t["state"] == "running" for t in tasks)
    return {t["node"]: t["id"] for t in tasks}


async def _partition(m: Manager, cut: str, alive: str, seconds: float) -> None:
    """`cut` is not heard from for `seconds`; `alive` keeps beating; the manager runs all along."""
    for _ in range(int(seconds)):
        m.clock.advance(1.0, m.stalls)
        await m.heartbeat(alive)
        await m.settle(1)


async def test_a_node_declared_down_is_ready_again_at_its_first_heartbeat(manager: Manager) -> None:
    m = manager
    on = await _two_nodes_one_task_each(m)
    await _partition(m, "n1", "n2", LEASE + GRACE + 2)
    await m.settle()
    assert await m.node_state("n1") == "down"
    by_id = {t["id"]: t for t in await m.tasks()}
    assert by_id[on["n1"]]["state"] == "lost"
    replacement = [t for t in by_id.values() if t["state"] == "assigned"]
    assert [t["node"] for t in replacement] == ["n2"]  # replaced on the node still up

    # n1's agent reaches the manager again: one heartbeat brings its node back, and says so.
    reply = await m.heartbeat("n1")
    assert reply == {"unknown": [], "recovered": ["n1"]}
    assert await m.node_state("n1") == "ready"
    node = (await m.api.get("/v1/nodes/n1")).json()
    assert node["message"] == "" and node["health"] == "ok"

    # What its agent then lists: the lost task (its container is to be stopped and removed), nothing else live.
    listed = await m.agent("POST", "/v1/agent/watch", {"after": {"n1": 0}})
    entry = listed["nodes"]["n1"]
    assert entry["full"] and [(t["id"], t["state"]) for t in entry["tasks"]] == [(on["n1"], "lost")]

    # It stays ready while it beats, takes work again, and a second heartbeat is no recovery.
    for _ in range(int(LEASE + GRACE) + 2):
        m.clock.advance(1.0, m.stalls)
        await m.heartbeat("n1", "n2")
        await m.settle(1)
    assert await m.node_state("n1") == "ready"
    assert (await m.heartbeat("n1"))["recovered"] == []
    scaled = await m.api.post("/v1/services/app_web/scale", json={"replicas": 4})
    assert scaled.status_code == 200
    await m.settle()
    live = [t for t in await m.tasks() if t["desired_state"] == "running" and t["state"] not in ("lost", "shutdown")]
    assert len(live) == 4 and any(t["node"] == "n1" for t in live)


async def test_the_batched_heartbeat_brings_nodes_back_too(manager: Manager) -> None:
    m = manager
    await _two_nodes_one_task_each(m)
    m.clock.advance(LEASE + GRACE + 1, m.stalls)  # nobody beats: both go down
    await m.settle()
    assert [await m.node_state(n) for n in ("n1", "n2")] == ["down", "down"]
    reply = await m.agent("POST", "/v1/agent/heartbeats", {"nodes": ["n1", "n2", "ghost"]})
    assert reply == {"unknown": ["ghost"], "recovered": ["n1", "n2"]}
    assert [await m.node_state(n) for n in ("n1", "n2")] == ["ready", "ready"]
    again = await m.agent("POST", "/v1/agent/heartbeats", {"nodes": ["n1", "n2"]})
    assert again == {"unknown": [], "recovered": []}
    # both came back: the lost replicas are replaced on them
    await m.settle()
    live = [t for t in await m.tasks() if t["state"] == "assigned"]
    assert len(live) == 2


async def test_a_node_that_comes_back_is_not_declared_down_again_by_its_old_lease(manager: Manager) -> None:
    m = manager
    await _two_nodes_one_task_each(m)
    m.clock.advance(LEASE + GRACE + 1, m.stalls)
    await m.settle()
    await m.heartbeat("n1")
    for _ in range(3):  # passes right after the heartbeat, before the next one
        m.clock.advance(0.5, m.stalls)
        await m.settle(1)
    assert await m.node_state("n1") == "ready"


async def test_a_stall_of_the_manager_declares_nobody_dead(manager: Manager) -> None:
    m = manager
    await _two_nodes_one_task_each(m)
    m.clock.advance(1.0, m.stalls)
    await m.heartbeat("n1", "n2")
    # The manager does not run for 30 s (SIGSTOP, swap, a long piece of work on the loop):
    # its monitor does not tick, and the heartbeats sent meanwhile were not heard.
    m.clock.advance(30.0)
    await m.settle()  # the first pass after the stall: the controller asks the monitor first
    assert [await m.node_state(n) for n in ("n1", "n2")] == ["ready", "ready"]
    assert m.stalls.stalls == 1 and m.stalls.lost == pytest.approx(30.0 - TICK)
    assert all(t["state"] == "running" for t in await m.tasks())

    # The agents' heartbeats arrive again, except n2's: it goes down a lease and grace later, not sooner.
    await m.heartbeat("n1")
    m.clock.advance(LEASE + GRACE - 0.5, m.stalls)  # n2 was last heard as the stall began
    await m.heartbeat("n1")
    await m.settle()
    assert await m.node_state("n2") == "ready"
    m.clock.advance(0.6, m.stalls)
    await m.heartbeat("n1")
    await m.settle()
    assert (await m.node_state("n1"), await m.node_state("n2")) == ("ready", "down")


async def test_without_the_monitor_the_same_stall_declares_every_node_down(manager: Manager) -> None:
    """What the monitor prevents (so the test above tests something)."""
    m = manager
    await _two_nodes_one_task_each(m)
    m.controller.stalls = None
    m.clock.advance(30.0)
    await m.settle()
    assert [await m.node_state(n) for n in ("n1", "n2")] == ["down", "down"]


def test_stall_watch_extends_every_lease_by_the_stall_only() -> None:
    clock = FakeClock()
    leases = Leases()
    watch = StallWatch(leases, clock, threshold=0.5)
    assert watch.tick() == 0.0  # the first tick has nothing to compare with
    leases.renew("a", clock.now - 2.0)
    leases.renew("b", clock.now)
    clock.advance(0.4, watch)  # a loop that runs: no stall
    clock.now += 0.45  # a lag under the threshold is no stall
    assert watch.tick() == 0.0
    assert leases.last == {"a": 999_998.0, "b": 1_000_000.0}
    clock.now += 8.0
    assert watch.tick() == pytest.approx(8.0 - TICK)
    assert leases.last["a"] == pytest.approx(999_998.0 + 8.0 - TICK)
    assert leases.last["b"] == pytest.approx(1_000_000.0 + 8.0 - TICK)
    assert (watch.stalls, watch.tick()) == (1, 0.0)
