"""The controller runs jobs on its injected clock: cron times and deadlines with no event to wake it.

Driven by `controller_harness` (fake clock, real SQLite store and cache).
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from corral.manager import keys
from corral.manager.writes import dump
from corral.model import Service, ServiceMode, ServiceSpec, TaskState
from corral.model.job import JobSpec
from corral.model.task import DesiredState
from controller_harness import Harness, start


async def deploy_job(h: Harness, name: str, replicas: int, job: JobSpec) -> None:
    spec = ServiceSpec(name=name, image="img:1", replicas=replicas, mode=ServiceMode.replicated_job, job=job)
    service = Service(spec=spec, created_at=h.clock(), updated_at=h.clock())
    await h._as("user", h.store.put(keys.service_key(name), dump(service), expect=0))


def status(h: Harness, name: str):  # type: ignore[no-untyped-def]
    return h.cache.services[name].obj.job_status


@asynccontextmanager
async def harnessed(tmp_path: Path) -> AsyncIterator[Harness]:
    h = await start(tmp_path)
    try:
        await h.add_node("n1")
        yield h
    finally:
        await h.close()


async def test_cron_job_runs_on_the_fake_clock_and_its_runs_are_remembered(tmp_path: Path) -> None:
    async with harnessed(tmp_path) as h:
        await _cron_runs(h)


async def _cron_runs(h: Harness) -> None:
    await deploy_job(h, "tick", 1, JobSpec(schedule="@every 10s"))
    await h.settle()
    assert h.tasks("tick") == [] and status(h, "tick").state == "waiting"
    for run in (1, 2, 3):
        while status(h, "tick").run < run:
            await h.step(1.0)
        [task] = h.live("tick")
        assert task.job_run == run and task.state == TaskState.assigned
        await h.report(task.id, TaskState.running)
        await h.report(task.id, TaskState.complete)
        await h.settle()
        assert status(h, "tick").state == "completed"
        assert h.live("tick") == []
    assert [(r.run, r.state) for r in status(h, "tick").history] == [(1, "completed"), (2, "completed")]
    assert h.clock() - 1000.0 < 35, "three runs of @every 10s within 35 s of the fake clock"


async def test_deadline_fails_a_run_with_no_event_but_time(tmp_path: Path) -> None:
    async with harnessed(tmp_path) as h:
        await _deadline(h)


async def _deadline(h: Harness) -> None:
    await deploy_job(h, "batch", 2, JobSpec(deadline=30.0))
    await h.settle()
    for task in h.live("batch"):
        await h.report(task.id, TaskState.running)
    await h.settle()
    assert status(h, "batch").state == "running"
    for _ in range(30):
        await h.step(1.0)
    assert status(h, "batch").state == "failed" and "deadline exceeded" in status(h, "batch").message
    assert all(t.desired_state == DesiredState.shutdown for t in h.tasks("batch"))
