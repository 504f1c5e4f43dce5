"""Replication for jobs: a run's tasks run to completion (Swarm's replicated-job and global-job,
bounded as a Kubernetes Job).

`reconcile` has replication's signature and is as pure: (services, tasks, nodes, now) in, a
`ReplicationPlan` out. A run needs one completion per slot (`replicas` slots for a
replicated job, one per eligible node for a global job). A task that exits 0 completes its
slot and is not run again; one that fails is replaced after the restart policy's back-off
until more than `backoff_limit` tasks of the run have failed; a run older than `deadline`
fails; at most `parallelism` slots have a live task at once. Every task carries the run it
belongs to (`Task.job_run`), so a new run (`corral job run`, a new spec version, a cron
time) starts from nothing and the old run's tasks are stopped (or, for a cron job with
`allow`, left to finish). The status on the service (`JobStatus`) is the only memory of
a run: a manager restarted at any point goes on from what is stored.
"""

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping

from corral.manager import replication
from corral.manager.jobs import cron
from corral.manager.replication import ReplicationPlan
from corral.model import Node, Service, ServiceMode, ServiceSpec, Task, TaskState
from corral.model.errors import Conflict, InvalidSpec
from corral.model.job import RUN_HISTORY, JobRun, JobSpec, JobStatus
from corral.model.service import UpdateState
from corral.model.task import DesiredState

_OWN_FAILURES = frozenset({TaskState.failed, TaskState.rejected})  # lost and shutdown are not the task's doing


def reconcile(
    services: Mapping[str, Service],
    tasks: Iterable[Task],
    nodes: Mapping[str, Node],
    now: float,
    new_id: Callable[[], str],
) -> ReplicationPlan:
    plan = ReplicationPlan()
    by_service: dict[str, list[Task]] = defaultdict(list)
    for task in tasks:
        by_service[task.service].append(task)
    for name, service in services.items():
        _reconcile_job(service, by_service.get(name, []), nodes, now, new_id, plan)
    return plan


def begin_run(service: Service, now: float, scheduled: float | None = None) -> JobStatus:
    """The status of a new run of `service` starting at `now` (the one before goes into the history)."""
    status = service.job_status
    history: list[JobRun] = []
    number = 1
    last_schedule = scheduled
    if status is not None:
        history = list(status.history)
        number = status.run + 1
        if status.run > 0:
            state = "superseded" if status.active else status.state
            history.append(
                JobRun(
                    run=status.run, started_at=status.started_at, ended_at=status.ended_at if status.ended_at is not None else now,
                    state=state, completed=status.completed, failed=status.failed, message=status.message,
                )
            )
        if scheduled is None:
            last_schedule = status.last_schedule
    return JobStatus(
        run=number, state="running", spec_version=service.version, started_at=now, last_schedule=last_schedule,
        wanted=service.spec.replicas if service.spec.mode == ServiceMode.replicated_job else 0,
        history=history[-RUN_HISTORY:],
    )


def rerun(service: Service, now: float) -> Service:
    """`corral job run`: the service with a new run begun; refused for a service that is not a job or whose run is under way."""
    if not service.spec.mode.is_job:
        raise InvalidSpec("service", f"service {service.name} is not a job (deploy.mode {service.spec.mode.value}): there is nothing to run")
    status = service.job_status
    if status is not None and status.active:
        raise Conflict(f"job {service.name} is running (run {status.run}): wait for it to end, then run it again")
    return service.model_copy(update={"job_status": begin_run(service, now), "updated_at": now})


def _reconcile_job(
    service: Service, tasks: list[Task], nodes: Mapping[str, Node], now: float, new_id: Callable[[], str], plan: ReplicationPlan
) -> None:
    job = service.spec.job or JobSpec()
    status = _next_status(service, job, now)
    if status.run > 0:
        status = _reconcile_run(service, job, status, tasks, nodes, now, new_id, plan)
    _retire_older_runs(job, status, tasks, now, plan)
    changed = service
    if status != service.job_status:
        changed = changed.model_copy(update={"job_status": status})
    if service.update_status is not None and service.update_status.state != UpdateState.completed:
        # A job's new spec is taken by its next run: there is no rolling update to follow.
        done = service.update_status.model_copy(update={"state": UpdateState.completed, "completed_at": now})
        changed = changed.model_copy(update={"update_status": done})
    if changed is not service:
        plan.services.append(changed)


def _next_status(service: Service, job: JobSpec, now: float) -> JobStatus:
    """The status with a new run begun if one is due: the first run of a job, a new spec, a cron time."""
    status = service.job_status
    if job.schedule is None:
        if status is None or (status.run > 0 and status.spec_version < service.version):
            return begin_run(service, now)
        return status
    decision = cron.decide(job, status, service.created_at, now)
    if decision.start:
        return begin_run(service, now, decision.scheduled)
    if status is None:
        status = JobStatus(run=0, state="waiting", started_at=now, spec_version=service.version)
    if decision.skip:
        return status.model_copy(update={"last_schedule": decision.scheduled, "message": decision.reason})
    if decision.reason and status.message != decision.reason and status.active:
        return status.model_copy(update={"message": decision.reason})
    return status


def _reconcile_run(
    service: Service,
    job: JobSpec,
    status: JobStatus,
    tasks: list[Task],
    nodes: Mapping[str, Node],
    now: float,
    new_id: Callable[[], str],
    plan: ReplicationPlan,
) -> JobStatus:
    """Make the run's tasks move it on; returns its status as it now stands."""
    slots: dict[str, list[Task]] = defaultdict(list)
    for task in tasks:
        if task.job_run == status.run:
            slots[task.slot_key].append(task)
    for history in slots.values():
        history.sort(key=lambda t: (t.created_at, t.attempt, t.id))
    if status.active:
        wanted = _wanted_slots(service, nodes, slots)
    else:
        wanted = {}
    done = {key for key, history in slots.items() if any(t.state == TaskState.complete for t in history)}
    failed = sum(1 for history in slots.values() for t in history if t.state in _OWN_FAILURES)
    for history in slots.values():
        for task in history:
            if task.terminal and task.desired_state == DesiredState.running:
                plan.update.append(replication._shut_down(task, now, ""))
    if not status.active:
        return status
    counted = {"completed": len(done & set(wanted)), "failed": failed, "wanted": len(wanted)}
    ended = ""
    if failed > job.backoff_limit:
        ended = f"backoff limit reached ({failed} failed tasks, limit {job.backoff_limit})"
    elif job.deadline is not None and now - status.started_at >= job.deadline:
        ended = f"deadline exceeded (ran {now - status.started_at:.0f}s, deadline {job.deadline:g}s)"
    if ended or set(wanted) <= done:
        for history in slots.values():
            for task in history:
                if not task.terminal and task.desired_state == DesiredState.running:
                    plan.update.append(replication._shut_down(task, now, f"job run {status.run} {'failed' if ended else 'completed'}"))
        return status.model_copy(
            update={**counted, "state": "failed" if ended else "completed", "ended_at": now, "message": ended}
        )
    limit = job.parallelism or len(wanted)
    live = {key for key, history in slots.items() if any(not t.terminal and t.desired_state == DesiredState.running for t in history)}
    active = len(live & set(wanted))
    shape = service.spec.task_shape()
    for key, (slot, node) in sorted(wanted.items(), key=_slot_order):
        if key in done or key in live:
            continue
        if active >= limit:
            break
        active += 1
        plan.create.append(_task_for(service, shape, status.run, slot, node, slots.get(key, []), now, new_id))
    return status.model_copy(update=counted)


def _slot_order(item: tuple[str, tuple[int | None, str | None]]) -> tuple[int, str]:
    slot, node = item[1]
    return (slot if slot is not None else 0, node or "")


def _wanted_slots(
    service: Service, nodes: Mapping[str, Node], slots: Mapping[str, list[Task]]
) -> dict[str, tuple[int | None, str | None]]:
    if service.spec.mode == ServiceMode.replicated_job:
        return {str(slot): (slot, None) for slot in range(1, service.spec.replicas + 1)}
    # A global job runs once on every eligible node, as a global service is placed (plus the nodes it already ran on).
    wanted = replication._wanted_slots(service, nodes, slots)
    for key, history in slots.items():
        if key not in wanted and history and history[0].node is not None and history[0].node in nodes:
            wanted[key] = (None, history[0].node)
    return wanted


def _task_for(
    service: Service,
    shape: ServiceSpec,
    run: int,
    slot: int | None,
    node: str | None,
    history: list[Task],
    now: float,
    new_id: Callable[[], str],
) -> Task:
    """The slot's next task: after a failure of its own, once the restart policy's back-off has passed."""
    previous = history[-1] if history else None
    backoff = 0
    not_before = 0.0
    if previous is not None and previous.state in _OWN_FAILURES:
        backoff = previous.backoff + 1
        not_before = max(now, previous.updated_at) + replication.restart_delay(service.spec.restart_policy.delay, backoff)
    attempt = previous.attempt + 1 if previous is not None else 0
    restarts = previous.restarts + (1 if backoff else 0) if previous is not None else 0
    task = replication.new_task(service, shape, slot, node, attempt, restarts, not_before, now, new_id)
    return task.model_copy(update={"job_run": run, "backoff": backoff})


def _retire_older_runs(job: JobSpec, status: JobStatus, tasks: list[Task], now: float, plan: ReplicationPlan) -> None:
    """Stop the live tasks of earlier runs (`allow` lets them finish) and forget the ended tasks of all but the last run."""
    for task in tasks:
        if task.job_run == status.run:
            continue
        if task.terminal:
            if task.desired_state == DesiredState.running:
                plan.update.append(replication._shut_down(task, now, ""))
            elif task.job_run < status.run - 1:
                plan.delete.append(task.id)
        elif task.state in (TaskState.new, TaskState.pending) or (
            task.desired_state == DesiredState.running and job.concurrency_policy != "allow"
        ):
            plan.update.append(replication._shut_down(task, now, f"run {task.job_run} replaced by run {status.run}"))
