"""Rebalancing: replicas move start-first to a node that came back, within the bounds that keep the cluster calm."""

from collections import Counter

from hypothesis import given, settings, strategies as st

from corral.manager import rebalance, replication
from corral.model import Service, Task, TaskState, UpdateConfig
from corral.model.service import UpdateState, UpdateStatus
from corral.model.task import DesiredState

from factories import id_gen, make_node, make_service, make_task, nodes_by_name

NODES = nodes_by_name(make_node("n1"), make_node("n2"), make_node("n3"))
NOW = 1000.0


def crowded(service: Service, per_node: dict[str, int], started_at: float = 0.0) -> dict[str, Task]:
    """The service's replicas placed `per_node`, running since `started_at`."""
    tasks, slot = {}, 1
    for node, count in per_node.items():
        for _ in range(count):
            task = make_task(service, slot, node=node, started_at=started_at)
            tasks[task.id] = task
            slot += 1
    return tasks


def live(tasks: dict[str, Task]) -> list[Task]:
    return [t for t in tasks.values() if t.desired_state == DesiredState.running and not t.terminal]


def pass_(service: Service, tasks: dict[str, Task], now: float) -> replication.ReplicationPlan:
    """One replication pass, a scheduler that puts new tasks on the node with the fewest replicas, agents that run at once."""
    plan = replication.reconcile({service.name: service}, list(tasks.values()), NODES, now, id_gen(f"m{now}-"))
    for task in plan.update:
        tasks[task.id] = task.model_copy(update={"state": TaskState.shutdown}) if task.desired_state == DesiredState.shutdown else task
    for task in plan.create:
        counts = Counter(t.node for t in live(tasks))
        target = min(NODES, key=lambda name: (counts[name], name))
        tasks[task.id] = task.model_copy(update={"node": target, "state": TaskState.running, "started_at": now})
    return plan


def test_replicas_move_to_the_returned_node_start_first_one_at_a_time_until_even() -> None:
    web = make_service("web", replicas=6)
    tasks = crowded(web, {"n1": 3, "n2": 3})
    moves = 0
    for step in range(10):
        plan = pass_(web, tasks, NOW + step)
        moved = [t for t in plan.create if t.moved_from]
        moves += len(moved)
        assert len(moved) <= 1, "update_config.parallelism 1: one move at a time"
        running = [t for t in live(tasks) if t.state == TaskState.running]
        assert len(running) >= 6, "never below the wanted replicas"
        assert all(t.slot is not None for t in running)
    assert Counter(t.node for t in live(tasks)) == {"n1": 2, "n2": 2, "n3": 2}
    assert moves == 2, "the fewest moves that even the spread"
    stopped = [t for t in tasks.values() if t.desired_state == DesiredState.shutdown]
    assert len(stopped) == 2 and all(t.error == "moved to node n3 (rebalance)" for t in stopped)
    assert sorted(t.slot for t in live(tasks)) == [1, 2, 3, 4, 5, 6], "a move stays in its slot"


def test_parallelism_bounds_the_moves_under_way() -> None:
    web = make_service("web", replicas=9, update_config=UpdateConfig(parallelism=2))
    tasks = crowded(web, {"n1": 5, "n2": 4})
    plan = replication.reconcile({"web": web}, list(tasks.values()), NODES, NOW, id_gen())
    assert len([t for t in plan.create if t.moved_from]) == 2
    assert plan.update == [], "the old replicas keep serving until their replacements run"


def test_a_move_that_cannot_be_placed_is_cancelled_and_not_retried_at_once() -> None:
    web = make_service("web", replicas=4)
    tasks = crowded(web, {"n1": 3, "n2": 1})
    [move] = replication.reconcile({"web": web}, list(tasks.values()), NODES, NOW, id_gen("x")).create
    tasks[move.id] = move.model_copy(update={"state": TaskState.pending, "error": "no suitable node"})
    plan = replication.reconcile({"web": web}, list(tasks.values()), NODES, NOW + 1, id_gen("y"))
    assert [t.id for t in plan.update] == [move.id] and plan.create == []
    assert plan.update[0].error == "rebalance cancelled: no suitable node"
    tasks[move.id] = plan.update[0]
    again = replication.reconcile({"web": web}, list(tasks.values()), NODES, NOW + 2, id_gen("z"))
    movers = [t for t in again.create if t.moved_from]
    assert all(t.moved_from != move.moved_from for t in movers), "the cancelled slot waits out the cool-down"


def test_what_does_not_move() -> None:
    web = make_service("web", replicas=6)
    assert rebalance.moves(web, slots(crowded(web, {"n1": 3, "n2": 3}, started_at=NOW - 10)), NODES, NOW) == [], "started recently"
    assert rebalance.moves(web, slots(crowded(web, {"n1": 2, "n2": 2, "n3": 2})), NODES, NOW) == [], "already even"
    assert rebalance.moves(web, slots(crowded(web, {"n1": 2, "n2": 2, "n3": 1})), NODES, NOW) == [], "off by one is even enough"
    opted_out = make_service("web", replicas=6, rebalance=False)
    assert rebalance.moves(opted_out, slots(crowded(opted_out, {"n1": 3, "n2": 3})), NODES, NOW) == []
    rolling = web.model_copy(update={"update_status": UpdateStatus(state=UpdateState.updating, started_at=0.0)})
    assert rebalance.moves(rolling, slots(crowded(web, {"n1": 3, "n2": 3})), NODES, NOW) == []
    starting = crowded(web, {"n1": 3, "n2": 3})
    first = next(iter(starting))
    starting[first] = starting[first].model_copy(update={"state": TaskState.starting})
    assert rebalance.moves(web, slots(starting), NODES, NOW) == [], "not at rest"
    pinned = make_service("web", replicas=6, constraints=["node.name != n3"])
    assert rebalance.moves(pinned, slots(crowded(pinned, {"n1": 3, "n2": 3})), NODES, NOW) == [], "n3 may not run it"
    assert len(rebalance.moves(web, slots(crowded(web, {"n1": 3, "n2": 3})), NODES, NOW)) == 1


def slots(tasks: dict[str, Task]) -> dict[str, list[Task]]:
    by_slot: dict[str, list[Task]] = {}
    for task in tasks.values():
        by_slot.setdefault(task.slot_key, []).append(task)
    return by_slot


@settings(max_examples=60, deadline=None)
@given(
    counts=st.lists(st.integers(min_value=0, max_value=6), min_size=2, max_size=3),
    parallelism=st.integers(min_value=0, max_value=3),
)
def test_any_spread_ends_even_with_the_fewest_moves_never_below_wanted(counts: list[int], parallelism: int) -> None:
    per_node = {f"n{i + 1}": count for i, count in enumerate(counts)}
    replicas = sum(counts)
    web = make_service("web", replicas=replicas, update_config=UpdateConfig(parallelism=parallelism))
    tasks = crowded(web, per_node)
    nodes = len(NODES)
    floor, ceil = replicas // nodes, -(-replicas // nodes)
    totals = [per_node.get(name, 0) for name in NODES]
    fewest = max(sum(max(0, floor - c) for c in totals), sum(max(0, c - ceil) for c in totals))
    moves = 0
    for step in range(60):
        plan = pass_(web, tasks, NOW + step)
        moves += sum(1 for t in plan.create if t.moved_from)
        assert len([t for t in live(tasks) if t.state == TaskState.running]) >= replicas
        under_way = [slot for slot, n in Counter(t.slot for t in live(tasks)).items() if n > 1]
        assert len(under_way) <= (parallelism or replicas)
        if plan.empty:
            break
    spread = Counter({name: 0 for name in NODES}) + Counter(t.node for t in live(tasks))
    final = [spread.get(name, 0) for name in NODES]
    assert max(final) - min(final) <= 1
    assert moves == fewest
