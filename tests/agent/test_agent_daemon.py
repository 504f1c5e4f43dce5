"""The agent's reconcile round against a fake engine (the Docker driver is covered end to end).

The order of events is set by the test: the engine's calls wait at gates the
test opens, and the agent's waits are on a fake clock the test moves.
"""

import asyncio
from collections.abc import Mapping, Sequence

from corral.agent.clock import FakeClock
from corral.agent.daemon import Agent
from corral.agent.engines.base import ContainerInfo, Engine, TaskFile
from corral.agent.reconcile import Report
from corral.agent.settings import AgentSettings
from corral.model import PortSpec, Task, TaskState
from corral.model.task import DesiredState

from agent_factories import make_task


class GatedEngine(Engine):
    """An engine whose calls wait at gates (open by default) that a test may close."""

    def __init__(self) -> None:
        self.containers: dict[str, ContainerInfo] = {}
        self.started: list[str] = []
        self.stopped: list[str] = []
        self.removed: list[str] = []
        self.lists = 0
        self.list_gate = asyncio.Event()
        self.start_gate = asyncio.Event()
        self.listing = asyncio.Event()  # set while a list waits at its gate
        self.list_gate.set()
        self.start_gate.set()

    async def list(self) -> list[ContainerInfo]:
        snapshot = list(self.containers.values())
        self.lists += 1
        self.listing.set()
        await self.list_gate.wait()
        self.listing.clear()
        return snapshot

    async def start(
        self, task: Task, address: str, hosts: Mapping[str, str] | None = None, files: Sequence[TaskFile] = ()
    ) -> ContainerInfo:
        await self.start_gate.wait()
        info = ContainerInfo(id=f"c-{task.id}", task_id=task.id, running=True)
        self.containers[task.id] = info
        self.started.append(task.id)
        return info

    async def stop(self, container_id: str, grace: float) -> ContainerInfo:
        self.stopped.append(container_id)
        return ContainerInfo(id=container_id, task_id=container_id.removeprefix("c-"), running=False, exit_code=0)

    async def remove(self, container_id: str) -> None:
        self.removed.append(container_id)


def agent_with(engine: GatedEngine, clock: FakeClock) -> tuple[Agent, list[Report]]:
    settings = AgentSettings(manager_url="http://127.0.0.1:9", name="n1", address="127.0.0.2", token="t", drain_delay=1.0)
    agent = Agent(settings, lambda *_: engine, clock=clock)
    agent.engine = engine
    reports: list[Report] = []

    async def record(report: Report) -> None:  # as the manager would take it
        reports.append(report)
        task = agent.tasks[report.task_id]
        agent.tasks[report.task_id] = task.model_copy(update={"state": report.state, "container_id": report.container_id})

    agent._report = record  # type: ignore[method-assign]
    return agent, reports


async def test_a_start_that_ends_while_listing_is_not_a_vanished_container() -> None:
    engine = GatedEngine()
    agent, reports = agent_with(engine, FakeClock())
    agent.tasks = {"t1": make_task("t1")}

    engine.start_gate.clear()
    await agent.reconcile_once()  # launches the start, which waits at its gate
    engine.list_gate.clear()
    listing = asyncio.create_task(agent.reconcile_once())
    await engine.listing.wait()  # the list has taken its snapshot: no container yet
    engine.start_gate.set()
    await asyncio.gather(*agent._inflight)  # the start ends while the list is out
    engine.list_gate.set()
    await listing  # its list does not show the container: it must not count as vanished
    await agent.reconcile_once()  # sees the container

    assert engine.started == ["t1"]
    assert [r.state for r in reports] == [TaskState.starting, TaskState.running]
    assert agent.tasks["t1"].state == TaskState.running
    await agent.client.close()


async def test_the_engine_starts_while_starting_is_reported_and_running_waits_for_that_answer() -> None:
    engine = GatedEngine()
    agent, reports = agent_with(engine, FakeClock())
    agent.tasks = {"t1": make_task("t1")}
    answer = asyncio.Event()
    record = agent._report

    async def slow_manager(report: Report) -> None:  # `starting` is answered only when the test says
        if report.state == TaskState.starting:
            await answer.wait()
        await record(report)

    agent._report = slow_manager  # type: ignore[method-assign]
    await agent.reconcile_once()
    for _ in range(10):
        await asyncio.sleep(0)
    assert engine.started == ["t1"]  # the engine did not wait for the manager's answer
    assert reports == []  # and `running` waits for `starting` to be answered
    answer.set()
    await asyncio.gather(*agent._inflight)
    assert [r.state for r in reports] == [TaskState.starting, TaskState.running]
    await agent.client.close()


async def test_a_task_on_the_mesh_is_stopped_after_the_drain_delay_on_the_clock() -> None:
    engine = GatedEngine()
    clock = FakeClock()
    agent, reports = agent_with(engine, clock)
    engine.containers["t1"] = ContainerInfo(id="c-t1", task_id="t1", running=True)
    task = make_task("t1", TaskState.running, desired=DesiredState.shutdown, ports=[PortSpec(target=80)], container_id="c-t1")
    agent.tasks = {"t1": task}

    await agent.reconcile_once()
    await clock.sleeping(1)  # the stop waits for the other nodes' proxies to let go
    clock.advance(0.99)
    await asyncio.sleep(0)
    assert engine.stopped == [] and clock.sleepers == 1
    clock.advance(0.01)
    await asyncio.gather(*agent._inflight)

    assert engine.stopped == ["c-t1"]
    assert [(r.state, r.error) for r in reports] == [(TaskState.shutdown, "exited on SIGTERM with code 0")]
    await agent.client.close()


async def test_a_restarted_agent_touches_nothing_before_its_first_task_list() -> None:
    engine = GatedEngine()
    agent, reports = agent_with(engine, FakeClock())
    engine.containers["t1"] = ContainerInfo(id="c-t1", task_id="t1", running=True)  # started before the restart
    loop = asyncio.create_task(agent._reconcile_loop())
    try:
        for _ in range(20):
            await asyncio.sleep(0)
        assert engine.lists == 0  # an empty task list is "not known yet": no container of it goes

        engine.list_gate.clear()
        agent.take_changes(True, [make_task("t1", TaskState.running, container_id="c-t1")], [])
        await engine.listing.wait()
        engine.list_gate.set()
        while engine.lists < 2:  # a whole round done: the loop lists again only after it
            engine.listing.clear()
            agent._wake.set()
            await engine.listing.wait()
        assert engine.removed == [] and engine.stopped == [] and reports == []  # adopted as it is
    finally:
        loop.cancel()
        await agent.client.close()
