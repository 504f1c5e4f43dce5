"""The agent's reconcile round against a fake engine (the Docker driver is covered end to end)."""

import asyncio
from collections.abc import Mapping, Sequence

from corral.agent.daemon import Agent
from corral.agent.engines.base import ContainerInfo, Engine, TaskFile
from corral.agent.reconcile import Report
from corral.agent.settings import AgentSettings
from corral.model import ServiceSpec, Task, TaskState


class SlowEngine(Engine):
    """Starting takes a moment; listing takes longer, so a start can finish mid-list."""

    def __init__(self) -> None:
        self.containers: dict[str, ContainerInfo] = {}
        self.started: list[str] = []

    async def list(self) -> list[ContainerInfo]:
        snapshot = list(self.containers.values())
        await asyncio.sleep(0.2)
        return snapshot

    async def start(self, task: Task, address: str, hosts: Mapping[str, str] | None = None, files: Sequence[TaskFile] = ()) -> ContainerInfo:
        await asyncio.sleep(0.05)
        info = ContainerInfo(id=f"c-{task.id}", task_id=task.id, running=True)
        self.containers[task.id] = info
        self.started.append(task.id)
        return info

    async def stop(self, container_id: str, grace: float) -> ContainerInfo:
        raise AssertionError("nothing should be stopped")

    async def remove(self, container_id: str) -> None:
        raise AssertionError("nothing should be removed")


async def test_a_start_that_ends_while_listing_is_not_a_vanished_container() -> None:
    engine = SlowEngine()
    agent = Agent(AgentSettings(manager_url="http://127.0.0.1:9", name="n1", address="127.0.0.2", token="t"), lambda *_: engine)
    agent.engine = engine
    reports: list[Report] = []

    async def record(report: Report) -> None:
        reports.append(report)
        task = agent.tasks[report.task_id]
        agent.tasks[report.task_id] = task.model_copy(update={"state": report.state, "container_id": report.container_id})

    agent._report = record  # type: ignore[method-assign]
    spec = ServiceSpec(name="s", image="img")
    agent.tasks = {"t1": Task(id="t1", service="s", slot=1, node="n1", state=TaskState.assigned, spec=spec, created_at=0, updated_at=0)}

    await agent.reconcile_once()  # launches the start
    await agent.reconcile_once()  # lists while the start finishes
    await agent.reconcile_once()  # sees the container
    await asyncio.gather(*agent._inflight)

    assert engine.started == ["t1"]
    assert [r.state for r in reports] == [TaskState.starting, TaskState.running]
    assert agent.tasks["t1"].state == TaskState.running
    await agent.client.close()


class RecordingClient:
    """The manager as the agent's loops see it: a heartbeat says the node recovered, once."""

    def __init__(self) -> None:
        self.heartbeats = 0
        self.lists: list[int] = []

    async def request(self, method: str, path: str, **_: object) -> dict[str, object]:
        self.heartbeats += 1
        return {"state": "ready", "availability": "active", "recovered": self.heartbeats == 2}

    async def get(self, path: str, after: int = 0, wait: float = 0.0) -> dict[str, object]:
        self.lists.append(after)
        await asyncio.sleep(0.01)
        return {"revision": 7 + len(self.lists), "tasks": []}


async def test_a_node_that_recovered_lists_its_tasks_afresh() -> None:
    client = RecordingClient()
    agent = Agent(
        AgentSettings(manager_url="http://127.0.0.1:9", name="n1", address="127.0.0.2", token="t"),
        lambda *_: SlowEngine(), client=client,  # type: ignore[arg-type]
    )
    watch = asyncio.create_task(agent._watch_loop())
    await asyncio.sleep(0.05)
    assert client.lists[0] == 0 and all(after > 0 for after in client.lists[1:])  # then only what changed
    beats = asyncio.create_task(agent._heartbeat_loop(0.01))
    while client.heartbeats < 3:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)
    beats.cancel()
    watch.cancel()
    await asyncio.gather(beats, watch, return_exceptions=True)
    # the heartbeat that said `recovered` made the next look take the whole list, once
    assert client.lists.count(0) == 2, client.lists  # the first look, and the one after `recovered`
    assert agent._wake.is_set()
