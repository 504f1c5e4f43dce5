"""The control loop: health, then replication, then scheduling, over and over.

Changes come in as keys on a work queue (`queue.WorkQueue`, as in Kubernetes
controllers): the cache's listener turns each store change into the names of
the services it touches (a node change: the services with tasks on it, and
the global services). A pass takes every ready key and reconciles each
service on its own from a snapshot of the cache, with its own error handling:
a service whose reconcile raises gets its error in its `reconcile_error`
(shown by `corral service inspect` and `corral events`) and is retried with
a per-key exponential back-off with jitter, while the others go on.

Every step returns a `plan.Plan` whose changes carry the revision of the copy
they were computed from; `plan.apply` writes them with exactly those
revisions (never the live cache's), so a change somebody else made after the
snapshot (an agent's report, a user's scale) makes the controller's change
lose, and the lost change's service is queued again to be reconciled from
what is stored now. After writing, a pass waits until the cache has seen its
own writes, so the next one never acts on state older than what it wrote.

Health looks at node leases on its own timer (HEALTH_EVERY, or at once after
a node change). Scheduling stays one batch over every unplaced task per pass,
with a placement index kept between passes: placing tasks one service at a
time would rebuild what the batch shares (candidate nodes per constraint set,
ranking) and was what kept 100,000 placements fast. A periodic full resync
(every service queued, at most every `reconcile_interval` and at most
1/FULL_PASS_SHARE of the time) is the safety net. Restarting the manager at
any moment is safe: a pass looks only at what is stored.
"""

import asyncio
import logging
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from functools import partial
from dataclasses import dataclass, field
from typing import Any

from corral.manager import health, keys, replication
from corral.manager.jobs import runs as job_runs
from corral.manager.cache import StateCache, Versioned
from corral.manager.cluster import Leases
from corral.manager.dependencies import waiting_tasks
from corral.manager.plan import Plan, apply
from corral.manager.queue import WorkQueue
from corral.manager.scheduling import ClusterIndex, schedule
from corral.manager.scheduling.volumes import bindings_of, needs_volumes, new_volumes, removing_of
from corral.manager.settings import ManagerSettings
from corral.manager.stalls import StallWatch
from corral.model import Node, NodeState, Service, ServiceMode, Task, TaskState
from corral.model.service import ROLLOUT_SETTLED
from corral.model.task import DesiredState, TERMINAL_STATES, UNPLACED_STATES
from corral.store import Store, WatchEvent

log = logging.getLogger(__name__)


FULL_PASS_SHARE = 20  # the pass over every service takes at most 1/20 of the time (5% of a core)
HEALTH_EVERY = 0.25  # seconds between two looks at node leases (adds at most this to failure detection)


def new_task_id() -> str:
    return uuid.uuid4().hex[:16]


@dataclass
class _Replicated:
    """What replication decided for the keys of one pass."""

    plan: Plan = field(default_factory=lambda: Plan("replication"))
    create: list[Task] = field(default_factory=list)  # written once placed, by scheduling
    errors: dict[str, str] = field(default_factory=dict)  # service -> why its reconcile failed
    deferred: list[str] = field(default_factory=list)  # services with replicas left for the next pass (new_slots_per_pass)


class Controller:
    def __init__(
        self,
        store: Store,
        cache: StateCache,
        leases: Leases,
        settings: ManagerSettings,
        clock: Callable[[], float] = time.time,
        queue: WorkQueue | None = None,
        on_plan: Callable[[Plan], Awaitable[None]] | None = None,
        stalls: StallWatch | None = None,
        on_pass: Callable[[float, bool], None] | None = None,
        users_turn: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """`on_plan` (for tests) is awaited with each plan before it is applied. `stalls`: the manager's
        loop-lag monitor, asked before every health decision (see stalls.py). `on_pass(seconds, ok)` is told
        each pass of `run` (the manager's metrics). `users_turn` is awaited before each piece of work in a
        worker thread and each write (the manager's `UsersFirst.wait_turn`): users' requests first."""
        self.store = store
        self.stalls = stalls
        self.cache = cache
        self.leases = leases
        self.settings = settings
        self.clock = clock
        self.queue = queue if queue is not None else WorkQueue(clock)
        self.on_plan = on_plan
        self.on_pass = on_pass
        self.users_turn = users_turn
        self.wake = asyncio.Event()
        self._dirty_tasks: set[str] = set()  # tasks changed since the last pass, for scheduling
        self._next_full_pass = 0.0
        self._loads_seen = -1
        self._index = ClusterIndex()  # the scheduler's view, kept between passes
        self._unplaced: dict[str, None] = {}  # ids of tasks waiting for a node, in the order they came
        self._created: set[str] = set()  # ids of the tasks the last pass created, until the cache has them
        self._deferred: dict[str, None] = {}  # services with replicas still to start, queued as new_slots_per_pass allows
        self._next_health = 0.0
        cache.listeners.append(self._note)

    def _note(self, event: WatchEvent) -> None:
        """Turn a change into keys: its task's service, the service, or what a node change affects.

        Called by the cache just before it applies the event, so the cache holds the object as it was.
        """
        if event.key.startswith(keys.TASKS):
            task_id = event.key.removeprefix(keys.TASKS)
            self._dirty_tasks.add(task_id)
            found = self.cache.tasks.get(task_id)
            before = found.obj if found is not None else None
            if before is None and task_id in self._created:
                self._created.discard(task_id)  # a task this controller created: its pass counted it already
            else:
                service = event.value["service"] if event.value is not None else before.service if before else None
                if service is not None and not self._progress_only(before, event.value):
                    self.queue.add(service)
        elif event.key.startswith(keys.SERVICES):
            name = event.key.removeprefix(keys.SERVICES)
            if not self._own_error_only(name, event.value):
                self.queue.add(name)
        elif event.key.startswith(keys.NODES):
            self._next_health = 0.0
            for name in self._affected_by_node(event.key.removeprefix(keys.NODES)):
                self.queue.add(name)
        self.wake.set()

    def _affected_by_node(self, node: str) -> set[str]:
        """The services a node change may change: those with tasks on it, and the global ones."""
        cache = self.cache
        affected = {cache.tasks[task_id].obj.service for task_id in cache.node_tasks.get(node, ())}
        affected.update(name for name, v in cache.services.items() if v.obj.spec.mode == ServiceMode.global_)
        return affected

    def _own_error_only(self, name: str, after: dict[str, Any] | None) -> bool:
        """Only the service's `reconcile_error` changed (the controller's own note): not a reason to retry
        before its back-off ends."""
        found = self.cache.services.get(name)
        if found is None or after is None or after.get("reconcile_error", "") == found.obj.reconcile_error:
            return False
        return Service.model_validate({**after, "reconcile_error": found.obj.reconcile_error}) == found.obj

    async def run(self) -> None:
        await self.cache.synced.wait()
        self.leases.seed(list(self.cache.nodes), self.clock())
        while True:
            self.wake.clear()
            started = time.perf_counter()
            try:
                await self.pass_once()
            except Exception:  # a bad pass (the store failing) must not stop the control plane
                log.exception("reconcile pass failed; retrying")
                self._passed(started, ok=False)
                await asyncio.sleep(self.settings.reconcile_interval)
            else:
                self._passed(started, ok=True)
            wait = self.settings.reconcile_interval
            due = self.queue.next_due()
            if due is not None:
                wait = min(wait, max(0.0, due - self.clock()))
            try:
                await asyncio.wait_for(self.wake.wait(), wait)
            except TimeoutError:
                pass

    async def _users_turn(self) -> None:
        if self.users_turn is not None:
            await self.users_turn()

    def _passed(self, started: float, ok: bool) -> None:
        if self.on_pass is not None:
            self.on_pass(time.perf_counter() - started, ok)

    async def pass_once(self) -> None:
        await self._apply(self._health_plan())
        replicated = await self._replication_plan()
        requeued = await self._apply(replicated.plan)
        # A service with a change that lost was planned from a stale copy: its new tasks wait for its next turn.
        created = [task for task in replicated.create if task.service not in requeued]
        # New tasks are placed before they are first written (one write each, as Nomad's
        # allocations are, instead of a write as `new` and another as `assigned`).
        try:
            lost = await self._apply(await self._scheduling_plan(created))
        except BaseException:
            self._loads_seen = -1  # the index may hold placements never written: rebuild it next pass
            self._created.clear()
            raise
        if lost:
            self._loads_seen = -1

    async def _apply(self, plan: Plan) -> set[str]:
        """Write the plan; returns the keys queued again because a change of theirs lost a race."""
        if not plan.changes:
            return set()
        if self.on_plan is not None:
            await self.on_plan(plan)
        await self._users_turn()  # the store's commit works in its thread: it would share the GIL with users
        applied = await apply(self.store, plan)
        requeue = applied.requeue
        if applied.lost:
            log.info("%d %s changes lost a race; reconciling %d services again", len(applied.lost), plan.stage, len(requeue))
            for key in requeue:
                self.queue.add(key)
            if plan.stage == "health":
                self._next_health = 0.0
        if applied.revision:  # with every change lost, the revision they lost to: the next pass must see it
            await self.cache.wait_for(applied.revision)
        return requeue

    def _health_plan(self) -> Plan:
        """Nodes past their lease go down and their tasks are lost; looked at every HEALTH_EVERY
        seconds, or at once when a node changed (a pass per task change cost 13% of the manager
        with 5,000 nodes)."""
        cache = self.cache
        plan = Plan("health")
        if self.stalls is not None:
            self.stalls.tick()  # a stall that just ended extends the leases before they are judged
        now = self.clock()
        if now < self._next_health:
            return plan
        self._next_health = now + HEALTH_EVERY
        read_nodes = dict(cache.nodes)
        nodes = {name: v.obj for name, v in read_nodes.items()}
        read_tasks = {
            task_id: cache.tasks[task_id]
            for name in self._nodes_at_risk(nodes, now)
            for task_id in cache.node_tasks.get(name, ())
        }
        decided = health.reconcile(
            nodes, (v.obj for v in read_tasks.values()), self.leases.last, now, self.settings.down_after
        )
        for node in decided.nodes:
            plan.put_node(node, read_nodes[node.name])
        for task in decided.tasks:
            plan.put_task(task, read_tasks[task.id], task.service)
        return plan

    def _nodes_at_risk(self, nodes: dict[str, Node], now: float) -> list[str]:
        """The nodes holding tasks whose tasks health may change: gone, down, or past their lease.

        Only their tasks go to `health.reconcile` (scanning 100,000 tasks every pass was the
        largest cost of a pass); the tasks on any other node cannot be changed by it.
        """
        at_risk = []
        for name in self.cache.node_tasks:
            node = nodes.get(name)
            if node is None or node.state != NodeState.ready:
                at_risk.append(name)
            elif now - self.leases.last.get(name, node.last_heartbeat) > self.settings.down_after:
                at_risk.append(name)
        return at_risk

    def _progress_only(self, before: Task | None, after: dict[str, Any] | None) -> bool:
        """A live task moved along (assigned, starting, running) and nothing replication looks at changed.

        Replication decides on creation, deletion, desired state, node, spec and the end of a
        task; the steps in between matter only to a service in the middle of a rollout.
        """
        if before is None or after is None:
            return False
        # The enums are str enums: they compare (and hash) as their values, so neither side is converted.
        if (
            before.desired_state != after["desired_state"]
            or before.node != after["node"]
            or before.spec_version != after["spec_version"]
            or before.attempt != after["attempt"]
        ):
            return False
        if before.state in TERMINAL_STATES or after["state"] in TERMINAL_STATES:
            return False
        if after.get("moved_from"):
            return False  # a rebalancing move: its old replica stops once it runs
        service = self.cache.services.get(after["service"])
        status = service.obj.update_status if service is not None else None
        return status is None or status.state in ROLLOUT_SETTLED

    async def _replication_plan(self) -> _Replicated:
        """Replication of the services whose keys are ready; now and then of every service.

        Services in the middle of a rollout are queued every pass (time moves a rollout on).
        The snapshot (each service and its tasks, with their revisions) is taken on the event
        loop; the pure work runs in a worker thread, so that with 100,000 tasks the event loop
        (the API) keeps getting its turn.
        """
        cache = self.cache
        began = time.perf_counter()
        now = self.clock()
        full = now >= self._next_full_pass or self._loads_seen != cache.loads
        if full:
            self.queue.add_all([*cache.services, *(name for name, ids in cache.service_tasks.items() if ids)])
        self.queue.add_all(
            name for name, v in cache.services.items()
            if v.obj.update_status is not None and v.obj.update_status.state not in ROLLOUT_SETTLED
        )
        # Jobs that run or wait for a cron time: time alone moves them on (deadline, back-off, schedule).
        self.queue.add_all(name for name, v in cache.services.items() if _timed_job(v.obj))
        await self._users_turn()  # before the state is read: what the thread works out is read then
        names = self.queue.take()
        if not names:
            return _Replicated()
        services = {name: cache.services.get(name) for name in names}
        tasks = {name: [cache.tasks[task_id] for task_id in cache.service_tasks.get(name, ())] for name in names}
        nodes = {name: v.obj for name, v in cache.nodes.items()}
        try:
            result = await asyncio.to_thread(
                self._replicate, services, tasks, nodes, now, self.settings.task_history, self.settings.new_slots_per_pass
            )
        finally:
            for name in names:
                self.queue.done(name)
        self._pace_deferred(result.deferred, result.create)
        for name in names:
            error = result.errors.get(name)
            if error is None:
                self.queue.forget(name)
            else:
                delay = self.queue.retry(name)
                log.warning("reconciling service %s failed (%s); retrying in %.1fs", name, error, delay)
        if full:
            spent = time.perf_counter() - began
            self._next_full_pass = now + max(self.settings.reconcile_interval, FULL_PASS_SHARE * spent)
        return result

    def _pace_deferred(self, deferred: list[str], creating: list[Task]) -> None:
        """Queue the services with replicas left to start, in order, as many as the next pass can start.

        Not all of them: a pass reconciles every task of each service it takes, and ten deferred
        services of 100,000 replicas each would all be read every pass while one of them gets the
        pass's replicas (a deploy of a million replicas went quadratic)."""
        self._deferred.update(dict.fromkeys(deferred))
        if not self._deferred:
            return
        created = Counter(task.service for task in creating)  # this pass's, not in the cache's counts yet
        room = self.settings.new_slots_per_pass
        for name in list(self._deferred):
            if room <= 0:
                break
            del self._deferred[name]
            self.queue.add(name)
            found = self.cache.services.get(name)
            if found is None or found.obj.spec.mode != ServiceMode.replicated:
                break  # how many it still needs is not known here: it takes the pass alone
            live = self.cache.service_counts.get(name, [0, 0])[0]
            room -= max(1, found.obj.spec.replicas - live - created[name])

    @staticmethod
    def _replicate(
        services: dict[str, Versioned[Service] | None],
        tasks: dict[str, list[Versioned[Task]]],
        nodes: dict[str, Node],
        now: float,
        history: int,
        new_slots: int,
    ) -> _Replicated:
        """Each service on its own: one that raises gets its error noted, and does not stop the others.
        At most `new_slots` fresh replicas in all; the services with more wait in `deferred`."""
        result = _Replicated()
        for name, read in services.items():
            service = read.obj if read is not None else None
            read_tasks = tasks[name]
            is_job = service is not None and service.spec.mode.is_job
            reconcile = job_runs.reconcile if is_job else partial(replication.reconcile, history=history, new_slots=new_slots)
            try:
                decided = reconcile(
                    {name: service} if service is not None else {}, [v.obj for v in read_tasks], nodes, now, new_task_id
                )
                part = Plan("replication")
                if read is not None:
                    # the rollout's status (or a rollback) first: the tasks of a rolled-back spec come after
                    stored = decided.services[-1] if decided.services else read.obj
                    if stored.reconcile_error:
                        stored = stored.model_copy(update={"reconcile_error": ""})
                    part.put_service(stored, read, requeue=name)
                by_id = {v.obj.id: v for v in read_tasks}
                for task in decided.update:
                    part.put_task(task, by_id[task.id], requeue=name)
                for task_id in decided.delete:
                    part.delete(keys.task_key(task_id), by_id[task_id], requeue=name)
            except Exception as err:  # one service's failure is its own: noted on it, retried with back-off
                log.exception("reconciling service %s failed", name)
                error = f"{type(err).__name__}: {err}"
                result.errors[name] = error
                if read is not None and read.obj.reconcile_error != error:
                    result.plan.put_service(read.obj.model_copy(update={"reconcile_error": error}), read)
                continue
            result.plan.changes += part.changes
            result.create += decided.create
            new_slots = decided.new_slots if decided.new_slots is not None else new_slots
            if decided.deferred:
                result.deferred.append(name)
        return result

    def _follow_tasks(self, changed: set[str] | list[str]) -> None:
        """Bring the scheduler's index and the unplaced set up to date with the tasks that changed."""
        cache = self.cache
        if self._loads_seen != cache.loads:  # first pass, or the cache listed again: start afresh
            self._loads_seen = cache.loads
            self._index = ClusterIndex()
            self._unplaced = {}
            self._created.clear()  # a re-list brings no create events to match them with
            changed = list(cache.tasks)
        for task_id in changed:
            found = cache.tasks.get(task_id)
            if found is None:
                self._index.release(task_id)
                self._unplaced.pop(task_id, None)
                continue
            task = found.obj
            if task.state in UNPLACED_STATES:  # holds nothing yet, even with its node named (global services)
                self._index.release(task_id)
            else:
                self._index.record(task)
            if task.state in UNPLACED_STATES and task.desired_state == DesiredState.running:
                self._unplaced.setdefault(task_id, None)
            else:
                self._unplaced.pop(task_id, None)

    async def _scheduling_plan(self, created: list[Task]) -> Plan:
        """Place the unplaced tasks and the new ones with the index kept between passes.

        The pure work runs in a worker thread. Every new task is in the result (created
        placed, pending with the reason, or as it is while its restart delay runs).
        """
        now = self.clock()
        changed, self._dirty_tasks = self._dirty_tasks, set()
        if not changed and not self._unplaced and not created and self._loads_seen == self.cache.loads:
            return Plan("scheduling")
        nodes = [v.obj for v in self.cache.nodes.values()]
        # Only the controller touches the index, and it waits for the thread. Following 100,000
        # new tasks into the index takes a while: on the event loop it held up the API.
        await self._users_turn()
        return await asyncio.to_thread(self._placements, nodes, changed, created, now)

    def _placements(self, nodes: list[Node], changed: set[str], created: list[Task], now: float) -> Plan:
        cache = self.cache
        self._follow_tasks(changed)
        # Each unplaced task as read now (object and revision together): what its change is computed from.
        read = {task_id: found for task_id in self._unplaced if (found := cache.tasks.get(task_id)) is not None}
        plan = Plan("scheduling")
        if not read and not created:
            return plan
        by_id = {task_id: v.obj for task_id, v in read.items()}
        by_id.update((t.id, t) for t in created)
        waiting = waiting_tasks(cache, by_id.values())  # depends_on: pending until the dependencies are ready
        ready = [task for task in by_id.values() if task.id not in waiting]
        # Only a batch with volumes reads the volume records (a slot sticks to the node holding its data).
        with_volumes = any(needs_volumes(task) for task in ready)
        volumes = [v.obj for v in cache.volumes.values()] if with_volumes else []
        decided = schedule(
            nodes, (), ready, now, sample=self.settings.schedule_sample, index=self._index,
            volumes=bindings_of(volumes) if with_volumes else None, removing=removing_of(volumes),
        )
        changes: dict[str, Task] = {}
        known = [(volume.node, volume.name) for volume in volumes]
        for assignment in decided.assignments:
            task = by_id[assignment.task_id]
            changes[task.id] = task.model_copy(
                update={"node": assignment.node, "state": TaskState.assigned, "error": "", "updated_at": now}
            )
            if with_volumes:  # recorded with the placement: from now on the slot comes back to this node
                for volume in new_volumes(task, assignment.node, known, now):
                    plan.put(keys.volume_key(volume.node, volume.name), volume, None, requeue=task.service)
                    known.append((volume.node, volume.name))
        for task in by_id.values():
            if task.not_before > now and not task.error.startswith("restart delayed"):
                wait = task.not_before - now
                changes[task.id] = task.model_copy(update={"error": f"restart delayed {wait:.0f}s (restart policy back-off)"})
        for task_id, reason in [*((miss.task_id, miss.reason) for miss in decided.unplaced), *waiting.items()]:
            task = by_id[task_id]
            if task.state != TaskState.pending or task.error != reason:
                changes[task.id] = task.model_copy(update={"state": TaskState.pending, "error": reason, "updated_at": now})
        for task in created:
            plan.put_task(changes.get(task.id, task), None, requeue=task.service)
        self._created.update(task.id for task in created)
        for task_id, task in changes.items():
            if task_id in read:
                plan.put_task(task, read[task_id], requeue=task.service)
        return plan


def _timed_job(service: Service) -> bool:
    """A job whose run is under way, or a cron job: passes must look at it as time goes by."""
    if not service.spec.mode.is_job:
        return False
    status = service.job_status
    return status is None or status.active or (service.spec.job is not None and service.spec.job.schedule is not None)
