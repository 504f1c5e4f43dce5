"""task_reports.with_status: what a task becomes after its agent reports; report_batch's plan of writes."""

import asyncio
from types import SimpleNamespace

import pytest

from corral.manager import task_reports
from corral.manager.api.agent_batches import NodeTaskStatus
from corral.manager.api.agents import TaskStatus
from corral.manager.cache import Versioned
from corral.manager.priority import UsersFirst
from corral.model.errors import NotFound
from corral.manager.task_reports import with_status as _with_status
from corral.model import PublishedPort, TaskState
from corral.model.task import TERMINAL_STATES

from factories import make_service, make_task

NOW = 300.0
WEB = make_service("web", replicas=1)
PORT = PublishedPort(target=80, host_ip="10.0.0.1", host_port=30001)


def task(state: TaskState, **fields: object):  # type: ignore[no-untyped-def]
    return make_task(WEB, 1, id="t1", state=state, node="n1", created_at=1.0, **fields)


def test_progress_is_recorded_with_the_time() -> None:
    before = task(TaskState.starting)
    after = _with_status(before, TaskStatus(state=TaskState.running, container_id="c1", ports=[PORT]), NOW)
    assert after.state == TaskState.running
    assert after.container_id == "c1"
    assert after.ports == [PORT]
    assert after.updated_at == NOW
    assert before.state == TaskState.starting  # the input is not modified


@pytest.mark.parametrize(
    ("current", "reported"),
    [
        (TaskState.running, TaskState.starting),
        (TaskState.running, TaskState.assigned),
        (TaskState.starting, TaskState.assigned),
    ],
)
def test_reports_never_move_a_task_backwards(current: TaskState, reported: TaskState) -> None:
    before = task(current, container_id="c1")
    after = _with_status(before, TaskStatus(state=reported), NOW)
    assert after is before


@pytest.mark.parametrize("current", sorted(TERMINAL_STATES, key=lambda s: s.value))
def test_terminal_tasks_never_change(current: TaskState) -> None:
    before = task(current, error="exited with code 1", exit_code=1)
    for reported in (TaskState.running, TaskState.failed, TaskState.complete, TaskState.shutdown):
        assert _with_status(before, TaskStatus(state=reported, exit_code=0), NOW) is before


def test_identical_report_is_no_write() -> None:
    before = task(TaskState.running, container_id="c1", ports=[PORT])
    report = TaskStatus(state=TaskState.running, container_id="c1", ports=[PORT])
    assert _with_status(before, report, NOW) is before


def test_report_without_container_or_ports_keeps_them() -> None:
    before = task(TaskState.running, container_id="c1", ports=[PORT])
    assert _with_status(before, TaskStatus(state=TaskState.running), NOW) is before
    after = _with_status(before, TaskStatus(state=TaskState.failed, exit_code=2, error="exited with code 2"), NOW)
    assert after.container_id == "c1" and after.ports == [PORT]


def test_running_report_clears_a_scheduler_error() -> None:
    before = task(TaskState.assigned, error="restart delayed 5s (restart policy back-off)")
    after = _with_status(before, TaskStatus(state=TaskState.running, container_id="c1"), NOW)
    assert after.error == "" and after.updated_at == NOW


@pytest.mark.parametrize("current", [TaskState.assigned, TaskState.starting, TaskState.running])
def test_an_ending_report_always_lands(current: TaskState) -> None:
    after = _with_status(task(current), TaskStatus(state=TaskState.failed, exit_code=137, error="exited with code 137"), NOW)
    assert (after.state, after.exit_code, after.error) == (TaskState.failed, 137, "exited with code 137")
    assert after.terminal


# -- report_batch's plan (worked out in a worker thread) ------------------------------------------------------


def _report(task_id: str, state: TaskState, node: str = "n1") -> NodeTaskStatus:
    return NodeTaskStatus(node=node, task_id=task_id, state=state)


def test_the_plan_writes_changes_with_their_revision_and_answers_the_rest() -> None:
    tasks = {
        "t1": Versioned(task(TaskState.starting), 7),
        "t2": Versioned(make_task(WEB, 2, id="t2", state=TaskState.running, node="n1", created_at=1.0), 8),
    }
    reports = [
        _report("t1", TaskState.running),  # a change: written against revision 7
        _report("t2", TaskState.running),  # no change: answered with the state, no write
        _report("t9", TaskState.running),  # no such task
        _report("t2", TaskState.running, node="n2"),  # not on that node
        _report("t1", TaskState.failed),  # the same task again: after the first has landed
    ]
    planned = task_reports._plan(tasks, reports, list(range(len(reports))), NOW)
    assert [(op.key, op.expect) for op in planned.ops] == [("tasks/t1", 7)]
    assert [(at, t.state) for at, t in planned.written] == [(0, TaskState.running)]
    assert planned.retry == [4]
    assert planned.results[1] == TaskState.running
    assert isinstance(planned.results[2], NotFound) and isinstance(planned.results[3], NotFound)


async def test_a_batch_planned_while_the_cache_listed_again_is_planned_again(monkeypatch: pytest.MonkeyPatch) -> None:
    written: list[list[str]] = []

    async def txn_each(ops: list) -> tuple[int, list[int]]:  # type: ignore[type-arg]
        written.append([op.key for op in ops])
        return 10, []

    cache = SimpleNamespace(tasks={"t1": Versioned(task(TaskState.starting), 7)}, loads=1)
    ctx = SimpleNamespace(
        cache=cache, clock=lambda: NOW, agent_batches=asyncio.Lock(), users_first=UsersFirst(),
        store=SimpleNamespace(txn_each=txn_each),
    )
    plan = task_reports._plan
    calls = 0

    def relisting_plan(*args):  # type: ignore[no-untyped-def]
        nonlocal calls
        calls += 1
        if calls == 1:
            cache.loads += 1  # a re-list while the first plan was made: it may have read half a cache
        return plan(*args)

    monkeypatch.setattr(task_reports, "_plan", relisting_plan)
    results = await task_reports.report_batch(ctx, [_report("t1", TaskState.running)])  # type: ignore[arg-type]
    assert calls == 2
    assert written == [["tasks/t1"]]  # only the second plan was written
    assert results == [TaskState.running]


def test_the_plan_steps_aside_every_so_many_reports() -> None:
    tasks = {f"t{i}": Versioned(make_task(WEB, i, id=f"t{i}", state=TaskState.starting, node="n1", created_at=1.0), i + 1) for i in range(250)}
    reports = [_report(f"t{i}", TaskState.running) for i in range(250)]
    seen: list[int] = []
    planned = task_reports._plan(tasks, reports, list(range(250)), NOW, pause=lambda: seen.append(len(seen)))
    assert len(seen) == 250 // task_reports.PAUSE_EVERY and len(planned.ops) == 250  # paused, and planned every report
