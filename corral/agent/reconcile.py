"""What an agent must do to make its engine run exactly its assigned tasks.

Pure: the tasks the manager assigned to this node, the containers the engine
has, and the operations already in flight in; the actions out. Level-driven:
it looks only at the two lists, so running it again after a crash or a lost
message does the right thing.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from corral.agent.engines.base import ContainerInfo
from corral.agent.health import HealthStatus, HealthView
from corral.model import PublishedPort, Task, TaskState
from corral.model.task import DesiredState, TERMINAL_STATES, UNPLACED_STATES


@dataclass(frozen=True)
class Report:
    task_id: str
    state: TaskState
    container_id: str = ""
    error: str = ""
    exit_code: int | None = None
    ports: tuple[PublishedPort, ...] = ()


@dataclass(frozen=True)
class Stop:
    """Stop `container`, then report the task `state` (shutdown when asked to, failed when unhealthy)."""

    task: Task
    container: ContainerInfo
    state: TaskState = TaskState.shutdown
    error: str = ""


@dataclass
class AgentPlan:
    start: list[Task] = field(default_factory=list)
    stop: list[Stop] = field(default_factory=list)
    remove: list[ContainerInfo] = field(default_factory=list)
    report: list[Report] = field(default_factory=list)


def plan(
    tasks: Iterable[Task],
    containers: Iterable[ContainerInfo],
    busy: set[str],
    health: Mapping[str, HealthView] | None = None,
) -> AgentPlan:
    """`busy`: task ids and container ids with an operation in flight; left alone.

    `health`: by task id, the status of the health check of its running
    container (tasks whose spec has a health check and no entry yet are
    `starting`).
    """
    health = health or {}
    result = AgentPlan()
    by_task = {c.task_id: c for c in containers}
    known: set[str] = set()
    for task in tasks:
        known.add(task.id)
        if task.id in busy or task.state in UNPLACED_STATES:
            continue  # not placed yet (a global task names its node before the scheduler confirms)
        container = by_task.get(task.id)
        if task.state == TaskState.lost:
            _clear_lost(task, container, result)
        elif task.desired_state == DesiredState.running:
            _keep_running(task, container, health.get(task.id), result)
        else:
            _keep_stopped(task, container, result)
    for task_id, container in by_task.items():
        if task_id not in known and container.id not in busy:
            result.remove.append(container)  # its task is gone: nothing needs it any more
    return result


def _keep_running(task: Task, container: ContainerInfo | None, health: HealthView | None, result: AgentPlan) -> None:
    if task.state in TERMINAL_STATES:
        return
    if container is None:
        if task.state in (TaskState.assigned, TaskState.starting):
            result.start.append(task)
        else:
            result.report.append(Report(task.id, TaskState.failed, error="container disappeared"))
        return
    if container.running:
        _report_running(task, container, health, result)
        return
    code = container.exit_code
    state = TaskState.complete if code == 0 else TaskState.failed
    error = container.error or (f"exited with code {code}" if code is not None else "container stopped")
    result.report.append(Report(task.id, state, container.id, error=error, exit_code=code))


def _report_running(task: Task, container: ContainerInfo, health: HealthView | None, result: AgentPlan) -> None:
    """A running container's task is `running` once healthy, `starting` until then; unhealthy is stopped."""
    status = HealthStatus.healthy if _unchecked(task) else (health.status if health else HealthStatus.starting)
    if status == HealthStatus.unhealthy:
        reason = health.reason if health else "health check failed"
        result.stop.append(Stop(task, container, TaskState.failed, reason))
        return
    ports = _in_spec_order(task, container.ports)
    if status == HealthStatus.healthy or task.state == TaskState.running:
        # A task already running stays so while a fresh check (agent restart) has no verdict yet.
        state = TaskState.running
    else:
        state = TaskState.starting
    if task.state != state or tuple(task.ports) != ports or task.container_id != container.id:
        result.report.append(Report(task.id, state, container.id, ports=ports))


def _unchecked(task: Task) -> bool:
    return task.spec.healthcheck is None


def _clear_lost(task: Task, container: ContainerInfo | None, result: AgentPlan) -> None:
    """Its node came back after the task was replaced elsewhere: nothing needs this container."""
    if container is None:
        return
    if container.running:
        result.stop.append(Stop(task, container))
    else:
        result.remove.append(container)


def _keep_stopped(task: Task, container: ContainerInfo | None, result: AgentPlan) -> None:
    if container is not None and container.running:
        result.stop.append(Stop(task, container))
        return
    if task.state not in TERMINAL_STATES:
        code = container.exit_code if container else None
        result.report.append(
            Report(task.id, TaskState.shutdown, container.id if container else "", error=task.error, exit_code=code)
        )


def describe_stop(exit_code: int | None, grace: float, took: float) -> str:
    """How a stopped container ended: on SIGTERM, or killed when the grace period ran out."""
    if exit_code is None:
        return ""
    if exit_code == 137 and took >= grace * 0.9:
        return f"killed after the {grace:g}s stop grace period (did not exit on SIGTERM)"
    return f"exited on SIGTERM with code {exit_code}"


def _in_spec_order(task: Task, ports: list[PublishedPort]) -> tuple[PublishedPort, ...]:
    order: dict[tuple[int, str], int] = {(p.target, p.protocol): i for i, p in enumerate(task.spec.ports)}
    return tuple(sorted(ports, key=lambda p: order.get((p.target, p.protocol), len(order))))
