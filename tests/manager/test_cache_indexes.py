"""The cache's incremental indexes agree with a scan of its tasks, through puts, moves and deletes."""

import random

from corral.manager.api.views import NodeView, ServiceView
from corral.manager.cache import StateCache
from corral.manager.writes import dump
from corral.model import Node, Resources, Service, ServiceSpec, Task, TaskState
from corral.model.task import DesiredState

SPECS = {
    name: ServiceSpec(name=name, image="img", reservations=Resources(cpus=cpus, memory=mem)).task_shape()
    for name, cpus, mem in (("a", 0.1, 1 << 20), ("b", 0.0, 0), ("c", 0.25, 3 << 20))
}
NODES = [f"n{i}" for i in range(4)]


def _random_task(rng: random.Random, task_id: str) -> Task:
    service = rng.choice(list(SPECS))
    return Task(
        id=task_id, service=service, slot=1, spec=SPECS[service], created_at=1.0, updated_at=1.0,
        node=rng.choice([None, *NODES]), state=rng.choice(list(TaskState)), desired_state=rng.choice(list(DesiredState)),
    )


def test_counts_and_node_usage_follow_every_change() -> None:
    rng = random.Random(7)
    cache = StateCache(store=None)  # type: ignore[arg-type]
    revision = 0
    for _ in range(3000):
        revision += 1
        task_id = f"t{rng.randrange(300)}"
        if rng.random() < 0.15:
            cache._drop(f"tasks/{task_id}", revision)
        else:
            cache._put(f"tasks/{task_id}", dump(_random_task(rng, task_id)), revision)
    tasks = [v.obj for v in cache.tasks.values()]
    for name, spec in SPECS.items():
        service = Service(spec=spec.model_copy(update={"replicas": 3}), created_at=1.0, updated_at=1.0)
        scanned = ServiceView.of(service, [t for t in tasks if t.service == name])
        assert ServiceView.counted(service, *cache.service_counts.get(name, (0, 0))) == scanned
        assert sorted(t.id for t in cache.tasks_of(name)) == sorted(t.id for t in tasks if t.service == name)
    for name in NODES:
        node = Node(name=name, address="10.0.0.1", resources=Resources(cpus=8, memory=1 << 30), last_heartbeat=1, registered_at=1)
        scanned = NodeView.of(node, tasks, None, "ok")
        count, cpus, memory = cache.node_usage.get(name, (0, 0.0, 0))
        assert count == scanned.tasks and memory == scanned.reserved.memory
        assert abs(cpus - scanned.reserved.cpus) < 1e-9


def test_tasks_of_one_service_version_share_one_spec() -> None:
    cache = StateCache(store=None)  # type: ignore[arg-type]
    for i in range(3):
        task = Task(id=f"t{i}", service="a", slot=i, spec=SPECS["a"], created_at=1.0, updated_at=1.0)
        cache._put(f"tasks/t{i}", dump(task), i + 1)
    specs = {id(v.obj.spec) for v in cache.tasks.values()}
    assert len(specs) == 1 and cache.tasks["t0"].obj.spec == SPECS["a"]


def test_node_delta_is_what_a_scan_finds() -> None:
    rng = random.Random(11)
    cache = StateCache(store=None)  # type: ignore[arg-type]
    for revision in range(1, 2001):
        task_id = f"t{rng.randrange(200)}"
        if rng.random() < 0.1:
            cache._drop(f"tasks/{task_id}", revision)
        else:
            cache._put(f"tasks/{task_id}", dump(_random_task(rng, task_id)), revision)
    for node in NODES:
        for after in (1, 500, 1500, 1990):
            full, changed, removed = cache.node_delta(node, after)
            assert not full
            on_node = [v for v in cache.tasks.values() if v.obj.node == node]
            assert sorted(t.id for t in changed) == sorted(v.obj.id for v in on_node if v.revision > after)
            assert not set(removed) & {v.obj.id for v in on_node}
        full, everything, _ = cache.node_delta(node, 0)
        assert full and sorted(t.id for t in everything) == sorted(v.obj.id for v in cache.tasks.values() if v.obj.node == node)


def test_journal_finds_the_nodes_a_scan_finds_even_after_it_was_trimmed(monkeypatch) -> None:
    """A watch of many nodes reads the journal from its position; a trimmed position falls back to a scan."""
    monkeypatch.setattr("corral.manager.cache.JOURNAL_LIMIT", 50)
    rng = random.Random(3)
    cache = StateCache(store=None)  # type: ignore[arg-type]
    revision = 0
    fallbacks = 0
    for _ in range(60):
        after = {name: rng.randrange(revision + 1) for name in NODES[:3]}  # what a watcher last saw
        position = cache.journal_end
        before = dict(cache.node_changed)
        for _ in range(rng.randrange(1, 60)):  # up to more than the journal keeps
            revision += 1
            task_id = f"t{rng.randrange(60)}"
            cache._put(f"tasks/{task_id}", dump(_random_task(rng, task_id)), revision)
        changed_now = {name for name in after if cache.node_changed.get(name, 0) > before.get(name, 0)}
        scanned = {name for name, seen in after.items() if cache.node_changed.get(name, 0) > seen}
        found = cache.nodes_changed_since(position, after)
        assert len(found) == len(set(found))
        if position >= cache.journal_base:
            assert set(found) == changed_now & scanned  # what changed since the position, and is news
        else:
            fallbacks += 1
            assert set(found) == scanned  # trimmed away: every node checked
    assert fallbacks, "the journal was never trimmed past a position; the fallback went untested"


def test_an_agents_own_report_is_not_news_to_its_node_but_the_managers_changes_are() -> None:
    cache = StateCache(store=None)  # type: ignore[arg-type]
    task = Task(id="t1", service="a", slot=1, spec=SPECS["a"], node="n1", state=TaskState.assigned, created_at=1.0, updated_at=1.0)
    cache._put("tasks/t1", dump(task), 1)
    assert cache.node_changed["n1"] == 1
    for revision, state in ((2, TaskState.starting), (3, TaskState.running)):  # what the agent reported
        task = task.model_copy(update={"state": state, "container_id": "c1"})
        cache._put("tasks/t1", dump(task), revision)
    assert cache.node_changed["n1"] == 1 and cache.node_delta("n1", 1)[1] == []
    assert cache.tasks["t1"].obj.state == TaskState.running  # the cache itself has it all the same
    stop = task.model_copy(update={"desired_state": DesiredState.shutdown})  # the manager's decision
    cache._put("tasks/t1", dump(stop), 4)
    assert cache.node_changed["n1"] == 4 and [t.id for t in cache.node_delta("n1", 3)[1]] == ["t1"]
    lost = stop.model_copy(update={"state": TaskState.lost})
    cache._put("tasks/t1", dump(lost), 5)
    assert cache.node_changed["n1"] == 5
