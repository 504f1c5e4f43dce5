"""The agent's volume remover: removes what the manager marked, reports only what it removed, retries the rest.

The manager and the engine are stand-ins (this isolates the loop); the real path runs in tests/e2e/test_volumes.py.
"""

import asyncio
from typing import Any

from corral.agent.clock import FakeClock
from corral.agent.engines.base import EngineError
from corral.agent.engines.hollow import HollowEngine, HollowTiming
from corral.agent.volumes import VolumeRemover
from corral.client import ApiError


class Manager:
    """Answers the two calls the remover makes, like the manager's routes."""

    def __init__(self, marked: list[str]) -> None:
        self.marked = list(marked)
        self.reports: list[list[str]] = []
        self.down = False

    async def get(self, path: str, **_: Any) -> Any:
        if self.down:
            raise ApiError("cannot reach the manager")
        assert path == "/v1/agent/n1/volumes"
        return [{"name": name, "node": "n1", "removing": True} for name in self.marked]

    async def post(self, path: str, body: Any = None) -> Any:
        assert path == "/v1/agent/n1/volumes/removed"
        self.reports.append(body["names"])
        self.marked = [name for name in self.marked if name not in body["names"]]
        return body


class Engine(HollowEngine):
    def __init__(self, in_use: set[str]) -> None:
        super().__init__("n1", HollowTiming())
        self.in_use = in_use
        self.removed: list[str] = []

    async def remove_volume(self, name: str) -> None:
        if name in self.in_use:
            raise EngineError(f"cannot remove volume {name}: volume is in use")
        self.removed.append(name)


async def test_removes_what_is_marked_and_retries_what_is_in_use() -> None:
    manager, engine, clock = Manager(["a.1", "b.1"]), Engine({"b.1"}), FakeClock()
    remover = VolumeRemover(manager, "n1", engine, clock, 2.0)  # type: ignore[arg-type]
    assert await remover.once() == ["a.1"]
    assert manager.reports == [["a.1"]] and manager.marked == ["b.1"]
    engine.in_use.clear()  # its container is gone
    loop = asyncio.create_task(remover.run())
    await clock.sleeping(1)
    assert manager.reports == [["a.1"], ["b.1"]] and manager.marked == []
    manager.marked = ["c.1"]  # marked later: taken at the next round, not before
    for _ in range(5):
        await asyncio.sleep(0)
    assert engine.removed == ["a.1", "b.1"]
    clock.advance(2.0)
    for _ in range(5):
        await asyncio.sleep(0)
    assert engine.removed == ["a.1", "b.1", "c.1"] and manager.reports[-1] == ["c.1"]
    loop.cancel()


async def test_a_manager_away_costs_a_round_nothing_else() -> None:
    manager, engine = Manager(["a.1"]), Engine(set())
    manager.down = True
    remover = VolumeRemover(manager, "n1", engine, FakeClock(), 2.0)  # type: ignore[arg-type]
    assert await remover.once() == [] and engine.removed == []
    manager.down = False
    assert await remover.once() == ["a.1"] and engine.removed == ["a.1"]
