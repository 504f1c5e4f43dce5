"""An in-memory copy of the cluster state, kept current by one store watch.

Like a Kubernetes informer: list everything once, then follow the watch.
Reconcile loops and API reads use it instead of re-reading the store; every
write still goes to the store with compare-and-swap against the revision the
cache holds, so a stale cache costs a retry, never a wrong write. Nothing may
act on the cache before `synced` is set (an empty cache must never look
like "no tasks exist").
"""

import asyncio
import heapq
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from corral.manager import keys
from corral.manager.own_writes import written
from corral.model import Node, Service, Task, TaskState
from corral.model.errors import Compacted, NotCaughtUp, StoreUnavailable
from corral.model.task import DesiredState, SharedSpecs, TERMINAL_STATES
from corral.model.volume import Volume
from corral.store import KeyValue, Store, WatchEvent, WatchExpired, WatchStalled

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)

LEFT_PER_NODE = 1000  # departed tasks remembered per node for delta watches
YIELD_EVERY = 200  # changes applied in a row before the cache lets other work run
YIELD_EVERY_BUSY = 20  # the same while `busy` (a user's request is in flight): each of its steps waits for one such turn
RELIST_RETRY = 0.5  # seconds between two tries to list a store that does not answer (the last known state is served)
CATCH_UP_TIMEOUT = 10.0  # seconds `wait_for` waits for the cache to see a write
JOURNAL_LIMIT = 200_000  # node changes remembered for watches of many nodes (see `nodes_changed_since`)


# States only a task's agent reports: a change to one of them, and nothing else an agent acts on,
# is the agent's own report coming back.
AGENT_REPORTED = frozenset(
    {TaskState.starting, TaskState.running, TaskState.complete, TaskState.failed, TaskState.rejected, TaskState.shutdown}
)

_RUNNING, _DESIRED_RUNNING = TaskState.running, DesiredState.running  # an enum's member read from its class costs 60 ns


def _news_for_node(old: Task, new: Task) -> bool:
    """Whether the change tells the task's agent something it does not know from its own report.

    An agent's own status report is not sent back to it (it keeps the reply): at 100,000 tasks,
    echoing every `starting` and `running` to its node was most of what the agents' watches carried.
    """
    return (
        old.node != new.node
        or old.desired_state != new.desired_state
        or old.spec_version != new.spec_version
        or new.state not in AGENT_REPORTED
    )


@dataclass(slots=True)
class Versioned(Generic[M]):
    obj: M
    revision: int


@dataclass
class StateCache:
    store: Store
    services: dict[str, Versioned[Service]] = field(default_factory=dict)
    tasks: dict[str, Versioned[Task]] = field(default_factory=dict)
    nodes: dict[str, Versioned[Node]] = field(default_factory=dict)
    volumes: dict[str, Versioned[Volume]] = field(default_factory=dict)  # by store key (keys.volume_key)
    revision: int = 0
    changes: int = 0  # changes applied (and lists loaded): what is computed from the cache holds while this stays
    synced: asyncio.Event = field(default_factory=asyncio.Event)
    closing: bool = False
    # Revision of the last change touching each node's tasks (for agents' long polls).
    node_changed: dict[str, int] = field(default_factory=dict)
    # Tasks that left each node (moved or deleted) -> revision, so a watch can send only what
    # changed; an `after` older than the node's floor (pruned, or before a re-list) gets the full list.
    node_left: dict[str, dict[str, int]] = field(default_factory=dict)
    node_left_floor: dict[str, int] = field(default_factory=dict)
    # Ids of each service's tasks, so one service's tasks are found without a scan.
    service_tasks: dict[str, set[str]] = field(default_factory=dict)
    # The tasks on each node -> revision of their last change, oldest change first, so a delta
    # watch reads only the changes after its revision (newest first) instead of every task.
    # Its keys are also the ids of the tasks on each node (`node_tasks`).
    node_recent: dict[str, dict[str, int]] = field(default_factory=dict)
    # Per service [live tasks (desired running), running tasks]; per node [live tasks, cpus, memory
    # reserved]: what `service ls` and `node ls` show, kept as tasks change instead of counted per call.
    service_counts: dict[str, list[int]] = field(default_factory=dict)
    node_usage: dict[str, list[float]] = field(default_factory=dict)
    # Every change of a node's task list in order, (revision, node): a watch of many nodes reads
    # only the entries after its position instead of checking each of its nodes on every change.
    # `journal_base` is the position of journal[0]; older entries are dropped past JOURNAL_LIMIT.
    journal: list[tuple[int, str]] = field(default_factory=list)
    journal_base: int = 0
    # API tokens' records by key (tokens/ID), as stored: requests are authenticated from here, so the API answers
    # without a store round per request, and reads go on while the store has no quorum (access/tokens.py).
    tokens: dict[str, dict[str, Any]] = field(default_factory=dict)
    loads: int = 0  # how many times the cache listed the store (a re-list is not seen by listeners)
    nodes_written: int = 0  # node records put or dropped since the last listing: what derives from every node can key on it
    # Why what the cache holds may be stale (its watch stalled, or the store cannot be listed), None while it follows
    # the store: reads still answer from the cache and say so (`api/stale.py`); cleared by the next list.
    stale: str | None = None
    _specs: SharedSpecs = field(default_factory=SharedSpecs)  # one spec object per service version
    _next_change: asyncio.Future[None] | None = None  # resolved at the next change; made when somebody waits
    # Who waits for a revision (`wait_for`, read-your-writes): a heap of (revision, n, future), each released once
    # the cache reaches its revision, not woken at every change (hundreds of API writes wait at once).
    _revision_waiters: list[tuple[int, int, asyncio.Future[None]]] = field(default_factory=list)
    _waiter_count: int = 0
    # Called with each event just before the cache applies it (so the cache still holds what it changes).
    listeners: list[Callable[[WatchEvent], None]] = field(default_factory=list)
    # Whether somebody waits for the event loop who should not wait long (a user's request: priority.UsersFirst):
    # the cache then applies YIELD_EVERY_BUSY changes between two turns instead of YIELD_EVERY.
    busy: Callable[[], bool] = field(default=lambda: False)

    async def run(self) -> None:
        """List, then follow the watch forever; re-list when the watch expires or its start was compacted.

        After a re-list every agent's next watch gets its node's whole list (see `_load`)."""
        while True:
            try:
                items, revision = await self.store.range("")
            except StoreUnavailable as err:  # e.g. etcd without quorum: keep serving what is known, list again soon
                log.warning("cache cannot list the store (%s); serving the last known state until it can", err)
                if self.synced.is_set():  # the newest reason: a stalled watch's "cut" may now be "no quorum"
                    self.stale = f"the store cannot be listed: {err}"
                await asyncio.sleep(RELIST_RETRY)
                continue
            self._load(items, revision)
            self._notify()
            if self.stale is not None:
                log.warning("cache listed the store again at revision %d: no longer stale", revision)
            self.stale = None
            self.synced.set()
            try:
                applied = 0
                async for event in self.store.watch("", revision, prev=False):  # nothing here reads `prev`
                    # A burst of thousands of changes must not stall the API; but other work runs only between two
                    # revisions: etcd gives all of a transaction's changes one, and `revision` must mean all of it.
                    if applied >= (YIELD_EVERY_BUSY if self.busy() else YIELD_EVERY) and event.revision != self.revision:
                        applied = 0
                        await asyncio.sleep(0)
                    for listener in self.listeners:  # before the event is applied: they read the state before it
                        listener(event)
                    self._apply(event)
                    self._notify()
                    applied += 1
            except (WatchExpired, Compacted) as err:  # compacted: more was written between list and watch than is kept
                log.warning("cache watch ended (%s); listing again", err)
                if isinstance(err, WatchStalled):  # cut off from the store: what is held may be stale until a list works
                    self.stale = str(err)

    def _load(self, items: list[KeyValue], revision: int) -> None:
        self.services.clear()
        self.tasks.clear()
        self.nodes.clear()
        self.volumes.clear()
        self.tokens.clear()
        self.node_left.clear()
        self.service_tasks.clear()
        self.node_recent.clear()
        self.service_counts.clear()
        self.node_usage.clear()
        self.journal_base += len(self.journal)  # a watch positioned before a re-list checks every node again
        self.journal.clear()
        self.loads += 1
        self.changes += 1
        for kv in items:
            self._put(kv.key, kv.value, kv.mod_revision)
        self.revision = revision
        for name in list(self.node_changed):
            self.node_changed[name] = revision
            self.node_left_floor[name] = revision

    def _apply(self, event: WatchEvent) -> None:
        self.changes += 1
        if event.value is None:
            self._drop(event.key, event.revision)
        else:
            self._put(event.key, event.value, event.revision, event.model)
        self.revision = event.revision

    def _put(self, key: str, value: dict[str, Any], revision: int, model: object = None) -> None:
        """Hold `value` (stored at `key`); `model` is the writer's own object for it if this manager wrote it
        (`WatchEvent.model`): taken instead of validating `value` again (`own_writes`)."""
        if key.startswith(keys.TASKS):
            task = self._specs.task(value, written(Task, model, value))
            old = self.tasks.get(task.id)
            self.tasks[task.id] = Versioned(task, revision)
            if old is not None:
                self._count(old.obj, -1)
            if old is None or old.obj.service != task.service:  # (no setdefault: it makes a set each call)
                if old is not None:
                    self.service_tasks.get(old.obj.service, set()).discard(task.id)
                ids = self.service_tasks.get(task.service)
                if ids is None:
                    ids = self.service_tasks[task.service] = set()
                ids.add(task.id)
            self._count(task, 1)
            if old is None or _news_for_node(old.obj, task):
                self._move_task(task.id, old.obj.node if old else None, task.node, revision)
        elif key.startswith(keys.SERVICES):
            service = written(Service, model, value) or Service.model_validate(value)
            self.services[service.name] = Versioned(service, revision)
        elif key.startswith(keys.NODES):
            node = written(Node, model, value) or Node.model_validate(value)
            self.nodes[node.name] = Versioned(node, revision)
            self.nodes_written += 1
        elif key.startswith(keys.VOLUMES):
            self.volumes[key] = Versioned(written(Volume, model, value) or Volume.model_validate(value), revision)
        elif key.startswith(keys.TOKENS):
            self.tokens[key] = value

    def _count(self, task: Task, sign: int) -> None:
        counts = self.service_counts.get(task.service)
        if counts is None:  # not setdefault: that makes a new list each call, kept or not
            counts = self.service_counts[task.service] = [0, 0]
        if task.desired_state == _DESIRED_RUNNING:
            counts[0] += sign
            if task.state == _RUNNING:
                counts[1] += sign
        node = task.node
        if node is not None and task.state not in TERMINAL_STATES:
            usage = self.node_usage.get(node)
            if usage is None:
                usage = self.node_usage[node] = [0, 0.0, 0]
            reserved = task.spec.reservations
            usage[0] += sign
            usage[1] += sign * reserved.cpus
            usage[2] += sign * reserved.memory

    def _drop(self, key: str, revision: int) -> None:
        if key.startswith(keys.TASKS):
            old = self.tasks.pop(key.removeprefix(keys.TASKS), None)
            if old:
                self._move_task(old.obj.id, old.obj.node, None, revision)
                self.service_tasks.get(old.obj.service, set()).discard(old.obj.id)
                self._count(old.obj, -1)
        elif key.startswith(keys.SERVICES):
            self.services.pop(key.removeprefix(keys.SERVICES), None)
        elif key.startswith(keys.NODES):
            self.nodes.pop(key.removeprefix(keys.NODES), None)
            self.nodes_written += 1
        elif key.startswith(keys.VOLUMES):
            self.volumes.pop(key, None)
        elif key.startswith(keys.TOKENS):
            self.tokens.pop(key, None)

    def _move_task(self, task_id: str, old: str | None, new: str | None, revision: int) -> None:
        """Keep the per-node index, and mark the nodes whose task list changed (for their agents)."""
        if old and old != new:
            self.node_recent.get(old, {}).pop(task_id, None)
            self._changed_node(old, revision)
            left = self.node_left.setdefault(old, {})
            left[task_id] = revision
            if len(left) > LEFT_PER_NODE:
                self._prune_left(old, left)
        if new:
            self._changed_node(new, revision)
            recent = self.node_recent.setdefault(new, {})
            recent.pop(task_id, None)
            recent[task_id] = revision
            if old != new:
                self.node_left.get(new, {}).pop(task_id, None)

    def _changed_node(self, node: str, revision: int) -> None:
        self.node_changed[node] = revision
        self.journal.append((revision, node))
        if len(self.journal) > JOURNAL_LIMIT:
            half = len(self.journal) // 2
            del self.journal[:half]
            self.journal_base += half

    @property
    def node_tasks(self) -> dict[str, dict[str, int]]:
        """The ids of the tasks on each node (as the keys of `node_recent`: one index, not two), so an
        agent's poll does not scan every task."""
        return self.node_recent

    @property
    def journal_end(self) -> int:
        """The position after the newest journal entry."""
        return self.journal_base + len(self.journal)

    def nodes_changed_since(self, position: int, after: dict[str, int]) -> list[str]:
        """The nodes of `after` whose tasks changed after their revision there, from journal `position` on.

        A position older than what the journal holds checks every node instead.
        """
        if position < self.journal_base:
            return [node for node, seen in after.items() if seen <= 0 or self.node_changed.get(node, 0) > seen]
        found: dict[str, None] = {}
        for revision, node in self.journal[position - self.journal_base :]:
            seen = after.get(node)
            if seen is not None and revision > seen:
                found[node] = None
        return list(found)

    def _prune_left(self, node: str, left: dict[str, int]) -> None:
        """Forget the older half of a node's departed tasks; watches from before them get a full list."""
        by_age = sorted(left.items(), key=lambda item: item[1])
        dropped = by_age[: len(by_age) // 2]
        self.node_left[node] = dict(by_age[len(by_age) // 2 :])
        self.node_left_floor[node] = max(self.node_left_floor.get(node, 0), dropped[-1][1])

    def node_delta(self, node: str, after: int) -> tuple[bool, list[Task], list[str]]:
        """What changed on `node` after revision `after`: (full, tasks, removed task ids).

        `full` means `tasks` is the node's whole list (`after` is 0 or older than what is
        remembered); otherwise `tasks` are those changed after `after`, `removed` those that left.
        """
        if after <= 0 or after < self.node_left_floor.get(node, 0):
            return True, self.tasks_on(node), []
        changed = []
        for task_id, revision in reversed(self.node_recent.get(node, {}).items()):
            if revision <= after:
                break
            changed.append(self.tasks[task_id].obj)
        removed = [task_id for task_id, revision in self.node_left.get(node, {}).items() if revision > after]
        return False, changed, removed

    def tasks_of(self, service: str) -> list[Task]:
        return [self.tasks[task_id].obj for task_id in self.service_tasks.get(service, ())]

    def tasks_on(self, node: str) -> list[Task]:
        return [self.tasks[task_id].obj for task_id in self.node_tasks.get(node, ())]

    def tasks_by(self, key: Callable[[Task], str | None]) -> dict[str, list[Task]]:
        """The tasks grouped by key (service, node...); tasks whose key is None are left out."""
        grouped: dict[str, list[Task]] = {}
        for versioned in self.tasks.values():
            group = key(versioned.obj)
            if group is not None:
                grouped.setdefault(group, []).append(versioned.obj)
        return grouped

    def _notify(self) -> None:
        """Wake whoever waits for a change (they run once the cache yields: once per burst), and release whoever
        waits for a revision the cache has reached."""
        waiting, self._next_change = self._next_change, None
        if waiting is not None and not waiting.done():
            waiting.set_result(None)
        waiters = self._revision_waiters
        while waiters and waiters[0][0] <= self.revision:
            released = heapq.heappop(waiters)[2]
            if not released.done():  # not timed out meanwhile
                released.set_result(None)

    async def _until(self, predicate: Callable[[], bool], timeout: float) -> None:
        """Return once predicate holds (checked after each change); TimeoutError after `timeout`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not predicate():
            left = deadline - loop.time()
            if left <= 0:
                raise TimeoutError
            if self._next_change is None:
                self._next_change = loop.create_future()
            try:  # shielded: one waiter's timeout must not cancel the others' wake-up
                await asyncio.wait_for(asyncio.shield(self._next_change), left)
            except TimeoutError:
                pass

    async def wait_for(self, revision: int, timeout: float | None = None) -> None:
        """Return once the cache has seen `revision` (read-your-writes for the API).

        NotCaughtUp (HTTP 503: the change is stored, retry the read) after `timeout`
        (default CATCH_UP_TIMEOUT) seconds."""
        if self.revision >= revision:
            return
        reached = asyncio.get_running_loop().create_future()
        self._waiter_count += 1
        heapq.heappush(self._revision_waiters, (revision, self._waiter_count, reached))
        try:
            await asyncio.wait_for(reached, CATCH_UP_TIMEOUT if timeout is None else timeout)
        except TimeoutError:
            raise NotCaughtUp(revision) from None

    async def close(self) -> None:
        """The manager is stopping: every wait_change returns now, so long polls answer and end."""
        self.closing = True
        self._notify()

    async def wait_change(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Wait until predicate holds (checked after each change), timeout, or close; returns predicate."""
        try:
            await self._until(lambda: self.closing or predicate(), timeout)
        except TimeoutError:
            pass
        return predicate()
