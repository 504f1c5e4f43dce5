"""The autoscaling loop on a real SQLite store and cache with a fake clock and fake CPU counters:
it samples when due, scales through the service write with its decision, and leaves a user's scale alone."""

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from controller_harness import FakeClock
from corral.manager import keys
from corral.manager.autoscaler import Autoscaler
from corral.manager.cache import StateCache
from corral.manager.events import describe
from corral.manager.writes import dump
from corral.manager.node_streams import NodeUnreachable
from corral.model import NodeState, Service, Task
from corral.model.autoscale import AutoscaleSpec
from corral.model.resources import Resources
from corral.store.sqlite import SqliteStore
from factories import make_node, make_service, make_task

SPEC = AutoscaleSpec(min=1, max=4, target_cpu=50, interval=10, scale_down_stabilization=60)


class Cluster:
    def __init__(self, store: SqliteStore, cache: StateCache, clock: FakeClock) -> None:
        self.store, self.cache, self.clock = store, cache, clock
        self.cpu: dict[str, float] = {}  # task id -> CPU seconds so far
        self.rate: dict[str, float] = {}  # task id -> cores burnt
        self.autoscaler = Autoscaler(store, cache, self.read, clock)

    async def read(self, task: Task) -> float | None:
        return self.cpu.get(task.id)

    async def put(self, service: Service, tasks: int) -> None:
        await self.store.put(keys.service_key(service.name), dump(service))
        for slot in range(1, tasks + 1):
            task = make_task(service, slot, container_id=f"c{slot}")
            await self.store.put(keys.task_key(task.id), dump(task))
            self.cpu.setdefault(task.id, 0.0)
        await self._caught_up()

    async def _caught_up(self) -> None:
        revision = await self.store.revision()
        while self.cache.revision < revision:
            await asyncio.sleep(0.01)

    async def tick(self, seconds: float) -> Service:
        """Time passes (CPU burnt at the rates), then one pass of the loop."""
        self.clock.advance(seconds)
        for task, rate in self.rate.items():
            self.cpu[task] += rate * seconds
        await self.autoscaler.step()
        await self._caught_up()
        found = self.cache.services.get("web")
        assert found is not None
        return found.obj


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    store = await SqliteStore(tmp_path / "store.db").open()
    cache = StateCache(store)
    running = asyncio.create_task(cache.run())
    await cache.synced.wait()
    try:
        yield Cluster(store, cache, FakeClock())
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        await cache.close()
        await store.close()


async def test_scales_up_when_due_then_down_after_the_window_with_each_decision_an_event(cluster: Cluster) -> None:
    service = make_service("web", replicas=2, autoscale=SPEC, reservations=Resources(cpus=0.5))
    await cluster.put(service, 2)
    cluster.rate = {"web.1": 0.5, "web.2": 0.5}  # 100% of the reservation each, twice the target
    assert (await cluster.tick(0)).autoscale_status is None  # the first sample: no rate yet
    assert (await cluster.tick(5)).spec.replicas == 2  # not due before the interval
    scaled = await cluster.tick(5)
    assert scaled.spec.replicas == 4 and scaled.autoscale_status is not None
    assert scaled.autoscale_status.usage == pytest.approx(100.0)
    assert scaled.autoscale_status.reason == "cpu 100% of target 50%: scale up 2 -> 4"
    await cluster.put(scaled, 4)
    cluster.rate = {}  # idle
    for _ in range(5):  # idle samples at t=20..60: the 4 recommended at t=10 holds within the 60 s window
        assert (await cluster.tick(10)).spec.replicas == 4
    down = await cluster.tick(10)  # t=70: it left the window
    assert down.spec.replicas == 1 and down.autoscale_status is not None
    assert "scale down 4 -> 1" in down.autoscale_status.reason

    events = [e async for e in _events(cluster)]
    assert [e.message.split(":")[0] for e in events if e.action == "autoscale"] == [
        "service web autoscaled 2 -> 4", "service web autoscaled 4 -> 1",
    ]


async def _events(cluster: Cluster) -> AsyncIterator:  # type: ignore[type-arg]
    watch = cluster.store.watch(keys.SERVICES, after=0)
    revision = await cluster.store.revision()
    async for change in watch:
        event = describe(change)
        if event is not None:
            yield event
        if change.revision >= revision:
            return


async def test_a_users_scale_since_the_sample_wins_and_no_figures_keep_the_replicas(cluster: Cluster) -> None:
    service = make_service("web", replicas=2, autoscale=SPEC)
    await cluster.put(service, 2)
    await cluster.tick(0)
    cluster.cpu.clear()  # the agents answer nothing
    kept = await cluster.tick(10)
    assert kept.spec.replicas == 2 and kept.autoscale_status is not None and "no CPU figures" in kept.autoscale_status.reason
    cluster.cpu = {"web.1": 0.0, "web.2": 0.0}
    await cluster.tick(10)
    cluster.rate = {"web.1": 2.0, "web.2": 2.0}
    user = kept.model_copy(update={"spec": kept.spec.model_copy(update={"replicas": 3})})

    original = cluster.autoscaler.read_cpu

    async def user_scales_meanwhile(task: Task) -> float | None:
        found = cluster.cache.services.get("web")
        if found is not None and found.obj.spec.replicas == 2:
            await cluster.store.put(keys.service_key("web"), dump(user))
            await cluster._caught_up()
        return await original(task)

    cluster.autoscaler.read_cpu = user_scales_meanwhile
    assert (await cluster.tick(10)).spec.replicas == 3  # decided on 2 replicas: not written over the user's 3


async def test_a_requests_per_second_target_reads_every_ready_nodes_mesh(cluster: Cluster) -> None:
    spec = AutoscaleSpec(min=1, max=6, target_requests_per_second=10, interval=10, scale_down_stabilization=20)
    connections = {"n1": {"web": 0, "other": 500}, "n2": {"web": 0}, "n3": {"web": 0}}
    asked: list[str] = []

    async def read_mesh(node: str) -> dict[str, int]:
        asked.append(node)
        if node == "n2":
            raise NodeUnreachable("node n2: connection refused")
        return connections[node]

    cluster.autoscaler.read_mesh = read_mesh
    for node in ("n1", "n2", "n3"):
        await cluster.store.put(keys.node_key(node), dump(make_node(node)))
    await cluster.store.put(keys.node_key("down"), dump(make_node("down", state=NodeState.down)))
    await cluster.put(make_service("web", replicas=1, autoscale=spec), 1)
    await cluster.tick(0)
    assert sorted(asked) == ["n1", "n2", "n3"]  # ready nodes only
    connections["n1"]["web"] = 200  # 20/s on n1
    connections["n3"]["web"] = 100  # 10/s on n3: 30/s for one replica, three times the target
    connections["n1"]["other"] = 10_000  # another service's traffic does not count
    scaled = await cluster.tick(10)
    assert scaled.spec.replicas == 2 and scaled.autoscale_status is not None  # at most double per step
    assert scaled.autoscale_status.metric == "requests_per_second" and scaled.autoscale_status.usage == pytest.approx(30.0)
    assert scaled.autoscale_status.reason.startswith("30.0 requests/s per replica (mesh connections) of target 10/s: scale up 1 -> 2")
    await cluster.put(scaled, 2)
    connections["n1"]["web"] += 200
    connections["n3"]["web"] += 100  # still 30/s: 15/s on each of 2 replicas -> 3
    assert (await cluster.tick(10)).spec.replicas == 3
    assert (await cluster.tick(10)).spec.replicas == 3  # idle: the 3 recommended 10 s ago holds within the 20 s window
    down = await cluster.tick(10)
    assert down.spec.replicas == 1 and down.autoscale_status is not None
    assert down.autoscale_status.reason.startswith("0.0 requests/s per replica")
    events = [e.message for e in [e async for e in _events(cluster)] if e.action == "autoscale"]
    assert [m.split(":")[0] for m in events] == [
        "service web autoscaled 1 -> 2", "service web autoscaled 2 -> 3", "service web autoscaled 3 -> 1",
    ]
    assert "30.0 requests/s per replica" in events[0]


async def test_without_a_mesh_reader_a_requests_target_keeps_the_replicas(cluster: Cluster) -> None:
    spec = AutoscaleSpec(max=6, target_requests_per_second=10, interval=10)
    await cluster.put(make_service("web", replicas=2, autoscale=spec), 2)
    await cluster.tick(0)
    kept = await cluster.tick(10)
    assert kept.spec.replicas == 2 and kept.autoscale_status is not None
    assert "no request figures yet" in kept.autoscale_status.reason
