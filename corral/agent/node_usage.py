"""What a node's containers use together now: CPU cores and memory (`corral node top`, the UI's cluster page).

Summed over this agent's running containers, from the engine's stats (one sample of each, concurrently,
`timeout` at most each), not read from the host's /proc: the nodes of `corral up` share one host, and
the host's figures would show each of them the whole machine's load. What the node's own processes
(the agent, the engine) use is not counted; the node's capacity is what it declared at registration.

CPU is a rate: the growth of each container's CPU seconds between two samples over the time between
them, summed over the containers in both (one that started or stopped meanwhile adds no jump). The
agent keeps its last few samples: an ask takes a new one and measures from the newest kept sample at
least `min_window` old and at most `max_age`; without one (the first ask, or none for a while) it
samples twice, `min_window` apart. Kept samples are half a window apart at least, so readers asking
often (the CLI and the UI at once) always find a base. 
Memory is the sum of the working sets (usage less inactive page cache) of the last sample.
"""

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from corral.agent.clock import Clock
from corral.agent.engines.base import ContainerStats, Engine

KEPT = 4  # samples kept as bases of later asks


@dataclass(frozen=True)
class Sample:
    time: float  # the clock's (monotonic) seconds
    figures: dict[str, ContainerStats]  # container id -> its stats, for the running containers that answered
    unmeasured: int  # running containers that gave no figures in time


@dataclass(frozen=True)
class NodeUse:
    cpu_cores: float  # CPU seconds used per second, over `window`
    memory_working_set: int  # bytes
    containers: int  # running containers measured
    unmeasured: int  # running containers the engine gave no figures for
    window: float  # seconds the CPU figure spans


def use_between(before: Sample, now: Sample) -> NodeUse:
    """The node's use from two samples (pure)."""
    window = now.time - before.time
    grown = sum(
        max(0.0, now.figures[c].cpu_seconds - before.figures[c].cpu_seconds) for c in now.figures.keys() & before.figures.keys()
    )
    return NodeUse(
        cpu_cores=round(grown / window, 4) if window > 0 else 0.0,
        memory_working_set=sum(f.memory_working_set for f in now.figures.values()),
        containers=len(now.figures),
        unmeasured=now.unmeasured,
        window=round(window, 3),
    )


def pick_base(samples: list[Sample], now: float, min_window: float, max_age: float) -> Sample | None:
    """The newest sample at least `min_window` and at most `max_age` old, if any (pure)."""
    for sample in reversed(samples):
        if min_window <= now - sample.time <= max_age:
            return sample
    return None


class NodeUsage:
    def __init__(
        self, engine: Callable[[], Engine | None], clock: Clock, min_window: float = 0.5, max_age: float = 30.0,
        timeout: float = 2.0,
    ) -> None:
        self._engine = engine
        self._clock = clock
        self.min_window = min_window
        self.max_age = max_age
        self.timeout = timeout
        self._samples: list[Sample] = []

    async def now(self) -> NodeUse:
        """The node's use now; LookupError while the agent has no engine yet."""
        current = await self._sample()
        base = pick_base(self._samples, current.time, self.min_window, self.max_age)
        if base is None:
            base = current
            await self._clock.sleep(self.min_window)
            current = await self._sample()
        self._keep(current)
        return use_between(base, current)

    def _keep(self, sample: Sample) -> None:
        """Keep `sample` unless the newest kept one is less than half a window older (asks in a burst keep
        older bases), and the last KEPT within `max_age`."""
        if self._samples and sample.time - self._samples[-1].time < self.min_window / 2:
            return
        self._samples = [s for s in self._samples if sample.time - s.time <= self.max_age][-(KEPT - 1):] + [sample]

    async def _sample(self) -> Sample:
        engine = self._engine()
        if engine is None:
            raise LookupError("the agent is starting: its engine is not ready")
        running = [c.id for c in await engine.list() if c.running]

        async def one(container: str) -> ContainerStats | None:
            try:
                return await self._clock.wait_for(engine.stats(container), self.timeout)
            except Exception:  # noqa: BLE001 - gone meanwhile, or too slow: counted as unmeasured
                return None

        got = await asyncio.gather(*(one(c) for c in running))
        figures = {c: stats for c, stats in zip(running, got) if stats is not None}
        return Sample(self._clock.now(), figures, len(running) - len(figures))
