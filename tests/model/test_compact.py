"""Tasks read through SharedSpecs are compacted: smaller, and the same tasks to every reader."""

import sys
import tracemalloc

import orjson
import pytest

from corral.model import ServiceSpec, Task, TaskState
from corral.model.compact import compacted_copy
from corral.model.task import SHARED_NAMES, PublishedPort, SharedSpecs
from corral.manager.writes import dump

CPYTHON = sys.implementation.name == "cpython"


def stored(i: int, node: str = "node-00001", **fields: object) -> dict[str, object]:
    """A task's value as the store hands it out: dumped, through JSON, decoded (fresh strings each time)."""
    spec = ServiceSpec(name="web", image="corral-demo:latest", replicas=3).task_shape()
    task = Task(id=f"{i:016x}", service="web", stack="shop", slot=i, spec=spec, node=node, state=TaskState.running,
                created_at=1000.0, updated_at=1000.0, **fields)  # type: ignore[arg-type]
    value: dict[str, object] = orjson.loads(orjson.dumps(dump(task)))
    return value


def test_a_compacted_task_is_the_task_it_was_read_from() -> None:
    value = stored(7, ports=[PublishedPort(target=80, host_ip="127.0.0.2", host_port=30001)])
    plain = Task.model_validate(value)
    task = SharedSpecs().task(value)
    assert task == plain
    assert task.model_dump() == plain.model_dump()
    assert task.model_dump_json() == plain.model_dump_json()
    assert task.model_dump(exclude_unset=True) == plain.model_dump(exclude_unset=True)
    assert task.model_fields_set == plain.model_fields_set
    assert task.address == "127.0.0.2:30001" and task.slot_key == "7"


def test_tasks_share_their_bookkeeping_and_names() -> None:
    specs = SharedSpecs()
    first, second = specs.task(stored(1)), specs.task(stored(2))
    assert first.spec is second.spec
    assert first.__pydantic_fields_set__ is second.__pydantic_fields_set__
    assert first.node is second.node and first.service is second.service and first.stack is second.stack
    assert first.updated_at is first.created_at  # written once: one float for both
    if CPYTHON:  # the values in a dict sharing its keys: far smaller than pydantic's own dict
        assert sys.getsizeof(first.__dict__) < sys.getsizeof(dict(first.__dict__)) / 2


def test_a_copy_changes_and_the_shared_tasks_do_not() -> None:
    specs = SharedSpecs()
    first, second = specs.task(stored(1)), specs.task(stored(2))
    shared = set(first.__pydantic_fields_set__)
    moved = first.model_copy(update={"node": "node-00002", "state": TaskState.assigned})
    assert (moved.node, moved.state) == ("node-00002", TaskState.assigned)
    assert (first.node, first.state) == ("node-00001", TaskState.running)
    assert second.node == "node-00001"
    assert first.__pydantic_fields_set__ == shared and moved.__pydantic_fields_set__ is not first.__pydantic_fields_set__
    deep = first.model_copy(deep=True)
    assert deep == first and deep.__dict__ is not first.__dict__


def test_a_value_missing_fields_keeps_its_own_fields_set() -> None:
    """A record written before a field existed: defaults filled in, and `exclude_unset` still tells."""
    value = stored(3)
    del value["job_run"], value["moved_from"]
    task = SharedSpecs().task(value)
    assert task.job_run == 0 and task.moved_from == ""
    assert "job_run" not in task.model_fields_set and "job_run" not in task.model_dump(exclude_unset=True)
    assert SharedSpecs().task(stored(4)).model_fields_set != task.model_fields_set


@pytest.mark.skipif(not CPYTHON, reason="sizes of CPython's objects")
def test_a_cached_task_takes_under_a_kilobyte() -> None:
    """About 3.2 KB each as pydantic validates them; the bound catches a regression to that."""
    values = [stored(i, node=f"node-{i % 50:05d}") for i in range(2000)]
    specs = SharedSpecs()
    specs.task(values[0])  # the shared spec and bookkeeping are made once, not per task
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept = [specs.task(value) for value in values]
        per_task = (tracemalloc.get_traced_memory()[0] - before) / len(kept)
    finally:
        tracemalloc.stop()
    plain = Task.model_validate(values[1])
    assert per_task < 1000, f"{per_task:.0f} bytes a task"
    assert sys.getsizeof(plain.__pydantic_fields_set__) + sys.getsizeof(plain.__dict__) > 2000  # what was saved


def test_a_written_task_read_through_its_copy_is_the_validated_task_and_as_small() -> None:
    """A writer's object, copied when written (`compacted_copy`), taken instead of validating the value again."""
    specs = SharedSpecs()
    cached = specs.task(stored(1))
    written = cached.model_copy(update={"node": "-".join(["node", "00009"]), "state": TaskState.starting, "updated_at": 1001.0})
    copied = compacted_copy(written, SHARED_NAMES)
    value: dict[str, object] = orjson.loads(orjson.dumps(dump(written)))
    held = specs.task(value, copied)
    assert held is copied and held == Task.model_validate(value) and held.spec is cached.spec
    assert held.model_dump_json() == Task.model_validate(value).model_dump_json()
    assert held.__dict__ is not written.__dict__ and held.node is sys.intern("node-00009")
    assert held.__pydantic_fields_set__ is cached.__pydantic_fields_set__  # every field: the one shared set
    written.state = TaskState.failed  # the writer changing its own object later
    assert held.state == TaskState.starting
    if CPYTHON:
        assert sys.getsizeof(held.__dict__) == sys.getsizeof(cached.__dict__)
    fresh = Task(id="x", service="web", spec=cached.spec, created_at=1.0, updated_at=1.0)  # not every field given
    assert compacted_copy(fresh).model_fields_set == fresh.model_fields_set == {"id", "service", "spec", "created_at", "updated_at"}
