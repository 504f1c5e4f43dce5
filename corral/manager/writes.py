"""Writing reconcile results to the store with compare-and-swap.

Each changed object is written only if it is still at the revision the
cache read it at; a lost race costs a retry on the next pass, never a
wrong write. Large plans go in batches of one transaction each; a write
that loses a race is skipped inside its batch (`Store.txn_each`), so the
rest still lands in that one transaction.
"""

import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel

from corral.manager import keys
from corral.manager.cache import StateCache, Versioned
from corral.model import Node, Service, ServiceSpec, Task
from corral.model.errors import Conflict
from corral.store import Op, Store

log = logging.getLogger(__name__)

BATCH = 2000


def task_put(cache: StateCache, task: Task, create: bool = False) -> Op:
    if create:
        return Op.put(keys.task_key(task.id), dump(task), expect=0)
    current = cache.tasks.get(task.id)
    return Op.put(keys.task_key(task.id), dump(task), expect=current.revision if current else 0)


def task_delete(cache: StateCache, task_id: str) -> Op:
    current = cache.tasks.get(task_id)
    return Op.delete(keys.task_key(task_id), expect=current.revision if current else None)


def service_put(cache: StateCache, service: Service) -> Op:
    current = cache.services.get(service.name)
    return Op.put(keys.service_key(service.name), dump(service), expect=current.revision if current else 0)


def node_put(cache: StateCache, node: Node) -> Op:
    current = cache.nodes.get(node.name)
    return Op.put(keys.node_key(node.name), dump(node), expect=current.revision if current else 0)


M = TypeVar("M", bound=BaseModel)
R = TypeVar("R")


async def write_with_retry(
    store: Store,
    cache: StateCache,
    plan: Callable[[], tuple[Sequence[Op], R]],
    what: str,
    attempts: int = 10,
) -> tuple[R, int]:
    """Write the ops `plan()` makes from what the cache holds, in one compare-and-swap transaction;
    return plan's result and the revision written, once the cache has it. Every write the API asks
    for goes through here (`put_with_retry` for one object).

    A lost race waits for the cache to see the write that won, then plans again; `plan` may raise to
    refuse. No ops: nothing is written, and the revision is the cache's. After `attempts` lost
    races: Conflict("{what} kept changing; retry").
    """
    for _ in range(attempts):
        seen = cache.revision
        ops, result = plan()
        if not ops:
            return result, seen
        try:
            revision = await store.txn(ops)
        except Conflict:
            latest = await store.revision()  # the winner's write is at or before this
            await cache.wait_change(lambda: cache.revision >= latest, 1.0)
            continue
        await cache.wait_for(revision)
        return result, revision
    raise Conflict(f"{what} kept changing; retry")


async def put_with_retry(
    store: Store,
    cache: StateCache,
    key: str,
    read: Callable[[], Versioned[M] | None],
    change: Callable[[Versioned[M] | None], M],
    what: str,
    attempts: int = 10,
) -> M:
    """Write `change(read())` at `key` with compare-and-swap, and return it once the cache has it.

    A lost race waits for the cache to see the winning write, then reads and
    changes again; `change` may raise to refuse. An unchanged object is not
    written. After `attempts` lost races: Conflict("{what} kept changing; retry").
    """

    def plan() -> tuple[list[Op], M]:
        found = read()
        changed = change(found)
        if found is not None and changed == found.obj:
            return [], changed
        return [Op.put(key, dump(changed), expect=found.revision if found else 0)], changed

    changed, _ = await write_with_retry(store, cache, plan, what, attempts)
    return changed


def dump(obj: BaseModel) -> dict[str, Any]:
    """The object as JSON-able data; a task's spec is dumped once per spec object (see `_spec_data`)."""
    if isinstance(obj, Task):
        data = obj.model_dump(mode="json", exclude=_SPEC)
        data["spec"] = _spec_data(obj.spec)
        return data
    return obj.model_dump(mode="json")


_SPEC = {"spec"}
_SPEC_DATA: dict[int, tuple[ServiceSpec, dict[str, Any]]] = {}  # id(spec) -> (the spec, kept alive so the id stays its own; its data)
_SPEC_DATA_LIMIT = 1000


def _spec_data(spec: ServiceSpec) -> dict[str, Any]:
    """The dumped spec, shared by the tasks that share the spec object (the cache gives the tasks of a
    service version one spec object): most of a task's dump, done once instead of per task and write.

    Fields at their default are left out (reading fills them in again): a typical spec is then
    about 60 bytes of JSON instead of 720, which every task write, store row and agent reply
    carries. Callers must not change the dict they get."""
    known = _SPEC_DATA.get(id(spec))
    if known is not None and known[0] is spec:
        return known[1]
    if len(_SPEC_DATA) >= _SPEC_DATA_LIMIT:
        _SPEC_DATA.clear()
    data = spec.model_dump(mode="json", exclude_defaults=True)
    _SPEC_DATA[id(spec)] = (spec, data)
    return data


async def apply(store: Store, ops: Sequence[Op]) -> tuple[int, int]:
    """Write ops; returns (last revision written, how many ops lost a race)."""
    revision = 0
    lost = 0
    for start in range(0, len(ops), BATCH):
        batch = ops[start : start + BATCH]
        written, skipped = await store.txn_each(batch)
        revision = max(revision, written)
        lost += len(skipped)
        for at in skipped:
            log.debug("write lost a race: %s", batch[at].key)
    return revision, lost


def changed_only(cache: StateCache, tasks: Iterable[Task]) -> list[Task]:
    """Drop updates that would write what is already stored."""
    result = []
    for task in tasks:
        current = cache.tasks.get(task.id)
        if current is None or current.obj != task:
            result.append(task)
    return result
