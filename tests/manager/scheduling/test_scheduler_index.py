"""ClusterIndex: keeping the cluster view between schedule() calls."""

from corral.manager.scheduling import Assignment, ClusterIndex, Unplaced, schedule
from corral.model import NodeAvailability, PortSpec, TaskState

from sched_helpers import node, spec, task, tasks


def placed_copy(t, node_name: str):  # type: ignore[no-untyped-def]
    return t.model_copy(update={"node": node_name, "state": TaskState.assigned})


def test_index_remembers_its_assignments() -> None:
    nodes = [node("a", cpus=2), node("b", cpus=2)]
    web = spec(cpus=1)
    index = ClusterIndex()
    first = schedule(nodes, [], tasks("x", web, 3), now=0, index=index)
    assert len(first.assignments) == 3
    second = schedule(nodes, [], tasks("y", web, 2), now=0, index=index)
    assert len(second.assignments) == 1
    assert second.unplaced == [Unplaced("y1", "no node has 1 CPU free (2 nodes: 2 insufficient cpu)")]


def test_incremental_index_matches_a_rebuild() -> None:
    nodes = [node(f"n{i}", cpus=2 + i % 3, labels={"zone": "ab"[i % 2]}) for i in range(7)]
    batches = [
        tasks("w", spec(cpus=0.5), 9),
        tasks("z", spec("z", constraints=["node.labels.zone == a"], max_per_node=2), 5),
        tasks("v", spec("v", memory=1 << 30), 6),
    ]
    index = ClusterIndex()
    placed: list = []
    for batch in batches:
        kept = schedule(nodes, [], batch, now=0, index=index)
        fresh = schedule(nodes, placed, batch, now=0)
        assert kept == fresh
        by_id = {t.id: t for t in batch}
        placed += [placed_copy(by_id[a.task_id], a.node) for a in fresh.assignments]


def test_feeding_placements_back_is_harmless() -> None:
    nodes = [node("a", cpus=2)]
    web = spec(cpus=1)
    index = ClusterIndex()
    todo = tasks("w", web, 2)
    plan = schedule(nodes, [], todo, now=0, index=index)
    back = [placed_copy(t, "a") for t in todo]
    again = schedule(nodes, back, [task("x", web)], now=0, index=index)
    assert again.unplaced == [Unplaced("x", "no node has 1 CPU free (1 node: 1 insufficient cpu)")]
    assert len(index) == 2
    assert plan.assignments == [Assignment("w0", "a"), Assignment("w1", "a")]


def test_ended_tasks_release_what_they_held() -> None:
    nodes = [node("a", cpus=1)]
    web = spec(cpus=1)
    index = ClusterIndex()
    [w] = tasks("w", web, 1)
    schedule(nodes, [], [w], now=0, index=index)
    ended = w.model_copy(update={"node": "a", "state": TaskState.failed})
    plan = schedule(nodes, [ended], [task("x", web)], now=0, index=index)
    assert plan.assignments == [Assignment("x", "a")]


def test_a_task_to_place_again_holds_nothing() -> None:
    """An assignment never committed comes back unplaced: it must not count twice."""
    nodes = [node("a", cpus=1)]
    index = ClusterIndex()
    [w] = tasks("w", spec(cpus=1), 1)
    assert schedule(nodes, [], [w], now=0, index=index).assignments == [Assignment("w0", "a")]
    assert schedule(nodes, [], [w], now=0, index=index).assignments == [Assignment("w0", "a")]
    assert len(index) == 1


def test_moved_task_moves_what_it_holds() -> None:
    nodes = [node("a", cpus=1), node("b", cpus=1)]
    web = spec(cpus=1)
    index = ClusterIndex(nodes, [task("w", web, "a", TaskState.running)])
    index.record(task("w", web, "b", TaskState.running))
    usage = {u.name: u for u in index.usage()}
    assert (usage["a"].cpus_reserved, usage["b"].cpus_reserved) == (0.0, 1.0)
    assert usage["b"].replicas == {"web": 1}


def test_node_changes_are_seen() -> None:
    index = ClusterIndex()
    web = spec(constraints=["node.labels.zone == east"])
    plan = schedule([node("a", labels={"zone": "east"})], [], [task("x", web)], now=0, index=index)
    assert plan.assignments == [Assignment("x", "a")]
    nodes = [node("a", labels={"zone": "west"}), node("b", labels={"zone": "east"})]
    plan = schedule(nodes, [], [task("y", web)], now=0, index=index)
    assert plan.assignments == [Assignment("y", "b")]
    nodes = [node("a", labels={"zone": "east"}), node("b", labels={"zone": "east"}, availability=NodeAvailability.drain)]
    plan = schedule(nodes, [], [task("z", web)], now=0, index=index)
    assert plan.assignments == [Assignment("z", "a")]
    plan = schedule([node("a", labels={"zone": "east"}, availability=NodeAvailability.pause)], [], [task("q", web)],
                    now=0, index=index)
    assert plan.unplaced == [Unplaced("q", "no suitable node (1 node: 1 paused)")]


def test_tasks_on_unknown_nodes_are_kept_until_the_node_appears() -> None:
    edge = spec("edge", ports=[PortSpec(target=80, published=80, mode="host")])
    index = ClusterIndex([], [task("old", edge, "a", TaskState.running)])
    plan = schedule([node("a")], [], [task("e", edge)], now=0, index=index)
    assert plan.unplaced == [Unplaced("e", "no suitable node (1 node: 1 host port 80/tcp in use)")]


def test_removed_node_takes_nothing() -> None:
    index = ClusterIndex()
    schedule([node("a"), node("b")], [], [], now=0, index=index)
    plan = schedule([node("b")], [], tasks("w", spec(), 2), now=0, index=index)
    assert {a.node for a in plan.assignments} == {"b"}
    assert [u.name for u in index.usage()] == ["b"]
