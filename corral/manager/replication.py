"""Replication: make each service's set of tasks match its spec.

`reconcile` is pure: given the services, the tasks, the nodes and `now`, it
returns the tasks to create, the changed copies of tasks to write and the
ids of tasks to delete. It writes nothing and reads no clock, so it can run
any number of times, after any crash, and reach the same answer (level
driven: it looks only at state, never at what happened last time).

Per slot (replica number, or node for a global service) the newest task is
the one that counts. A slot gets a new task when it has none, when its task
ended and the restart policy says to run it again, when its node was
drained, or when the service's spec changed. Old tasks are asked to shut
down (desired_state), never deleted while they may still hold a container.

A spec change reaches running tasks as `rollout.step` allows (parallelism,
order, delay, monitor, canary, pause and rollback): a slot whose running task
is outdated waits its turn; with order start-first its new task starts
beside the old one, which is shut down once the new one runs (the one time
a slot holds two live tasks).
"""

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from corral.manager import rebalance, rollout
from corral.model import Node, Service, ServiceMode, ServiceSpec, Task, TaskState
from corral.model.constraint import parse_constraint
from corral.model.node import NodeAvailability, NodeState
from corral.model.task import DesiredState, UNPLACED_STATES

HISTORY_PER_SLOT = 5  # ended tasks kept per slot for `service ps` (Swarm keeps 5)
MAX_RESTART_DELAY = 60.0
MIN_BACKOFF = 0.5  # seconds: the base of the back-off when the restart delay is 0


@dataclass
class ReplicationPlan:
    create: list[Task] = field(default_factory=list)
    update: list[Task] = field(default_factory=list)
    delete: list[str] = field(default_factory=list)
    services: list[Service] = field(default_factory=list)  # changed rollout status, or a rollback
    # Fresh slots (a deploy's or a scale-up's replicas) this plan may still start; None: no limit.
    new_slots: int | None = None
    deferred: int = 0  # fresh slots left for a later pass (over `new_slots`)

    @property
    def empty(self) -> bool:
        return not (self.create or self.update or self.delete or self.services)


def reconcile(
    services: Mapping[str, Service],
    tasks: Iterable[Task],
    nodes: Mapping[str, Node],
    now: float,
    new_id: Callable[[], str],
    history: int = HISTORY_PER_SLOT,
    new_slots: int | None = None,
) -> ReplicationPlan:
    """`history`: ended tasks kept per slot (their containers too, so their logs stay readable).

    `new_slots`: how many slots that never had a task get one in this call at most (None: all);
    the others are counted in the plan's `deferred`, for a later call. A deploy of a million
    replicas is then created a bounded batch at a time, as Kubernetes' ReplicaSet controller
    creates pods in bursts: what one pass holds (new tasks, their copies, dumps and writes: about
    8 KB a task until written) stays bounded. Replacements of existing slots are never deferred."""
    plan = ReplicationPlan(new_slots=new_slots)
    by_service: dict[str, list[Task]] = defaultdict(list)
    for task in tasks:
        by_service[task.service].append(task)
    for name, service_tasks in by_service.items():
        if name not in services:
            _retire_orphans(service_tasks, now, plan)
    for name, service in services.items():
        _reconcile_service(service, by_service.get(name, []), nodes, now, new_id, plan, history)
    return plan


def _retire_orphans(tasks: list[Task], now: float, plan: ReplicationPlan) -> None:
    for task in tasks:
        if task.terminal or task.state in UNPLACED_STATES:
            plan.delete.append(task.id)
        elif task.desired_state != DesiredState.shutdown:
            plan.update.append(_shut_down(task, now, "service removed"))


def _reconcile_service(
    service: Service,
    tasks: list[Task],
    nodes: Mapping[str, Node],
    now: float,
    new_id: Callable[[], str],
    plan: ReplicationPlan,
    history_kept: int = HISTORY_PER_SLOT,
) -> None:
    slots: dict[str, list[Task]] = defaultdict(list)
    for task in tasks:
        slots[task.slot_key].append(task)
    for history in slots.values():
        history.sort(key=lambda t: (t.created_at, t.attempt, t.id))

    wanted = _wanted_slots(service, nodes, slots)
    for key, history in slots.items():
        if key in wanted:
            continue
        # A slot no longer wanted (scale-down, a global service's node left):
        # stop what runs there, then forget the slot entirely, so a later
        # scale-up starts it afresh.
        for task in history:
            if task.terminal or task.state in UNPLACED_STATES:
                plan.delete.append(task.id)
            elif task.desired_state == DesiredState.running:
                plan.update.append(_shut_down(task, now, "scaled down"))
    step = rollout.step(service, {key: slots.get(key, []) for key in wanted}, now)
    if step.service != service:
        plan.services.append(step.service)
        service = step.service
    shape = service.spec.task_shape()  # once per service: every new task shares this (frozen) spec
    changes = len(plan.create) + len(plan.update) + len(plan.delete) + plan.deferred
    for key, (slot, node) in wanted.items():
        history = slots.get(key, [])
        _reconcile_slot(service, shape, slot, node, history, nodes, now, new_id, plan, key in step.replace, step.start_first)
        _trim_history(history, plan, history_kept)
    if changes == len(plan.create) + len(plan.update) + len(plan.delete) + plan.deferred and not step.replace:
        # At rest this pass: replicas may move to restore the spread (rebalance.py), start-first.
        for move in rebalance.moves(service, {key: slots.get(key, []) for key in wanted}, nodes, now):
            old = move.task
            task = new_task(service, shape, old.slot, None, old.attempt + 1, old.restarts, 0.0, now, new_id)
            plan.create.append(task.model_copy(update={"moved_from": old.id}))


def _wanted_slots(
    service: Service, nodes: Mapping[str, Node], slots: Mapping[str, list[Task]]
) -> dict[str, tuple[int | None, str | None]]:
    """slot key -> (slot, pinned node) for every replica the service should have.

    A global service runs on every ready node that matches its constraints
    and is active, or paused with its task already there (pause keeps tasks).
    """
    spec = service.spec
    if spec.mode == ServiceMode.replicated:
        return {str(slot): (slot, None) for slot in range(1, spec.replicas + 1)}
    constraints = [parse_constraint(text) for text in spec.placement.constraints]
    return {
        f"node={node.name}": (None, node.name)
        for node in nodes.values()
        if (
            node.availability == NodeAvailability.active
            or (node.availability == NodeAvailability.pause and _has_live_task(slots.get(f"node={node.name}", [])))
        )
        and node.state == NodeState.ready
        and all(c.matches(node.name, node.labels) for c in constraints)
    }


def _has_live_task(history: list[Task]) -> bool:
    return any(t.desired_state == DesiredState.running and not t.terminal for t in history)


def _reconcile_slot(
    service: Service,
    shape: ServiceSpec,
    slot: int | None,
    node: str | None,
    history: list[Task],
    nodes: Mapping[str, Node],
    now: float,
    new_id: Callable[[], str],
    plan: ReplicationPlan,
    may_update: bool,
    start_first: bool,
) -> None:
    running = [t for t in history if t.desired_state == DesiredState.running]
    if len(running) > 1 and running[-1].moved_from and (running[-1].terminal or running[-1].state == TaskState.pending):
        # A rebalancing move that cannot be placed, or failed: cancelled, the replica stays where it runs.
        moved = running[-1]
        plan.update.append(_shut_down(moved, now, f"rebalance cancelled: {moved.error or moved.state.value}"))
        return
    keep = _live_to_keep(running, shape, nodes)
    if len(keep) > 1 and _replace_reason(keep[0], nodes) is not None and not _on_drained_node(keep[0], nodes):
        keep = keep[1:]  # the old task of a handover cannot stay where it is (it ended, or its node is gone)
    kept = {t.id for t in keep}
    for extra in running:
        if extra.id not in kept:
            why = _replace_reason(extra, nodes) or (
                f"moved to node {keep[-1].node} (rebalance)" if keep and keep[-1].moved_from == extra.id
                else "duplicate task in slot" if rollout.runs(extra, shape) else f"updated to version {service.version}"
            )
            plan.update.append(_shut_down(extra, now, why))
    current = keep[-1] if keep else (history[-1] if history else None)

    if current is None:
        if plan.new_slots is not None:
            if plan.new_slots <= 0:
                plan.deferred += 1
                return
            plan.new_slots -= 1
        plan.create.append(new_task(service, shape, slot, node, 0, 0, 0.0, now, new_id))
        return
    if current.desired_state == DesiredState.shutdown:
        # The slot's newest task was stopped: either the restart policy said
        # no more (then the slot rests), or it was stopped for a reason that
        # left the slot empty (then it needs a task again).
        if current.terminal and not _should_restart(service, current, now):
            return
        if not current.terminal and not start_first and not rollout.runs(current, shape):
            return  # a stop-first update: the new task starts once the old one has stopped (it may hold a port, a volume)
        plan.create.append(_replacement(service, shape, slot, node, current, history, now, new_id, delay=False))
        return

    reason = _replace_reason(current, nodes)
    updating = reason is None  # if it goes, it goes for the rollout (its spec is outdated), not for its node or its end
    if current.state == TaskState.running and _on_drained_node(current, nodes) and rollout.runs(current, shape):
        # A drain moves a serving, up-to-date replica start-first: it keeps serving until its
        # replacement runs. (An outdated one goes the way its rollout says.)
        if len(keep) == 1:
            plan.create.append(_replacement(service, shape, slot, node, current, history, now, new_id, delay=False))
        return
    if reason is None:
        if len(keep) > 1 or rollout.runs(current, shape):
            return  # nothing to change, or a start-first handover under way
        if current.state == TaskState.running and not may_update:
            return  # outdated, but waits for its turn in the rollout
        reason = f"updated to version {service.version}"
        if current.state == TaskState.running and start_first:
            plan.create.append(_replacement(service, shape, slot, node, current, history, now, new_id, delay=False))
            return
    if current.terminal:
        if not _should_restart(service, current, now):
            plan.update.append(_shut_down(current, now, f"restart policy: not restarting after {current.state.value}"))
            return
        plan.update.append(_shut_down(current, now, reason))
        plan.create.append(_replacement(service, shape, slot, node, current, history, now, new_id, delay=True))
        return
    plan.update.append(_shut_down(current, now, reason))
    if updating and not start_first and current.state not in UNPLACED_STATES:
        return  # stop-first: its replacement is made once it has stopped (the branch above)
    plan.create.append(_replacement(service, shape, slot, node, current, history, now, new_id, delay=False))


def _live_to_keep(running: list[Task], shape: ServiceSpec, nodes: Mapping[str, Node]) -> list[Task]:
    """The slot's live tasks that stay: its newest, or during a start-first update (or a drain) the old one beside it.

    After a rollback the newest task may be the outdated one: then the task
    of the current spec stays and the newer, rolled-back one goes.
    """
    if len(running) <= 1:
        return running
    current = [t for t in running if rollout.runs(t, shape)]
    newest = current[-1] if current else running[-1]
    # A drained replica waits only for a replacement that has a node; with nowhere to go, a drain still drains.
    replacement_placed = newest.state in (TaskState.assigned, TaskState.starting)
    older_leaving = [
        t
        for t in running[: running.index(newest)]
        if not t.terminal
        and (not rollout.runs(t, shape) or (replacement_placed and _on_drained_node(t, nodes)) or newest.moved_from == t.id)
    ]
    if current and newest.state != TaskState.running and older_leaving:
        return [older_leaving[-1], newest]  # the old task serves until the new one runs
    return [newest]


def _on_drained_node(task: Task, nodes: Mapping[str, Node]) -> bool:
    node = nodes.get(task.node) if task.node else None
    return node is not None and node.availability == NodeAvailability.drain


def _replace_reason(task: Task, nodes: Mapping[str, Node]) -> str | None:
    """Why the slot's live task must give way at once (not a spec change), or None if it can stay."""
    if task.terminal:
        return f"task {task.state.value}"
    if task.node and task.node not in nodes:
        return f"node {task.node} removed"
    if _on_drained_node(task, nodes):
        return f"node {task.node} drained"
    return None


_NOT_ITS_FAULT = (TaskState.lost, TaskState.orphaned, TaskState.shutdown)


def _should_restart(service: Service, task: Task, now: float) -> bool:
    """Does the restart policy run an ended task's slot again? (Stable over time.)"""
    if task.state in _NOT_ITS_FAULT:
        return True  # the node failed or we stopped it: not the task's own doing
    policy = service.spec.restart_policy
    if policy.condition == "none":
        return False
    if policy.condition == "on-failure" and task.state == TaskState.complete:
        return False
    # max_attempts 0 (or unset) means no limit, as in Swarm.
    return not policy.max_attempts or _charged_restarts(service, task) < policy.max_attempts


def _ran_for(task: Task) -> float:
    return max(0.0, task.updated_at - max(task.created_at, task.not_before))


def _charged_restarts(service: Service, task: Task) -> int:
    """Restarts that count against max_attempts: a task that ran a whole window clears them."""
    window = service.spec.restart_policy.window
    if window > 0 and _ran_for(task) > window:
        return 0
    return task.restarts


def restart_delay(delay: float, backoff: int) -> float:
    """The wait before restart number `backoff` of a slot failing fast: the policy's delay, then doubling.

    A zero delay restarts at once the first time, then backs off from
    MIN_BACKOFF, so a crash loop never spins.
    """
    if backoff <= 1:
        return min(MAX_RESTART_DELAY, delay)
    return min(MAX_RESTART_DELAY, max(delay, MIN_BACKOFF) * 2.0 ** (backoff - 1))


def _replacement(
    service: Service,
    shape: ServiceSpec,
    slot: int | None,
    node: str | None,
    previous: Task,
    history: list[Task],
    now: float,
    new_id: Callable[[], str],
    delay: bool,
) -> Task:
    own_fault = delay and previous.state not in _NOT_ITS_FAULT
    not_before = 0.0
    backoff = 0
    restarts = previous.restarts
    if own_fault:
        restarts = _charged_restarts(service, previous) + 1
        # Back off exponentially while the slot keeps failing fast (a crash
        # loop); a task that ran longer than the cap starts the count again.
        backoff = previous.backoff + 1 if _ran_for(previous) < MAX_RESTART_DELAY else 1
        not_before = now + restart_delay(service.spec.restart_policy.delay, backoff)
    task = new_task(service, shape, slot, node, previous.attempt + 1, restarts, not_before, now, new_id)
    return task.model_copy(update={"backoff": backoff}) if backoff else task


def new_task(
    service: Service,
    shape: ServiceSpec,
    slot: int | None,
    node: str | None,
    attempt: int,
    restarts: int,
    not_before: float,
    now: float,
    new_id: Callable[[], str],
) -> Task:
    return Task(
        id=new_id(),
        service=service.name,
        stack=service.spec.stack,
        slot=slot,
        node=node,
        spec=shape,
        spec_version=service.version,
        attempt=attempt,
        restarts=restarts,
        not_before=not_before,
        created_at=now,
        updated_at=now,
    )


def _shut_down(task: Task, now: float, reason: str) -> Task:
    if task.state in UNPLACED_STATES:
        return task.model_copy(
            update={"desired_state": DesiredState.shutdown, "state": TaskState.shutdown, "error": reason, "updated_at": now}
        )
    update: dict[str, object] = {"desired_state": DesiredState.shutdown, "updated_at": now}
    if not task.terminal or not task.error:
        update["error"] = reason if not task.terminal else task.error
    return task.model_copy(update=update)


def _trim_history(history: list[Task], plan: ReplicationPlan, kept: int = HISTORY_PER_SLOT) -> None:
    ended = [t for t in history if t.desired_state == DesiredState.shutdown and t.terminal]
    for task in ended[: max(0, len(ended) - kept)]:
        plan.delete.append(task.id)
