"""Writing objects to the store: what an object is written as (`dump`), and the API's
read-change-write with compare-and-swap (`write_with_retry`, `put_with_retry`).

The controller's writes go through a plan instead (`plan.apply`).
"""

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel

from corral.manager.cache import StateCache, Versioned
from corral.model import ServiceSpec, Task
from corral.model.compact import compacted_copy
from corral.model.errors import Conflict
from corral.model.task import SHARED_NAMES
from corral.store import Op, Store


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
        return [put_op(key, changed, expect=found.revision if found else 0)], changed

    changed, _ = await write_with_retry(store, cache, plan, what, attempts)
    return changed


def dump(obj: BaseModel) -> dict[str, Any]:
    """The object as JSON-able data; a task's spec is dumped once per spec object (see `_spec_data`)."""
    if isinstance(obj, Task):
        data = obj.model_dump(mode="json", exclude=_SPEC)
        data["spec"] = _spec_data(obj.spec)
        return data
    return obj.model_dump(mode="json")


def put_op(key: str, obj: BaseModel, expect: int | None = None) -> Op:
    """A put of `obj` that carries a compacted copy of it (`Op.model`): the SQLite store hands that to this
    manager's cache with the write's event, and the cache takes it instead of validating the dumped value
    again. A copy, taken now, so that nothing done to `obj` after the write changes what the cache holds; with
    every field given, as the dump names every field."""
    return Op.put(key, dump(obj), expect, compacted_copy(obj, SHARED_NAMES if isinstance(obj, Task) else (), every_field=True))


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
