"""depends_on: a dependent service's tasks stay pending with the reason until a dependency's replica meets the
condition; then they are placed, and a later failure of the dependency does not hold them again.

The rule is pure (`waiting_reason`); the controller is driven pass by pass by `controller_harness`."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from corral.manager import keys
from corral.manager.dependencies import waiting_reason
from corral.manager.writes import dump
from corral.model import Service, ServiceSpec, Task, TaskState
from corral.model.dependency import Dependency
from controller_harness import Harness, start


def _task(service: str, state: TaskState, container_id: str = "", exit_code: int | None = None) -> Task:
    spec = ServiceSpec(name=service, image="img")
    return Task(id=f"{service}-{state.value}", service=service, spec=spec, state=state, container_id=container_id,
                exit_code=exit_code, created_at=0, updated_at=0)


def _web(*dependencies: Dependency) -> ServiceSpec:
    return ServiceSpec(name="s_web", stack="s", image="img", depends_on=list(dependencies))


@pytest.mark.parametrize(
    ("condition", "tasks", "reason"),
    [
        ("service_healthy", [], "waiting for db: no healthy replica yet"),
        ("service_healthy", [_task("s_db", TaskState.starting, "c1")], "waiting for db: no healthy replica yet"),
        ("service_healthy", [_task("s_db", TaskState.running, "c1")], ""),
        ("service_started", [_task("s_db", TaskState.starting)], "waiting for db: no started replica yet"),
        ("service_started", [_task("s_db", TaskState.starting, "c1")], ""),
        ("service_completed_successfully", [_task("s_db", TaskState.failed, "c1", 1)],
         "waiting for db: no replica completed successfully yet"),
        ("service_completed_successfully", [_task("s_db", TaskState.complete, "c1", 0)], ""),
    ],
)
def test_each_condition_needs_one_replica_that_meets_it(condition: str, tasks: list[Task], reason: str) -> None:
    spec = _web(Dependency(service="s_db", condition=condition))  # type: ignore[arg-type]
    assert waiting_reason(spec, [], lambda name: tasks) == reason


def test_a_missing_dependency_holds_only_when_required_and_every_unmet_one_is_named() -> None:
    spec = _web(Dependency(service="s_db"), Dependency(service="s_cache", required=False), Dependency(service="s_mq"))
    tasks = {"s_db": []}
    assert waiting_reason(spec, [], tasks.get) == "waiting for db: no started replica yet; waiting for mq: not deployed"


def test_once_a_task_of_the_service_had_a_container_nothing_waits() -> None:
    spec = _web(Dependency(service="s_db", condition="service_healthy"))
    assert waiting_reason(spec, [_task("s_web", TaskState.failed, "c9")], lambda name: []) == ""


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    h = await start(tmp_path)
    yield h
    await h.close()


async def test_the_controller_holds_dependents_until_the_dependency_is_healthy(harness: Harness) -> None:
    h = harness
    await h.add_node("n1")
    await h.deploy("s_db", replicas=1)
    web = ServiceSpec(name="s_web", stack="s", image="img:1", replicas=2, depends_on=[Dependency(service="s_db", condition="service_healthy")])
    await h._as("user", h.store.put(keys.service_key("s_web"), dump(Service(spec=web, created_at=h.clock(), updated_at=h.clock())), expect=0))
    await h.settle()
    waiting = h.live("s_web")
    assert [(t.state, t.error) for t in waiting] == [(TaskState.pending, "waiting for db: no healthy replica yet")] * 2
    [db] = h.live("s_db")
    await h.report(db.id, TaskState.starting)
    await h.settle()
    assert {t.state for t in h.live("s_web")} == {TaskState.pending}
    await h.report(db.id, TaskState.running)
    await h.settle()
    placed = h.live("s_web")
    assert len(placed) == 2 and {(t.state, t.node, t.error) for t in placed} == {(TaskState.assigned, "n1", "")}
