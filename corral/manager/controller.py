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

from corral.manager import health, replication
from corral.manager.cache import StateCache
from corral.manager.cluster import Leases
from corral.manager.scheduling import schedule
from corral.manager.settings import ManagerSettings
from corral.manager.writes import apply, changed_only, node_put, service_put, task_delete, task_put
from corral.model import Task, TaskState
from corral.model.task import DesiredState, TERMINAL_STATES, UNPLACED_STATES
from corral.store import Op, Store

log = logging.getLogger(__name__)


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
        cache.listeners.append(lambda _event: self.wake.set())

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
        await self._write(self._replication_ops())
        await self._write(self._scheduling_ops())

    async def _write(self, ops: list[Op]) -> None:
        if not ops:
            return
        revision, lost = await apply(self.store, ops)
        if lost:
            log.info("%d writes lost a race; next pass retries", lost)
        if revision:
            await self.cache.wait_for(revision)

    def _health_ops(self) -> list[Op]:
        cache = self.cache
        plan = health.reconcile(
            {name: v.obj for name, v in cache.nodes.items()},
            (v.obj for v in cache.tasks.values()),
            self.leases.last,
            self.clock(),
            self.settings.down_after,
        )
        return [node_put(cache, node) for node in plan.nodes] + [task_put(cache, task) for task in plan.tasks]

    def _replication_ops(self) -> list[Op]:
        cache = self.cache
        plan = replication.reconcile(
            {name: v.obj for name, v in cache.services.items()},
            [v.obj for v in cache.tasks.values()],
            {name: v.obj for name, v in cache.nodes.items()},
            self.clock(),
            new_task_id,
        )
        # the rollout's status (or a rollback) first: tasks of a rolled-back spec go with it
        ops = [service_put(cache, service) for service in plan.services]
        ops += [task_put(cache, task, create=True) for task in plan.create]
        ops += [task_put(cache, task) for task in changed_only(cache, plan.update)]
        ops += [task_delete(cache, task_id) for task_id in plan.delete]
        return ops

    def _scheduling_ops(self) -> list[Op]:
        cache = self.cache
        now = self.clock()
        tasks = [v.obj for v in cache.tasks.values()]
        unplaced = [t for t in tasks if t.state in UNPLACED_STATES and t.desired_state == DesiredState.running]
        if not unplaced:
            return []
        placed = [t for t in tasks if t.node and t.state not in TERMINAL_STATES and t.state not in UNPLACED_STATES]
        plan = schedule(
            [v.obj for v in cache.nodes.values()], placed, unplaced, now, sample=self.settings.schedule_sample
        )
        by_id = {t.id: t for t in unplaced}
        changed: list[Task] = []
        for assignment in plan.assignments:
            task = by_id[assignment.task_id]
            changed.append(
                task.model_copy(
                    update={"node": assignment.node, "state": TaskState.assigned, "error": "", "updated_at": now}
                )
            )
        for task in unplaced:
            if task.not_before > now and not task.error.startswith("restart delayed"):
                wait = task.not_before - now
                changed.append(task.model_copy(update={"error": f"restart delayed {wait:.0f}s (restart policy back-off)"}))
        for miss in plan.unplaced:
            task = by_id[miss.task_id]
            if task.state != TaskState.pending or task.error != miss.reason:
                changed.append(task.model_copy(update={"state": TaskState.pending, "error": miss.reason, "updated_at": now}))
        return [task_put(cache, task) for task in changed]
