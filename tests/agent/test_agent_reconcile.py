"""agent.reconcile.plan: what an agent does to make its engine match its tasks."""

import pytest

from corral.agent.health import HealthStatus, HealthView
from corral.agent.reconcile import AgentPlan, Report, plan
from corral.model.service import HealthCheck, TcpProbe
from corral.model import PortSpec, TaskState
from corral.model.task import DesiredState, TERMINAL_STATES

from agent_factories import container, make_task, published

SHUTDOWN = DesiredState.shutdown


def nothing(result: AgentPlan) -> bool:
    return not (result.start or result.stop or result.remove or result.report)


# -- starting


@pytest.mark.parametrize("state", [TaskState.assigned, TaskState.starting])
def test_assigned_task_without_container_is_started(state: TaskState) -> None:
    task = make_task("t1", state)
    result = plan([task], [], set())
    assert result.start == [task]
    assert result.stop == [] and result.remove == [] and result.report == []


@pytest.mark.parametrize("state", [TaskState.new, TaskState.pending])
def test_unplaced_tasks_are_ignored(state: TaskState) -> None:
    # a global task names its node before the scheduler confirms it
    assert nothing(plan([make_task("t1", state)], [], set()))
    assert nothing(plan([make_task("t1", state, desired=SHUTDOWN)], [], set()))


def test_unplaced_task_keeps_its_container_if_one_exists() -> None:
    assert nothing(plan([make_task("t1", TaskState.pending)], [container("t1")], set()))


# -- running


def test_running_container_is_reported_running() -> None:
    result = plan([make_task("t1", TaskState.starting)], [container("t1", container_id="abc")], set())
    assert result.report == [Report("t1", TaskState.running, "abc")]
    assert result.start == []


def test_known_running_task_is_not_reported_again() -> None:
    task = make_task("t1", TaskState.running, container_id="c-t1")
    assert nothing(plan([task], [container("t1")], set()))


def test_running_task_with_another_container_is_reported_again() -> None:
    task = make_task("t1", TaskState.running, container_id="old")
    result = plan([task], [container("t1", container_id="new")], set())
    assert result.report == [Report("t1", TaskState.running, "new")]


def test_ports_are_reported_in_spec_order() -> None:
    specs = [PortSpec(target=443), PortSpec(target=53, protocol="udp"), PortSpec(target=80)]
    task = make_task("t1", TaskState.starting, ports=specs)
    engine_order = [published(80, 30003), published(999, 30009), published(443, 30001), published(53, 30002, "udp")]
    [report] = plan([task], [container("t1", ports=engine_order)], set()).report
    assert [(p.target, p.protocol) for p in report.ports] == [(443, "tcp"), (53, "udp"), (80, "tcp"), (999, "tcp")]


def test_port_order_distinguishes_protocols() -> None:
    specs = [PortSpec(target=53, protocol="udp"), PortSpec(target=53, protocol="tcp")]
    task = make_task("t1", TaskState.starting, ports=specs)
    [report] = plan([task], [container("t1", ports=[published(53, 2, "tcp"), published(53, 1, "udp")])], set()).report
    assert [p.protocol for p in report.ports] == ["udp", "tcp"]


def test_running_task_whose_ports_changed_is_reported() -> None:
    specs = [PortSpec(target=80)]
    task = make_task("t1", TaskState.running, ports=specs, container_id="c-t1")
    task = task.model_copy(update={"ports": [published(80, 1)]})
    [report] = plan([task], [container("t1", ports=[published(80, 2)])], set()).report
    assert report.ports == (published(80, 2),)
    assert nothing(plan([task], [container("t1", ports=[published(80, 1)])], set()))


# -- ending


def test_container_exiting_zero_completes_the_task() -> None:
    [report] = plan([make_task("t1", TaskState.running)], [container("t1", running=False, exit_code=0)], set()).report
    assert report == Report("t1", TaskState.complete, "c-t1", error="exited with code 0", exit_code=0)


@pytest.mark.parametrize("code", [1, 2, 137])
def test_container_exiting_non_zero_fails_the_task(code: int) -> None:
    [report] = plan([make_task("t1", TaskState.running)], [container("t1", running=False, exit_code=code)], set()).report
    assert report.state == TaskState.failed
    assert report.error == f"exited with code {code}"
    assert report.exit_code == code


def test_engine_error_wins_over_the_exit_code() -> None:
    info = container("t1", running=False, exit_code=1, error="OOMKilled")
    [report] = plan([make_task("t1", TaskState.running)], [info], set()).report
    assert (report.state, report.error) == (TaskState.failed, "OOMKilled")


def test_stopped_container_without_exit_code() -> None:
    [report] = plan([make_task("t1", TaskState.running)], [container("t1", running=False)], set()).report
    assert (report.state, report.error) == (TaskState.failed, "container stopped")


def test_running_task_whose_container_vanished_fails() -> None:
    [report] = plan([make_task("t1", TaskState.running)], [], set()).report
    assert report == Report("t1", TaskState.failed, error="container disappeared")


@pytest.mark.parametrize("state", sorted(TERMINAL_STATES - {TaskState.lost}, key=lambda s: s.value))
def test_ended_task_is_not_reported_again(state: TaskState) -> None:
    task = make_task("t1", state)
    assert nothing(plan([task], [container("t1", running=False, exit_code=1)], set()))
    assert nothing(plan([task], [], set()))


# -- stopping


def test_desired_shutdown_stops_a_running_container() -> None:
    task = make_task("t1", TaskState.running, desired=SHUTDOWN)
    info = container("t1")
    result = plan([task], [info], set())
    assert [(s.task, s.container) for s in result.stop] == [(task, info)]
    assert result.report == [] and result.start == [] and result.remove == []


def test_desired_shutdown_of_a_lost_task_still_stops_its_container() -> None:
    # the node came back after a partition: its old task was declared lost
    task = make_task("t1", TaskState.lost, desired=SHUTDOWN)
    info = container("t1")
    assert [(s.task, s.container) for s in plan([task], [info], set()).stop] == [(task, info)]


def test_stopped_container_of_a_task_being_shut_down_is_reported_shutdown() -> None:
    task = make_task("t1", TaskState.running, desired=SHUTDOWN, error="scaled down")
    [report] = plan([task], [container("t1", running=False, exit_code=143)], set()).report
    assert report == Report("t1", TaskState.shutdown, "c-t1", error="scaled down", exit_code=143)


def test_task_shut_down_before_it_started_is_reported_shutdown() -> None:
    task = make_task("t1", TaskState.assigned, desired=SHUTDOWN, error="updated to version 2")
    result = plan([task], [], set())
    assert result.start == []
    assert result.report == [Report("t1", TaskState.shutdown, "", error="updated to version 2")]


def test_shut_down_task_with_stopped_container_needs_nothing() -> None:
    task = make_task("t1", TaskState.shutdown, desired=SHUTDOWN)
    assert nothing(plan([task], [container("t1", running=False, exit_code=0)], set()))


# -- orphans and busy


def test_container_whose_task_is_gone_is_removed() -> None:
    orphan = container("gone", running=False)
    kept = container("t1")
    result = plan([make_task("t1", TaskState.running, container_id="c-t1")], [orphan, kept], set())
    assert result.remove == [orphan]


def test_running_orphan_is_removed_too() -> None:
    orphan = container("gone")
    assert plan([], [orphan], set()).remove == [orphan]


def test_busy_task_is_left_alone() -> None:
    tasks = [make_task("t1", TaskState.assigned), make_task("t2", TaskState.running, desired=SHUTDOWN)]
    assert nothing(plan(tasks, [container("t2")], {"t1", "t2"}))


def test_busy_orphan_container_is_left_alone() -> None:
    orphan = container("gone", container_id="c9")
    assert nothing(plan([], [orphan], {"c9"}))


def test_busy_is_per_task() -> None:
    tasks = [make_task("t1", TaskState.assigned), make_task("t2", TaskState.assigned)]
    assert plan(tasks, [], {"t1"}).start == [tasks[1]]


def test_many_tasks_at_once() -> None:
    tasks = [
        make_task("start", TaskState.assigned),
        make_task("keep", TaskState.running, container_id="c-keep"),
        make_task("stop", TaskState.running, desired=SHUTDOWN),
        make_task("crashed", TaskState.running),
    ]
    containers = [container("keep"), container("stop"), container("crashed", running=False, exit_code=3), container("old")]
    result = plan(tasks, containers, set())
    assert [t.id for t in result.start] == ["start"]
    assert [s.task.id for s in result.stop] == ["stop"]
    assert [c.task_id for c in result.remove] == ["old"]
    assert [(r.task_id, r.state) for r in result.report] == [("crashed", TaskState.failed)]


# -- lost tasks on a node that came back


@pytest.mark.parametrize("desired", [DesiredState.running, SHUTDOWN])
def test_container_of_a_lost_task_is_stopped_then_removed(desired: DesiredState) -> None:
    task = make_task("t1", TaskState.lost, desired=desired)
    running = container("t1")
    [stop] = plan([task], [running], set()).stop
    assert (stop.task, stop.container, stop.state) == (task, running, TaskState.shutdown)
    stopped = container("t1", running=False, exit_code=143)
    result = plan([task], [stopped], set())
    assert result.remove == [stopped] and result.report == [] and result.stop == []
    assert nothing(plan([task], [], set()))


# -- health checks

CHECKED = {"spec": make_task().spec.model_copy(update={"healthcheck": HealthCheck(tcp=TcpProbe(port=8080))})}


@pytest.mark.parametrize("state", [TaskState.assigned, TaskState.starting])
def test_checked_task_stays_starting_until_healthy(state: TaskState) -> None:
    task = make_task("t1", state, **CHECKED)
    [report] = plan([task], [container("t1")], set()).report
    assert (report.state, report.container_id) == (TaskState.starting, "c-t1")
    [report] = plan([task], [container("t1")], set(), {"t1": HealthView(HealthStatus.starting)}).report
    assert report.state == TaskState.starting
    [report] = plan([task], [container("t1")], set(), {"t1": HealthView(HealthStatus.healthy)}).report
    assert report.state == TaskState.running


def test_starting_task_already_reported_needs_nothing_more() -> None:
    task = make_task("t1", TaskState.starting, container_id="c-t1", **CHECKED)
    assert nothing(plan([task], [container("t1")], set(), {"t1": HealthView(HealthStatus.starting)}))


def test_running_task_is_not_sent_back_to_starting_by_a_fresh_monitor() -> None:
    # after an agent restart its monitors start over: a running task stays running
    task = make_task("t1", TaskState.running, container_id="c-t1", **CHECKED)
    assert nothing(plan([task], [container("t1")], set(), {"t1": HealthView(HealthStatus.starting)}))
    assert nothing(plan([task], [container("t1")], set()))


@pytest.mark.parametrize("state", [TaskState.starting, TaskState.running])
def test_unhealthy_task_is_stopped_and_failed_with_the_reason(state: TaskState) -> None:
    task = make_task("t1", state, container_id="c-t1", **CHECKED)
    view = HealthView(HealthStatus.unhealthy, "health check failed 3 times in a row: connection refused")
    result = plan([task], [container("t1")], set(), {"t1": view})
    [stop] = result.stop
    assert (stop.state, stop.error) == (TaskState.failed, view.reason)
    assert result.report == []


def test_unchecked_task_ignores_health_views() -> None:
    task = make_task("t1", TaskState.starting)
    [report] = plan([task], [container("t1")], set(), {"t1": HealthView(HealthStatus.unhealthy)}).report
    assert report.state == TaskState.running


def test_describe_stop_tells_sigterm_from_sigkill() -> None:
    from corral.agent.reconcile import describe_stop

    assert describe_stop(0, 10.0, 0.3) == "exited on SIGTERM with code 0"
    assert describe_stop(137, 2.0, 2.1) == "killed after the 2s stop grace period (did not exit on SIGTERM)"
    assert describe_stop(137, 10.0, 0.1) == "exited on SIGTERM with code 137"  # killed by something else, early
    assert describe_stop(None, 10.0, 0.1) == ""
