"""The hollow engine: pretend containers that behave like real ones, after a short delay."""

import asyncio
import time

import pytest

from corral.agent.engines.base import EngineError
from corral.agent.engines.hollow import FIRST_HOST_PORT, HollowEngine, HollowTiming
from corral.model import PortSpec

from agent_factories import make_task


async def test_start_stop_remove_take_the_configured_delay() -> None:
    engine = HollowEngine("n1", HollowTiming(0.05, 0.05))
    task = make_task("t1", ports=[PortSpec(target=80), PortSpec(target=443, published=8443, mode="host")])
    began = time.monotonic()
    info = await engine.start(task, "10.0.0.7")
    assert time.monotonic() - began >= 0.045
    assert info.running and info.task_id == "t1"
    assert [(p.target, p.host_ip, p.host_port) for p in info.ports] == [(80, "10.0.0.7", FIRST_HOST_PORT), (443, "10.0.0.7", 8443)]
    assert await engine.list() == [info]
    assert await engine.start(task, "10.0.0.7") is info  # starting again is a no-op
    stopped = await engine.stop(info.id, grace=10)
    assert not stopped.running and stopped.exit_code == 0
    await engine.remove(info.id)
    assert await engine.list() == []
    with pytest.raises(EngineError, match="no container"):
        await engine.stop(info.id, grace=1)


async def test_many_starts_run_concurrently() -> None:
    engine = HollowEngine("n1", HollowTiming(0.1, 0.1))
    began = time.monotonic()
    await asyncio.gather(*(engine.start(make_task(f"t{i}"), "10.0.0.7") for i in range(200)))
    assert time.monotonic() - began < 1.0 and len(await engine.list()) == 200


async def test_crash_makes_a_container_exit() -> None:
    engine = HollowEngine("n1", HollowTiming(0, 0))
    info = await engine.start(make_task("t1"), "10.0.0.7")
    engine.crash("t1", exit_code=3)
    [after] = await engine.list()
    assert after.id == info.id and not after.running and after.exit_code == 3


@pytest.mark.parametrize(("text", "low", "high"), [("50-200", 0.05, 0.2), ("10", 0.01, 0.01), ("0-0", 0.0, 0.0)])
def test_delay_parses_milliseconds(text: str, low: float, high: float) -> None:
    assert HollowTiming.parse_ms(text) == HollowTiming(low, high)


@pytest.mark.parametrize("text", ["fast", "200-50", "-5", "1-x"])
def test_bad_delay_is_refused_with_what_is_wrong(text: str) -> None:
    with pytest.raises(ValueError, match="hollow delay"):
        HollowTiming.parse_ms(text)
