"""The cache takes this manager's own writes as the writer's (copied) objects, and validates everything else."""

import asyncio
from pathlib import Path

import pytest
from pydantic import ValidationError

from corral.manager import keys, own_writes
from corral.manager.cache import StateCache
from corral.manager.own_writes import WrittenMismatch
from corral.manager.writes import dump, put_op
from corral.model import Node, Resources, ServiceSpec, Task, TaskState
from corral.store import Op, WatchEvent
from corral.store.sqlite import SqliteStore

SHAPE = ServiceSpec(name="web", image="img", replicas=2).task_shape()


def _task(task_id: str = "t1", **changes: object) -> Task:
    return Task(id=task_id, service="web", slot=1, spec=SHAPE, created_at=1.0, updated_at=1.0).model_copy(update=changes)


async def test_own_writes_are_taken_as_written_and_others_validated(tmp_path: Path) -> None:
    store = await SqliteStore(tmp_path / "store.db").open()
    cache = StateCache(store)
    following = asyncio.create_task(cache.run())
    try:
        await asyncio.wait_for(cache.synced.wait(), 10)
        original = _task(node="n1", state=TaskState.assigned)
        op = put_op(keys.task_key("t1"), original, expect=0)
        await cache.wait_for(await store.txn([op]))
        held = cache.tasks["t1"].obj
        assert held is op.model and held is not original  # not validated again: the op's own copy
        assert held == Task.model_validate(dump(original))
        original.state = TaskState.failed  # the writer changing its object afterwards changes nothing held
        assert cache.tasks["t1"].obj.state == TaskState.assigned

        # Written by somebody else (another process, a tool on the raw store): validated, a new object.
        raw = dump(_task(node="n1", state=TaskState.running))
        revision = await store.txn([Op.put(keys.task_key("t1"), raw)])
        await cache.wait_for(revision)
        assert cache.tasks["t1"].obj == Task.model_validate(raw) and cache.tasks["t1"].obj is not held
        assert cache.service_counts["web"] == [1, 1]
        assert cache.tasks["t1"].obj.spec is held.spec  # the version's one spec object, either way

        # After a re-list every value is read back and validated: nothing of a writer's object is kept.
        other = _task("t2")
        await store.txn([put_op(keys.task_key("t2"), other, expect=0)])
        items, at = await store.range("")
        cache._load(items, at)
        assert cache.tasks["t2"].obj == other and cache.tasks["t2"].obj is not other
    finally:
        following.cancel()
        await asyncio.gather(following, return_exceptions=True)
        await store.close()


def test_a_bad_value_is_refused_whatever_rides_with_it() -> None:
    cache = StateCache(store=None)  # type: ignore[arg-type]  # fed by hand
    good = dump(_task(state=TaskState.running))
    cache._apply(WatchEvent(1, keys.task_key("t1"), good, None))
    bad = {**good, "state": "sideways"}
    node = Node(name="n1", address="127.0.0.2", resources=Resources(cpus=1, memory=1 << 30), last_heartbeat=1, registered_at=1)
    for model in (None, node, {"state": "running"}):  # none, or not a Task: the value is validated
        with pytest.raises(ValidationError, match="state"):
            cache._apply(WatchEvent(2, keys.task_key("t1"), bad, None, model))
    assert cache.tasks["t1"].obj.state == TaskState.running and cache.tasks["t1"].revision == 1
    assert cache.service_counts["web"] == [1, 1]


def _value(op: Op) -> dict[str, object]:
    assert op.value is not None
    return op.value


@pytest.mark.filterwarnings("ignore:Pydantic serializer warnings")
def test_verify_mode_catches_a_written_object_that_reads_back_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(own_writes, "VERIFY", True)
    faithful = put_op(keys.task_key("t1"), _task(state=TaskState.running))
    assert own_writes.written(Task, faithful.model, _value(faithful)) is faithful.model
    # model_copy(update=...) does not validate: a plain string where the enum goes dumps the same JSON
    unfaithful = put_op(keys.task_key("t1"), _task().model_copy(update={"state": "running"}))
    assert unfaithful.value == faithful.value
    with pytest.raises(WrittenMismatch, match=r"Task.state was written as 'running' \(str\)"):
        own_writes.written(Task, unfaithful.model, _value(unfaithful))
    nested = put_op(keys.task_key("t1"), _task().model_copy(update={"ports": [{"target": 80, "host_ip": "", "host_port": 1}]}))
    with pytest.raises(WrittenMismatch, match="Task.ports"):
        own_writes.written(Task, nested.model, _value(nested))


def test_a_new_task_written_counts_every_field_as_given_as_its_read_back_value_does() -> None:
    made = _task()  # made with a few fields given, the rest defaults
    op = put_op(keys.task_key("t1"), made)
    assert isinstance(op.model, Task) and made.model_fields_set != set(Task.model_fields)
    assert op.model.model_fields_set == Task.model_validate(_value(op)).model_fields_set == set(Task.model_fields)
    assert op.model.__pydantic_fields_set__ is StateCache(store=None)._specs.task(_value(op)).__pydantic_fields_set__  # type: ignore[arg-type]
    mismatched = made.model_copy()  # its own few fields, as a copy without `every_field` would keep them
    with pytest.raises(WrittenMismatch, match="fields"):
        own_writes.check(mismatched, Task.model_validate(_value(op)))
