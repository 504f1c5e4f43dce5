"""The control loop: health, then replication, then scheduling, over and over.

One pass reads the cache, asks each pure reconciler what to change, writes
the changes with compare-and-swap, and waits until the cache has seen its
own writes before the next pass, so a pass never acts on state older than
what it wrote. A pass runs when the state changes, and at least every
`reconcile_interval` seconds for what time alone changes (leases, restart
delays). Restarting the manager at any moment is safe: a pass looks only at
what is stored.
"""

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

from corral.manager import health, replication
from corral.manager.cache import StateCache
from corral.manager.cluster import Leases
from corral.manager import keys
from corral.manager.scheduling import ClusterIndex, schedule
from corral.manager.settings import ManagerSettings
from corral.manager.writes import apply, changed_only, node_put, service_put, task_delete, task_put
from corral.model import Node, NodeState, Task, TaskState
from corral.model.service import ROLLOUT_SETTLED
from corral.model.task import DesiredState, TERMINAL_STATES, UNPLACED_STATES
from corral.store import Op, Store, WatchEvent

log = logging.getLogger(__name__)


FULL_PASS_SHARE = 20  # the pass over every service takes at most 1/20 of the time (5% of a core)
HEALTH_EVERY = 0.25  # seconds between two looks at node leases (adds at most this to failure detection)


def new_task_id() -> str:
    return uuid.uuid4().hex[:16]


class Controller:
    def __init__(
        self,
        store: Store,
        cache: StateCache,
        leases: Leases,
        settings: ManagerSettings,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.cache = cache
        self.leases = leases
        self.settings = settings
        self.clock = clock
        self.wake = asyncio.Event()
        # What changed since the last pass, so a pass looks only at that (see `_note`).
        self._dirty_services: set[str] = set()
        self._dirty_tasks: set[str] = set()
        self._everything_dirty = True
        self._next_full_pass = 0.0
        self._loads_seen = -1
        self._index = ClusterIndex()  # the scheduler's view, kept between passes
        self._unplaced: dict[str, None] = {}  # ids of tasks waiting for a node, in the order they came
        self._created: set[str] = set()  # ids of the tasks the last pass created, until the cache has them
        self._next_health = 0.0
        cache.listeners.append(self._note)

    def _note(self, event: WatchEvent) -> None:
        """Remember what an event touched: its task and service; a node change touches every service.

        Called by the cache just before it applies the event, so the cache holds the task as it was.
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
                    self._dirty_services.add(service)
        elif event.key.startswith(keys.SERVICES):
            self._dirty_services.add(event.key.removeprefix(keys.SERVICES))
        else:
            self._everything_dirty = True
            self._next_health = 0.0
        self.wake.set()

    async def run(self) -> None:
        await self.cache.synced.wait()
        self.leases.seed(list(self.cache.nodes), self.clock())
        while True:
            self.wake.clear()
            try:
                await self.pass_once()
            except Exception:  # a bad pass must not stop the control plane
                log.exception("reconcile pass failed; retrying")
                await asyncio.sleep(self.settings.reconcile_interval)
            try:
                await asyncio.wait_for(self.wake.wait(), self.settings.reconcile_interval)
            except TimeoutError:
                pass

    async def pass_once(self) -> None:
        await self._write(self._health_ops())
        changes, created = await self._replication_ops()
        await self._write(changes)
        # New tasks are placed before they are first written (one write each, as Nomad's
        # allocations are, instead of a write as `new` and another as `assigned`).
        try:
            lost = await self._write(await self._scheduling_ops(created))
        except BaseException:
            self._loads_seen = -1  # the index may hold placements never written: rebuild it next pass
            self._created.clear()
            raise
        if lost:
            self._loads_seen = -1

    async def _write(self, ops: list[Op]) -> int:
        """Write ops; returns how many lost a race."""
        if not ops:
            return 0
        revision, lost = await apply(self.store, ops)
        if lost:
            log.info("%d writes lost a race; next pass retries", lost)
            self._everything_dirty = True
        if revision:
            await self.cache.wait_for(revision)
        return lost

    def _health_ops(self) -> list[Op]:
        """Nodes past their lease go down and their tasks are lost; looked at every HEALTH_EVERY
        seconds, or at once when a node changed (a pass per task change cost 13% of the manager
        with 5,000 nodes)."""
        cache = self.cache
        now = self.clock()
        if now < self._next_health:
            return []
        self._next_health = now + HEALTH_EVERY
        nodes = {name: v.obj for name, v in cache.nodes.items()}
        plan = health.reconcile(
            nodes,
            (task for name in self._nodes_at_risk(nodes, now) for task in cache.tasks_on(name)),
            self.leases.last,
            now,
            self.settings.down_after,
        )
        return [node_put(cache, node) for node in plan.nodes] + [task_put(cache, task) for task in plan.tasks]

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
        if (
            before.desired_state.value != after["desired_state"]
            or before.node != after["node"]
            or before.spec_version != after["spec_version"]
            or before.attempt != after["attempt"]
        ):
            return False
        if before.state in TERMINAL_STATES or TaskState(after["state"]) in TERMINAL_STATES:
            return False
        service = self.cache.services.get(after["service"])
        status = service.obj.update_status if service is not None else None
        return status is None or status.state in ROLLOUT_SETTLED

    async def _replication_ops(self) -> tuple[list[Op], list[Task]]:
        """Replication of the services that changed since the last pass; of all of them now and then.

        Services in the middle of a rollout are looked at every pass (time moves a rollout on).
        The pass over every service (a safety net) runs every `reconcile_interval` at most and
        takes at most 1/FULL_PASS_SHARE of the time. The pure work runs in a worker thread, so that with
        100,000 tasks the event loop (the API) keeps getting its turn. Returns the writes, and
        the tasks to create (written once placed, by `_scheduling_ops`).
        """
        cache = self.cache
        began = time.perf_counter()
        now = self.clock()
        full = self._everything_dirty or now >= self._next_full_pass or self._loads_seen != cache.loads
        dirty, self._dirty_services = self._dirty_services, set()
        if full:
            self._everything_dirty = False
            services = {name: v.obj for name, v in cache.services.items()}
            tasks = [v.obj for v in cache.tasks.values()]
        else:
            dirty |= {
                name for name, v in cache.services.items()
                if v.obj.update_status is not None and v.obj.update_status.state not in ROLLOUT_SETTLED
            }
            if not dirty:
                return [], []
            services = {name: cache.services[name].obj for name in dirty if name in cache.services}
            tasks = [task for name in dirty for task in cache.tasks_of(name)]
        nodes = {name: v.obj for name, v in cache.nodes.items()}

        def plan_and_dump() -> tuple[list[Op], list[Task]]:
            plan = replication.reconcile(services, tasks, nodes, now, new_task_id)
            # the rollout's status (or a rollback) first: the tasks of a rolled-back spec come after
            ops = [service_put(cache, service) for service in plan.services]
            ops += [task_put(cache, task) for task in changed_only(cache, plan.update)]
            ops += [task_delete(cache, task_id) for task_id in plan.delete]
            return ops, plan.create

        # Only reads of the cache happen in the thread; the writes are compare-and-swap against
        # the revisions read, so a change made meanwhile costs a retry, never a wrong write.
        result = await asyncio.to_thread(plan_and_dump)
        if full:
            spent = time.perf_counter() - began
            self._next_full_pass = now + max(self.settings.reconcile_interval, FULL_PASS_SHARE * spent)
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

    async def _scheduling_ops(self, created: list[Task]) -> list[Op]:
        """Place the unplaced tasks and the new ones with the index kept between passes.

        The pure work runs in a worker thread. Every new task is in the result (created
        placed, pending with the reason, or as it is while its restart delay runs).
        """
        now = self.clock()
        changed, self._dirty_tasks = self._dirty_tasks, set()
        if not changed and not self._unplaced and not created and self._loads_seen == self.cache.loads:
            return []
        nodes = [v.obj for v in self.cache.nodes.values()]
        # Only the controller touches the index, and it waits for the thread. Following 100,000
        # new tasks into the index takes a while: on the event loop it held up the API.
        return await asyncio.to_thread(self._placements, nodes, changed, created, now)

    def _placements(self, nodes: list[Node], changed_ids: set[str], created: list[Task], now: float) -> list[Op]:
        cache = self.cache
        self._follow_tasks(changed_ids)
        unplaced = [found.obj for task_id in self._unplaced if (found := cache.tasks.get(task_id)) is not None]
        if not unplaced and not created:
            return []
        plan = schedule(nodes, (), [*unplaced, *created], now, sample=self.settings.schedule_sample, index=self._index)
        by_id = {t.id: t for t in unplaced}
        by_id.update((t.id, t) for t in created)
        changed: dict[str, Task] = {}
        for assignment in plan.assignments:
            task = by_id[assignment.task_id]
            changed[task.id] = task.model_copy(
                update={"node": assignment.node, "state": TaskState.assigned, "error": "", "updated_at": now}
            )
        for task in by_id.values():
            if task.not_before > now and not task.error.startswith("restart delayed"):
                wait = task.not_before - now
                changed[task.id] = task.model_copy(update={"error": f"restart delayed {wait:.0f}s (restart policy back-off)"})
        for miss in plan.unplaced:
            task = by_id[miss.task_id]
            if task.state != TaskState.pending or task.error != miss.reason:
                changed[task.id] = task.model_copy(update={"state": TaskState.pending, "error": miss.reason, "updated_at": now})
        ops = [task_put(cache, changed.get(task.id, task), create=True) for task in created]
        self._created.update(task.id for task in created)
        new = {task.id for task in created}
        return ops + [task_put(cache, task) for task_id, task in changed.items() if task_id not in new]
