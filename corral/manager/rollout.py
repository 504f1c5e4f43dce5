"""Rolling updates and rollbacks: how a spec change reaches a service's running tasks.

Pure, like replication which calls it: a service, the tasks of its wanted
slots and `now` in; which slots' running, outdated tasks may be replaced in
this pass, and the service as it should be stored (its UpdateStatus moved
on, or its spec rolled back) out. The only memory of a rollout is the
service's UpdateStatus; everything else is read from the tasks each pass,
so a manager killed mid-rollout carries on where the store says it was.

A slot is, for the current spec:
- done: its newest task of the current spec is running;
- failed: a task of the current spec, created during this rollout, failed
  within `monitor` of starting (or never started);
- in flight: a task of the current spec is on its way (or its outdated task
  is not running, so replication replaces it at once);
- waiting: its running task is outdated; it is replaced when the rollout has
  room (`parallelism`, `delay`, canary) and is not paused.
Slots whose outdated task is not running are replaced at once by
replication (there is nothing to keep available); they count as in flight.
`delay` is counted from the newest start of a task of this rollout, so
parallelism works as a sliding window, as Swarm's update workers do.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field

from corral.model import Service, ServiceSpec, Task, TaskState, UpdateConfig, UpdateState, UpdateStatus
from corral.model.errors import InvalidSpec
from corral.model.service import ROLLING_BACK
from corral.model.task import DesiredState

_FAILED = (TaskState.failed, TaskState.rejected)
_WATCHED = frozenset({UpdateState.updating, UpdateState.rollback_started, UpdateState.canary_hold})
_FINAL = frozenset({UpdateState.completed, UpdateState.rollback_completed})


@dataclass(frozen=True)
class RolloutStep:
    service: Service  # as it should be stored; may differ from the input (status, rolled-back spec)
    replace: frozenset[str]  # slot keys whose running outdated task may be replaced now
    start_first: bool  # start the new task before stopping the old one


@dataclass
class _Survey:
    done: int = 0
    in_flight: int = 0
    failed_slots: int = 0
    waiting: list[str] = field(default_factory=list)
    failures: list[Task] = field(default_factory=list)
    last_started: float | None = None


def runs(task: Task, shape: ServiceSpec) -> bool:
    """Does `task` run the spec whose task shape is `shape`? (Tasks store their spec's task shape.)

    The tasks of one service version share one spec object (the cache reads them through
    `SharedSpecs`), so a pass compares the same two objects once per task: a deep pydantic
    comparison each time was half of replication's time at 300,000 tasks. The answer for a
    pair of objects is kept (specs are frozen), with both objects, so their ids are not reused.
    """
    spec = task.spec
    if spec is shape:
        return True
    key = (id(spec), id(shape))
    known = _COMPARED.get(key)
    if known is not None and known[0] is spec and known[1] is shape:
        return known[2]
    same = spec == shape
    if len(_COMPARED) >= _COMPARED_MAX:
        _COMPARED.clear()  # a new shape is made every pass: keep only the recent pairs
    _COMPARED[key] = (spec, shape, same)
    return same


_COMPARED: dict[tuple[int, int], tuple[ServiceSpec, ServiceSpec, bool]] = {}
_COMPARED_MAX = 256


def step(service: Service, slots: Mapping[str, list[Task]], now: float) -> RolloutStep:
    """What the rollout of `service` does in this pass; `slots` maps each wanted slot to its tasks, oldest first."""
    status = service.update_status
    rolling_back = status is not None and status.state in ROLLING_BACK
    config = service.spec.rollback_config if rolling_back else service.spec.update_config
    start_first = config.order == "start-first"

    if status is None or status.state in _FINAL:
        survey = _survey(service.spec, slots, now, config.monitor)
        if not survey.waiting:
            return RolloutStep(service, frozenset(), start_first)
        # Running outdated tasks but no rollout under way (the version moved
        # without the API, e.g. stored before rollouts existed): start one.
        status = UpdateStatus(state=UpdateState.updating, started_at=now)
    else:
        survey = _survey(service.spec, slots, status.started_at, config.monitor)

    total = len(slots)
    counts = {"updated": survey.done, "total": total, "failed": len(survey.failures)}
    state = status.state
    replace: list[str] = []
    message = status.message
    completed_at = status.completed_at

    if state in _WATCHED and survey.failures and len(survey.failures) / max(total, 1) > config.max_failure_ratio:
        reason = _failure_reason(survey, total, config)
        if config.failure_action == "rollback" and not rolling_back and service.previous_spec is not None:
            return step(rolled_back(service, now, f"update failed, rolled back: {reason}"), slots, now)
        if config.failure_action != "continue":
            state = UpdateState.rollback_paused if rolling_back else UpdateState.paused
            message = f"{'rollback' if rolling_back else 'update'} paused: {reason}"

    if state in (UpdateState.updating, UpdateState.rollback_started):
        monitored = survey.last_started is None or now >= survey.last_started + config.monitor
        canary = None if rolling_back else service.spec.canary
        room = config.parallelism - survey.in_flight if config.parallelism else len(survey.waiting)
        if config.delay and survey.last_started is not None and now < survey.last_started + config.delay:
            room = 0
        if canary is not None:
            target = min(canary, total)
            reached = survey.done + survey.failed_slots
            room = min(room, target - reached - survey.in_flight)
            if reached >= target and survey.waiting and not survey.in_flight and monitored:
                state = UpdateState.canary_hold
                message = f"canary: {survey.done} of {total} tasks updated; promote or roll back"
        if not survey.waiting and not survey.in_flight and monitored:
            state = UpdateState.rollback_completed if rolling_back else UpdateState.completed
            completed_at = now
            if not message and survey.failures:
                message = f"{len(survey.failures)} of {total} new tasks failed"
        elif state != UpdateState.canary_hold:
            replace = survey.waiting[: max(0, room)]

    new_status = status.model_copy(update={"state": state, "message": message, "completed_at": completed_at, **counts})
    if service.update_status is not None and service.update_status.state in _FINAL and new_status.state in _FINAL:
        new_status = service.update_status  # a settled rollout's figures stay as they ended
    if new_status != service.update_status:
        service = service.model_copy(update={"update_status": new_status})
    return RolloutStep(service, frozenset(replace), start_first)


def _survey(spec: ServiceSpec, slots: Mapping[str, list[Task]], since: float | None, monitor: float) -> _Survey:
    shape = spec.task_shape()
    survey = _Survey()
    for key in sorted(slots, key=_slot_order):
        history = slots[key]
        live = [t for t in history if t.desired_state == DesiredState.running]
        current = [t for t in live if runs(t, shape)]
        outdated = [t for t in live if not runs(t, shape)]
        failures = [t for t in history if since is not None and _failed_in_rollout(t, shape, since, monitor)]
        survey.failures += failures
        for task in history:
            if since is not None and runs(task, shape) and task.created_at >= since and task.started_at is not None:
                survey.last_started = max(survey.last_started or 0.0, task.started_at)
        if current and current[-1].state == TaskState.running:
            survey.done += 1
        elif failures:
            survey.failed_slots += 1
        elif current or (not live and _being_replaced(history)) or (outdated and outdated[-1].state != TaskState.running):
            survey.in_flight += 1
        elif outdated:
            survey.waiting.append(key)
    return survey


def _being_replaced(history: list[Task]) -> bool:
    """Was the slot's newest task asked to stop, and is its replacement still to come? (A stop-first update makes
    the new task once the old one has stopped; a task that ended `shutdown` is always replaced, never left resting.)"""
    newest = history[-1] if history else None
    return newest is not None and newest.desired_state == DesiredState.shutdown and (
        not newest.terminal or newest.state == TaskState.shutdown
    )


def _failed_in_rollout(task: Task, shape: ServiceSpec, since: float, monitor: float) -> bool:
    if task.state not in _FAILED or not runs(task, shape) or task.created_at < since:
        return False
    return task.started_at is None or task.updated_at - task.started_at <= monitor


def _failure_reason(survey: _Survey, total: int, config: UpdateConfig) -> str:
    latest = max(survey.failures, key=lambda t: (t.updated_at, t.id))
    detail = latest.error or latest.state.value
    return f"{len(survey.failures)} of {total} new tasks failed within {config.monitor:g}s (task {latest.id}: {detail})"


def _slot_order(key: str) -> tuple[int, str]:
    return (int(key), "") if key.isdigit() else (0, key)


# -- the changes a user asks for


def updated(current: Service, spec: ServiceSpec, now: float) -> Service:
    """The service with a new spec: the old one kept for rollback, a rollout started if tasks must change."""
    if spec == current.spec:
        return current
    changes_tasks = spec.task_shape() != current.spec.task_shape()
    update: dict[str, object] = {"spec": spec, "previous_spec": current.spec, "updated_at": now}
    if changes_tasks:
        update["version"] = current.version + 1
        update["update_status"] = UpdateStatus(state=UpdateState.updating, started_at=now)
    return current.model_copy(update=update)


def rolled_back(service: Service, now: float, message: str = "rollback requested") -> Service:
    """The service returning to its previous spec (which becomes the previous one in turn, as in Swarm)."""
    previous = service.previous_spec
    if previous is None:
        raise InvalidSpec("", f"service {service.name} has no previous spec to roll back to")
    changes_tasks = previous.task_shape() != service.spec.task_shape()
    return service.model_copy(
        update={
            "spec": previous,
            "previous_spec": service.spec,
            "version": service.version + (1 if changes_tasks else 0),
            "updated_at": now,
            "update_status": UpdateStatus(state=UpdateState.rollback_started, started_at=now, message=message),
        }
    )


def promoted(service: Service, now: float) -> Service:
    """The service with its canary lifted: the rollout goes on to every slot."""
    status = service.update_status
    if service.spec.canary is None:
        raise InvalidSpec("canary", f"service {service.name} has no canary to promote")
    spec = service.spec.model_copy(update={"canary": None})
    update: dict[str, object] = {"spec": spec, "updated_at": now}
    if status is not None and status.state == UpdateState.canary_hold:
        update["update_status"] = status.model_copy(update={"state": UpdateState.updating, "message": ""})
    return service.model_copy(update=update)
