"""The hollow driver: pretends to run containers, for scale tests (as Kubernetes' kubemark does).

It starts nothing. It keeps a `ContainerInfo` per task in memory and answers
like a fast engine would: a start, stop or remove takes a short random delay
(50-200 ms by default), then the container is running, exited or gone.
Published ports get made-up host ports on the node's address. Everything the
agent does around it (register, lease, watch, report) is real, so a process
of hollow nodes loads the manager exactly as real nodes would.
"""

import asyncio
import itertools
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from corral.agent.engines.base import ContainerInfo, Engine, EngineError, TaskFile
from corral.model import PublishedPort, Task

FIRST_HOST_PORT = 30000


@dataclass(frozen=True)
class HollowTiming:
    """How long each pretend operation takes: uniform in [low, high] seconds."""

    low: float = 0.05
    high: float = 0.2

    def __post_init__(self) -> None:
        if not 0 <= self.low <= self.high:
            raise ValueError(f"hollow delay must satisfy 0 <= low <= high, got {self.low}..{self.high}")

    @staticmethod
    def parse_ms(text: str) -> "HollowTiming":
        """From "LOW-HIGH" (or one value) in milliseconds, e.g. "50-200"."""
        low, _, high = text.partition("-")
        try:
            low_ms = float(low)
            high_ms = float(high) if high else low_ms
        except ValueError:
            raise ValueError(f"invalid hollow delay {text!r}: expected LOW-HIGH in milliseconds, e.g. 50-200") from None
        return HollowTiming(low_ms / 1000, high_ms / 1000)


class HollowEngine(Engine):
    def __init__(self, node: str, timing: HollowTiming = HollowTiming(), rng: random.Random | None = None) -> None:
        self.node = node
        self.timing = timing
        self._rng = rng or random.Random()
        self._containers: dict[str, ContainerInfo] = {}  # by container id
        self._host_ports = itertools.count(FIRST_HOST_PORT)

    async def _delay(self) -> None:
        await asyncio.sleep(self._rng.uniform(self.timing.low, self.timing.high))

    async def list(self) -> list[ContainerInfo]:
        return list(self._containers.values())

    async def start(
        self, task: Task, address: str, hosts: Mapping[str, str] | None = None, files: Sequence[TaskFile] = ()
    ) -> ContainerInfo:
        """Pretend to start the task; its `files` are never fetched for a hollow node (takes_files is False)."""
        container_id = f"hollow-{task.id}"
        existing = self._containers.get(container_id)
        if existing is not None and existing.running:
            return existing
        await self._delay()
        ports = [
            PublishedPort(
                target=p.target, protocol=p.protocol, host_ip=address, host_port=p.published or next(self._host_ports)
            )
            for p in task.spec.ports
        ]
        info = ContainerInfo(id=container_id, task_id=task.id, running=True, ports=ports)
        self._containers[container_id] = info
        return info

    async def stop(self, container_id: str, grace: float) -> ContainerInfo:
        info = self._containers.get(container_id)
        if info is None:
            raise EngineError(f"no container {container_id} on hollow node {self.node}")
        if info.running:
            await self._delay()
            info = replace(info, running=False, exit_code=0)
            self._containers[container_id] = info
        return info

    async def remove(self, container_id: str) -> None:
        if container_id in self._containers:
            await self._delay()
            self._containers.pop(container_id, None)

    def crash(self, task_id: str, exit_code: int = 1) -> None:
        """Make a task's container exit as if its process died (for tests)."""
        for container_id, info in self._containers.items():
            if info.task_id == task_id:
                self._containers[container_id] = replace(info, running=False, exit_code=exit_code)
