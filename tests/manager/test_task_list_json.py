"""views.task_list_json: a whole task listing made in slices (in a worker thread) is the list the API always gave."""

import json

import pytest

from corral.manager.api import views
from corral.manager.api.views import TaskView, by_service_and_slot, by_slot, task_list_json
from corral.model import TaskState

from factories import make_service, make_task

WEB = make_service("web", replicas=3)
API = make_service("api", replicas=3)


def _tasks(count: int) -> list:  # type: ignore[type-arg]
    """`count` tasks over two services, slots and nodes, in no particular order."""
    return [
        make_task(WEB if i % 2 else API, i % 7, id=f"t{i:04d}", state=TaskState.running, node=f"n{i % 3}", created_at=float(i % 5))
        for i in reversed(range(count))
    ]


@pytest.mark.parametrize("count", [0, 1, views.VIEWS_AT_ONCE, 2 * views.VIEWS_AT_ONCE + 3])
def test_the_sliced_json_is_the_sorted_views(count: int) -> None:
    tasks = _tasks(count)
    got = json.loads(task_list_json(tasks, by_service_and_slot))
    expected = [TaskView.of(t).model_dump(mode="json") for t in sorted(tasks, key=by_service_and_slot)]
    assert got == expected
    assert len(got) == count
    if count > 1:
        keys = [(row["service"], row["slot"], row["node"], -row["created_at"]) for row in got]
        assert keys == sorted(keys)


def test_a_services_tasks_are_by_slot_then_node_newest_first() -> None:
    tasks = [t for t in _tasks(40) if t.service == "web"]
    got = json.loads(task_list_json(tasks, by_slot))
    assert [(row["slot"], row["node"], -row["created_at"]) for row in got] == sorted(
        (t.slot, t.node, -t.created_at) for t in tasks
    )
    assert tasks == [t for t in _tasks(40) if t.service == "web"]  # the caller's list is not reordered
