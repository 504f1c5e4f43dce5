"""What an agent's status report does to a task, and writing reports with compare-and-swap.

`with_status` is the rule (pure): a task only moves forward, a terminal task
never changes, an identical report is no write. `report_batch` writes many
nodes' reports in one transaction (every agent reports in batches, a lone
one too), retrying the ones that lost a race while the others land.
"""

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from corral.manager import keys
from corral.manager.cache import Versioned
from corral.manager.context import ManagerContext
from corral.manager.writes import put_op
from corral.model import PublishedPort, Task, TaskState
from corral.model.errors import Conflict, NotFound
from corral.model.task import TERMINAL_STATES
from corral.store import Op

# The order a task moves through; a report never moves a task backwards.
_PROGRESS = {TaskState.assigned: 1, TaskState.starting: 2, TaskState.running: 3}

BATCH_ATTEMPTS = 5
PAUSE_EVERY = 100  # reports a plan works out between two looks at whether users' requests wait (`_plan`'s `pause`)


class Report(Protocol):
    """What an agent saw of a task (the API's report body)."""

    @property
    def state(self) -> TaskState: ...
    @property
    def container_id(self) -> str: ...
    @property
    def error(self) -> str: ...
    @property
    def exit_code(self) -> int | None: ...
    @property
    def ports(self) -> list[PublishedPort]: ...


class NodeReport(Report, Protocol):
    """A report in a batch: it names its node and task."""

    @property
    def node(self) -> str: ...
    @property
    def task_id(self) -> str: ...


def with_status(task: Task, status: Report, now: float) -> Task:
    """The task after a report; reports that would move it backwards change nothing."""
    if task.state in TERMINAL_STATES:
        return task
    if status.state not in TERMINAL_STATES and _PROGRESS.get(status.state, 0) < _PROGRESS.get(task.state, 0):
        return task
    update: dict[str, object] = {"state": status.state, "error": status.error, "exit_code": status.exit_code}
    if status.container_id:
        update["container_id"] = status.container_id
    if status.ports:
        update["ports"] = status.ports
    changes = {name: value for name, value in update.items() if getattr(task, name) != value}
    if not changes:
        return task
    if status.state == TaskState.running and task.started_at is None:
        changes["started_at"] = now  # a rollout's monitor counts from here
    changes["updated_at"] = now
    return task.model_copy(update=changes)


@dataclass
class _Planned:
    """The writes a batch of reports makes, and what is known without writing."""

    ops: list[Op] = field(default_factory=list)
    written: list[tuple[int, Task]] = field(default_factory=list)  # (report index, the task it writes)
    retry: list[int] = field(default_factory=list)  # a second report of a task: after the first has landed
    results: dict[int, TaskState | NotFound] = field(default_factory=dict)  # not on that node, or no change


def _plan(
    tasks: Mapping[str, Versioned[Task]], reports: Sequence[NodeReport], todo: list[int], now: float,
    pause: Callable[[], None] = lambda: None,
) -> _Planned:
    """The writes of the reports `todo` (indexes into `reports`) against `tasks` (the cache's); `pause` is
    called every PAUSE_EVERY reports (in a worker thread: `UsersFirst.step_aside`)."""
    planned = _Planned()
    touched: set[str] = set()
    for done, at in enumerate(todo):
        if done % PAUSE_EVERY == PAUSE_EVERY - 1:
            pause()
        status = reports[at]
        found = tasks.get(status.task_id)
        if found is None or found.obj.node != status.node:
            planned.results[at] = _not_assigned(status.task_id, status.node)
            continue
        if status.task_id in touched:  # a later report of the same task goes after the first has landed
            planned.retry.append(at)
            continue
        updated = with_status(found.obj, status, now)
        if updated is found.obj:
            planned.results[at] = updated.state
            continue
        touched.add(status.task_id)
        planned.ops.append(put_op(keys.task_key(status.task_id), updated, expect=found.revision))
        planned.written.append((at, updated))
    return planned


def _not_assigned(task_id: str, node: str) -> NotFound:
    return NotFound(f"task {task_id} is not assigned to node {node}")


async def report_batch(ctx: ManagerContext, reports: Sequence[NodeReport]) -> list[TaskState | NotFound | Conflict]:
    """Apply many reports in one transaction; per report, in order, the task's state after it,
    NotFound (not on that node) or Conflict (lost every race).

    Unlike `writes.write_with_retry`, a report that loses a race does not send the others back:
    they are independent writes (`Store.txn_each`), and only the losers are tried again.
    """
    results: list[TaskState | NotFound | Conflict | None] = [None] * len(reports)
    todo = list(range(len(reports)))
    for _ in range(BATCH_ATTEMPTS):
        revision = 0
        now = ctx.clock()
        async with ctx.agent_batches:  # one batch at a time (see ManagerContext)
            await ctx.users_first.wait_turn()
            loads = ctx.cache.loads
            # Worked out in a worker thread: on the event loop, up to 1,000 reports of pure Python held
            # every request up (200 at a time); in a thread they share the GIL in 1 ms slices
            # (runtime.SWITCH_INTERVAL). A task and its revision are read together (one dict read);
            # compare-and-swap covers what changes meanwhile.
            # It steps aside (sleeps) while users' requests are answered: they need not share the GIL with it.
            planned = await asyncio.to_thread(_plan, ctx.cache.tasks, reports, todo, now, ctx.users_first.step_aside)
        if ctx.cache.loads != loads:  # the cache listed the store again meanwhile: what was read may be half of it
            continue
        ops, written, retry = planned.ops, planned.written, planned.retry
        for at, result in planned.results.items():
            results[at] = result
        if ops:
            await ctx.users_first.wait_turn()  # the store's commit runs Python in its thread: it would share the GIL with users
            revision, skipped = await ctx.store.txn_each(ops)
            lost = set(skipped)
            for index, (at, updated) in enumerate(written):
                if index in lost:
                    retry.append(at)
                else:
                    results[at] = updated.state
        if not retry:
            break  # the writes are durable; no need to wait for the cache to show them
        try:  # a retry must see what the report lost to
            await ctx.cache.wait_for(revision, timeout=5.0)
        except TimeoutError:
            pass
        todo = sorted(retry)
    return [
        result if result is not None else Conflict(f"task {reports[at].task_id} kept changing; retry")
        for at, result in enumerate(results)
    ]
