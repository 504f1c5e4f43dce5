"""A harness that drives the controller pass by pass, as Nomad's scheduler tests do.

A REAL SQLite store and a real `StateCache` following it; a fake clock; the
controller's passes run one at a time (`step`), never on their own. It
records every plan the controller applies (`plans`) and every write anybody
makes to the store (`writes`: the op, whether it was applied, the revision),
and plays the other writers of a cluster: agents reporting task states
(`report`) and users changing services (`deploy`, `scale`, `update`).

`between_plan_and_write(action)` runs `action` once, after the controller's
snapshot and plan and before the plan is applied: the window in which a
controller that wrote from the live cache overwrote what it never read.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from corral.manager import keys, replication, rollout
from corral.manager.cache import StateCache, Versioned
from corral.manager.cluster import Leases
from corral.manager.controller import Controller
from corral.manager.plan import Plan
from corral.manager.queue import WorkQueue
from corral.manager.settings import ManagerSettings
from corral.manager.writes import dump, put_with_retry
from corral.model import Node, Resources, Service, ServiceSpec, Task, TaskState
from corral.model.errors import Conflict
from corral.model.task import TERMINAL_STATES
from corral.store import KeyValue, Op, Store, WatchEvent
from corral.store.delegating import DelegatingStore
from corral.store.sqlite import SqliteStore


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass(frozen=True)
class Write:
    """One op somebody sent to the store, and whether the store applied it."""

    op: Op
    applied: bool
    revision: int  # the store's revision after the transaction
    by: str


class RecordingStore(DelegatingStore):
    """The real store, with every write recorded in `writes` (tagged with `writer`, set by the harness)."""

    def __init__(self, inner: Store) -> None:
        super().__init__(inner)
        self.writes: list[Write] = []
        self.writer = "controller"

    async def txn(self, ops: Sequence[Op]) -> int:
        by = self.writer
        try:
            revision = await self.inner.txn(ops)
        except Conflict:
            self.writes += [Write(op, False, 0, by) for op in ops]
            raise
        self.writes += [Write(op, True, revision, by) for op in ops]
        return revision

    async def txn_each(self, ops: Sequence[Op]) -> tuple[int, list[int]]:
        by = self.writer
        revision, skipped = await self.inner.txn_each(ops)
        lost = set(skipped)
        self.writes += [Write(op, at not in lost, revision, by) for at, op in enumerate(ops)]
        return revision, skipped


@dataclass
class Report:
    """An agent's report the store acknowledged."""

    task_id: str
    state: TaskState
    revision: int


@dataclass
class Harness:
    store: RecordingStore
    cache: StateCache
    controller: Controller
    clock: FakeClock
    leases: Leases
    plans: list[Plan] = field(default_factory=list)
    reports: list[Report] = field(default_factory=list)
    _cache_task: asyncio.Task[None] | None = None
    _interleave: dict[str, Callable[[], Awaitable[None]]] = field(default_factory=dict)
    _restore: list[Callable[[], None]] = field(default_factory=list)
    _while_planning: Callable[[], Awaitable[None]] | None = None
    _planning_patched: bool = False

    # -- driving the controller

    async def step(self, seconds: float = 0.0) -> None:
        """Let `seconds` pass (nodes keep heartbeating), then run one controller pass."""
        self.clock.advance(seconds)
        for name in self.cache.nodes:
            self.leases.renew(name, self.clock())
        await self.synced()
        await self.controller.pass_once()

    async def settle(self, passes: int = 12) -> None:
        """Run passes (a second apart) until one plans nothing, at most `passes`."""
        for _ in range(passes):
            planned = len(self.plans)
            await self.step(1.0)
            if len(self.plans) == planned and not len(self.controller.queue):
                return

    def between_plan_and_write(self, stage: str, action: Callable[[], Awaitable[None]]) -> None:
        """Run `action` once, when the next plan of `stage` has been made and is about to be applied."""
        self._interleave[stage] = action

    def while_replication_plans(self, action: Callable[[], Awaitable[None]]) -> None:
        """Run `action` once, on the event loop, while the next replication plan is being computed
        in the controller's worker thread (after its snapshot, before any write is built)."""
        if not self._planning_patched:
            self._planning_patched = True
            real = replication.reconcile
            loop = asyncio.get_running_loop()

            def planning(*args: Any, **kwargs: Any) -> Any:
                result = real(*args, **kwargs)
                pending, self._while_planning = self._while_planning, None
                if pending is not None:
                    asyncio.run_coroutine_threadsafe(self._interleaved(pending), loop).result(timeout=10)
                return result

            replication.reconcile = planning  # type: ignore[assignment]
            self._restore.append(lambda: setattr(replication, "reconcile", real))
        self._while_planning = action

    async def _interleaved(self, action: Callable[[], Awaitable[None]]) -> None:
        await action()
        await self.synced()

    async def _on_plan(self, plan: Plan) -> None:
        self.plans.append(plan)
        action = self._interleave.pop(plan.stage, None)
        if action is not None:
            await self._interleaved(action)

    async def synced(self) -> None:
        await self.cache.wait_for(await self.store.revision(), timeout=5.0)

    # -- the other writers

    async def add_node(self, name: str, cpus: float = 4.0) -> None:
        node = Node(
            name=name, address="10.0.0.1", resources=Resources(cpus=cpus, memory=8 << 30),
            last_heartbeat=self.clock(), registered_at=self.clock(),
        )
        await self._as("agent", self.store.put(keys.node_key(name), dump(node), expect=0))
        self.leases.renew(name, self.clock())

    async def deploy(self, name: str, replicas: int, image: str = "img:1") -> None:
        spec = ServiceSpec(name=name, image=image, replicas=replicas)
        service = Service(spec=spec, created_at=self.clock(), updated_at=self.clock())
        await self._as("user", self.store.put(keys.service_key(name), dump(service), expect=0))

    async def scale(self, name: str, replicas: int) -> None:
        await self._change_service(name, lambda s: s.model_copy(update={"spec": s.spec.model_copy(update={"replicas": replicas})}))

    async def update(self, name: str, image: str) -> None:
        await self._change_service(
            name, lambda s: rollout.updated(s, s.spec.model_copy(update={"image": image}), self.clock())
        )

    async def _change_service(self, name: str, change: Callable[[Service], Service]) -> None:
        def changed(found: Versioned[Service] | None) -> Service:
            assert found is not None, f"no service {name}"
            return change(found.obj)

        await self._as(
            "user", put_with_retry(self.store, self.cache, keys.service_key(name), lambda: self.cache.services.get(name), changed, name)
        )

    async def report(self, task_id: str, state: TaskState) -> int | None:
        """An agent reports `state` for its task, read-change-write with compare-and-swap as the API
        does; returns the revision the store acknowledged, None if there was nothing to report."""
        key = keys.task_key(task_id)
        for _ in range(10):
            found = await self.store.get(key)
            if found is None:
                return None
            task = Task.model_validate(found.value)
            if task.terminal or task.node is None or task.state == state:
                return None
            update: dict[str, Any] = {"state": state, "updated_at": self.clock()}
            if state == TaskState.running and task.started_at is None:
                update["started_at"] = self.clock()
            try:
                revision = await self._as("agent", self.store.put(key, dump(task.model_copy(update=update)), expect=found.mod_revision))
            except Conflict:
                continue
            self.reports.append(Report(task_id, state, revision))
            await self.synced()
            return revision
        raise AssertionError(f"the report for {task_id} kept losing")

    async def _as(self, writer: str, write: Awaitable[Any]) -> Any:
        self.store.writer = writer
        try:
            return await write
        finally:
            self.store.writer = "controller"

    # -- reading

    def tasks(self, service: str | None = None) -> list[Task]:
        return [v.obj for v in self.cache.tasks.values() if service is None or v.obj.service == service]

    def live(self, service: str) -> list[Task]:
        return [t for t in self.tasks(service) if t.desired_state.value == "running" and t.state not in TERMINAL_STATES]

    async def stored_task(self, task_id: str) -> Task | None:
        found = await self.store.get(keys.task_key(task_id))
        return Task.model_validate(found.value) if found is not None else None

    # -- life

    async def close(self) -> None:
        for restore in reversed(self._restore):
            restore()
        if self._cache_task is not None:
            self._cache_task.cancel()
            try:
                await self._cache_task
            except asyncio.CancelledError:
                pass
        await self.store.close()


async def start(tmp_path: Path, seed: int = 0) -> Harness:
    clock = FakeClock()
    store = RecordingStore(await SqliteStore(tmp_path / "store.db").open())
    cache = StateCache(store)
    leases = Leases()
    settings = ManagerSettings(data_dir=tmp_path)
    harness = Harness(store, cache, None, clock, leases)  # type: ignore[arg-type]
    harness.controller = Controller(
        store, cache, leases, settings, clock=clock, queue=WorkQueue(clock, rng=random.Random(seed)), on_plan=harness._on_plan
    )
    harness._cache_task = asyncio.create_task(cache.run())
    await cache.synced.wait()
    return harness
