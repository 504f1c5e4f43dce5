"""Whether a service's new tasks must wait for its dependencies (compose's `depends_on`), and why (pure).

A service's tasks wait, `pending` with the reason (`waiting for db: no
healthy replica yet`), until every dependency meets its condition with at
least one replica:

- `service_started`: a replica's container was started (`starting` with a
  container, `running` or `complete`);
- `service_healthy`: a replica is `running` (with a health check, the agent
  reports `running` only once it passed);
- `service_completed_successfully`: a replica ended `complete` (exit 0).

Only the first start waits: once any task of the dependent service has had
a container, its tasks are placed whatever becomes of its dependencies
(as compose leaves a started container alone when its dependency fails).
The scheduling step of the controller asks (`waiting_tasks`) before placing.
"""

from collections.abc import Callable, Iterable

from corral.manager.cache import StateCache
from corral.model.dependency import Dependency
from corral.model.service import ServiceSpec
from corral.model.task import Task, TaskState

_WHAT_IS_MISSING = {
    "service_started": "no started replica yet",
    "service_healthy": "no healthy replica yet",
    "service_completed_successfully": "no replica completed successfully yet",
}


def waiting_reason(spec: ServiceSpec, own_tasks: Iterable[Task], tasks_of: Callable[[str], list[Task] | None]) -> str:
    """Why the tasks of `spec` must wait ('' when they need not); `tasks_of(service)` is None for a service not deployed."""
    if not spec.depends_on or any(task.container_id for task in own_tasks):
        return ""
    reasons = []
    for dependency in spec.depends_on:
        tasks = tasks_of(dependency.service)
        name = dependency.service.removeprefix(f"{spec.stack}_")
        if tasks is None:
            if dependency.required:
                reasons.append(f"waiting for {name}: not deployed")
        elif not any(_meets(task, dependency) for task in tasks):
            reasons.append(f"waiting for {name}: {_WHAT_IS_MISSING[dependency.condition]}")
    return "; ".join(reasons)


def _meets(task: Task, dependency: Dependency) -> bool:
    if dependency.condition == "service_healthy":
        return task.state == TaskState.running
    if dependency.condition == "service_completed_successfully":
        return task.state == TaskState.complete and not task.exit_code
    return task.state in (TaskState.running, TaskState.complete) or (task.state == TaskState.starting and bool(task.container_id))


def waiting_tasks(cache: StateCache, tasks: Iterable[Task]) -> dict[str, str]:
    """Which of the unplaced `tasks` wait for their service's dependencies, and why (task id -> reason).

    Looks at a service's tasks (and its dependencies') only when it has dependencies, once per call.
    """

    def tasks_of(name: str) -> list[Task] | None:
        if name not in cache.services:
            return None
        return [found.obj for task_id in cache.service_tasks.get(name, ()) if (found := cache.tasks.get(task_id)) is not None]

    reasons: dict[str, str] = {}
    by_service: dict[str, str] = {}
    for task in tasks:
        if task.service not in by_service:
            found = cache.services.get(task.service)
            spec = found.obj.spec if found is not None else None
            by_service[task.service] = waiting_reason(spec, tasks_of(task.service) or [], tasks_of) if spec and spec.depends_on else ""
        if by_service[task.service]:
            reasons[task.id] = by_service[task.service]
    return reasons
