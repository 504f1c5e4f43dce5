"""A node's use from its containers' figures: CPU as a rate between two samples, memory summed, samples kept
as bases for later asks (a fake engine whose counters the test moves, and a fake clock)."""

import asyncio

import pytest

from corral.agent.clock import FakeClock
from corral.agent.engines.base import ContainerInfo, ContainerStats, EngineError
from corral.agent.node_usage import NodeUsage, Sample, pick_base, use_between
from tests.agent.test_node_listener import FakeEngine


class CountingEngine(FakeEngine):
    """Containers whose CPU seconds and memory the test sets; `silent` ones never answer, `gone` ones raise."""

    def __init__(self) -> None:
        super().__init__()
        self.cpu: dict[str, float] = {}
        self.memory: dict[str, int] = {}
        self.stopped: set[str] = set()
        self.silent: set[str] = set()
        self.gone: set[str] = set()
        self.asked_stats = 0

    async def list(self) -> list[ContainerInfo]:
        return [ContainerInfo(id=c, task_id=f"t-{c}", running=c not in self.stopped) for c in self.cpu]

    async def stats(self, container_id: str) -> ContainerStats:
        self.asked_stats += 1
        if container_id in self.silent:
            await asyncio.Event().wait()
        if container_id in self.gone:
            raise EngineError("container not found")
        return ContainerStats(cpu_seconds=self.cpu[container_id], memory_working_set=self.memory[container_id], rx_bytes=0, tx_bytes=0)


def _stats(cpu: float, memory: int = 0) -> ContainerStats:
    return ContainerStats(cpu_seconds=cpu, memory_working_set=memory, rx_bytes=0, tx_bytes=0)


def test_cpu_counts_only_containers_in_both_samples_and_memory_is_the_latest() -> None:
    before = Sample(10.0, {"a": _stats(5.0, 100), "b": _stats(1.0, 50), "gone": _stats(9.0, 10)}, 0)
    now = Sample(12.0, {"a": _stats(6.0, 200), "b": _stats(1.5, 70), "new": _stats(30.0, 5)}, 1)
    use = use_between(before, now)
    assert use.cpu_cores == pytest.approx(0.75)  # (1.0 + 0.5) / 2 s; the new container's 30 s are not a jump
    assert (use.memory_working_set, use.containers, use.unmeasured, use.window) == (275, 3, 1, 2.0)
    restarted = Sample(13.0, {"a": _stats(0.1, 1)}, 0)  # a counter that went back adds nothing, not a negative
    assert use_between(now, restarted).cpu_cores == 0.0


def test_the_base_is_the_newest_sample_old_enough_and_not_too_old() -> None:
    samples = [Sample(t, {}, 0) for t in (1.0, 9.0, 9.8)]
    assert pick_base(samples, 10.0, 0.5, 30.0) is samples[1]
    assert pick_base(samples, 45.0, 0.5, 30.0) is None  # all older than max_age
    assert pick_base(samples[2:], 10.0, 0.5, 30.0) is None  # too young to measure from


async def test_a_first_ask_samples_twice_and_later_asks_measure_from_the_kept_sample() -> None:
    clock, engine = FakeClock(), CountingEngine()
    engine.cpu, engine.memory = {"a": 10.0, "b": 2.0}, {"a": 1000, "b": 24}
    usage = NodeUsage(lambda: engine, clock, min_window=0.5, max_age=30.0)

    first = asyncio.create_task(usage.now())
    await clock.sleeping(1)  # the first sample taken, waiting out the window
    engine.cpu = {"a": 10.25, "b": 2.0}
    clock.advance(0.5)
    use = await first
    assert (use.cpu_cores, use.window, use.memory_working_set, use.containers) == (0.5, 0.5, 1024, 2)

    clock.advance(2.0)
    engine.cpu["b"] = 4.0  # b used 1 core for these 2 s, a nothing
    asked = engine.asked_stats
    use = await usage.now()  # no wait: measured from the last sample
    assert (use.cpu_cores, use.window) == (1.0, 2.0)
    assert engine.asked_stats == asked + 2

    clock.advance(0.1)  # asked again right away: measured from an older base, not over 0.1 s
    use = await usage.now()
    assert use.window == pytest.approx(2.1)

    clock.advance(60.0)  # every kept sample too old: sample twice again
    again = asyncio.create_task(usage.now())
    await clock.sleeping(1)
    clock.advance(0.5)
    assert (await again).window == 0.5


async def test_stopped_silent_and_vanished_containers() -> None:
    clock, engine = FakeClock(), CountingEngine()
    engine.cpu, engine.memory = {"a": 1.0, "off": 3.0, "slow": 1.0, "gone": 1.0}, {"a": 8, "off": 1, "slow": 1, "gone": 1}
    engine.stopped, engine.silent, engine.gone = {"off"}, {"slow"}, {"gone"}
    usage = NodeUsage(lambda: engine, clock, min_window=0.5, timeout=2.0)
    ask = asyncio.create_task(usage.now())
    for step in (2.0, 0.5, 2.0):  # the silent one's time is up; the window; the silent one's time again
        await clock.sleeping(1)
        clock.advance(step)
    use = await ask
    assert (use.containers, use.unmeasured, use.memory_working_set) == (1, 2, 8)  # the stopped one is not counted at all


async def test_no_engine_yet_is_a_lookup_error() -> None:
    with pytest.raises(LookupError, match="engine is not ready"):
        await NodeUsage(lambda: None, FakeClock()).now()
