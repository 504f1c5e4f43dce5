"""task_reports.with_status: what a task becomes after its agent reports."""

import pytest

from corral.manager.api.agents import TaskStatus
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
