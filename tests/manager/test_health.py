"""health.reconcile: nodes past their lease go down, and their tasks are lost."""

import pytest

from corral.manager.health import reconcile
from corral.model import NodeState, TaskState

from factories import SHUTDOWN, make_node, make_service, make_task, nodes_by_name

LEASE = 15.0
NOW = 1000.0
WEB = make_service("web", replicas=5)


def test_node_past_its_lease_goes_down_with_a_message() -> None:
    nodes = nodes_by_name(make_node("n1", last_heartbeat=0.0))
    plan = reconcile(nodes, [], {"n1": NOW - 20}, NOW, LEASE)
    [down] = plan.nodes
    assert down.name == "n1" and down.state == NodeState.down
    assert down.message == "no heartbeat for 20.0s"
    assert down.last_heartbeat == NOW - 20  # the in-memory heartbeat is kept on the record
    assert nodes["n1"].state == NodeState.ready  # input untouched


def test_without_an_in_memory_heartbeat_the_stored_one_counts() -> None:
    nodes = nodes_by_name(make_node("old", last_heartbeat=NOW - 100), make_node("fresh", last_heartbeat=NOW - 1))
    plan = reconcile(nodes, [], {}, NOW, LEASE)
    assert [n.name for n in plan.nodes] == ["old"]
    assert plan.nodes[0].message == "no heartbeat for 100.0s"


def test_in_memory_heartbeat_overrides_an_old_stored_one() -> None:
    nodes = nodes_by_name(make_node("n1", last_heartbeat=0.0))
    assert reconcile(nodes, [], {"n1": NOW - 1}, NOW, LEASE).empty


@pytest.mark.parametrize("age", [0.0, 14.9, LEASE])
def test_node_within_its_lease_is_left_alone(age: float) -> None:
    nodes = nodes_by_name(make_node("n1"))
    tasks = [make_task(WEB, 1, node="n1")]
    assert reconcile(nodes, tasks, {"n1": NOW - age}, NOW, LEASE).empty


@pytest.mark.parametrize("state", [TaskState.assigned, TaskState.starting, TaskState.running])
def test_placed_live_tasks_on_a_dead_node_are_lost(state: TaskState) -> None:
    nodes = nodes_by_name(make_node("n1"), make_node("n2"))
    on_dead = make_task(WEB, 1, id="dead", node="n1", state=state)
    elsewhere = make_task(WEB, 2, id="fine", node="n2")
    plan = reconcile(nodes, [on_dead, elsewhere], {"n1": NOW - 60, "n2": NOW}, NOW, LEASE)
    [lost] = plan.tasks
    assert lost.id == "dead"
    assert lost.state == TaskState.lost
    assert lost.error == "node n1 is down"
    assert lost.updated_at == NOW
    assert lost.desired_state == on_dead.desired_state  # replication decides what comes next


def test_tasks_being_stopped_on_a_dead_node_are_lost_too() -> None:
    nodes = nodes_by_name(make_node("n1"))
    stopping = make_task(WEB, 1, node="n1", desired=SHUTDOWN)
    [lost] = reconcile(nodes, [stopping], {"n1": 0.0}, NOW, LEASE).tasks
    assert lost.state == TaskState.lost


@pytest.mark.parametrize("state", [TaskState.new, TaskState.pending])
def test_unplaced_tasks_are_untouched(state: TaskState) -> None:
    # a global task names its node before it is placed
    nodes = nodes_by_name(make_node("n1"))
    task = make_task(WEB, None, node="n1", state=state)
    plan = reconcile(nodes, [task], {"n1": 0.0}, NOW, LEASE)
    assert len(plan.nodes) == 1
    assert plan.tasks == []


@pytest.mark.parametrize(
    "state", [TaskState.complete, TaskState.failed, TaskState.shutdown, TaskState.rejected, TaskState.lost]
)
def test_terminal_tasks_are_untouched(state: TaskState) -> None:
    nodes = nodes_by_name(make_node("n1"))
    plan = reconcile(nodes, [make_task(WEB, 1, node="n1", state=state)], {"n1": 0.0}, NOW, LEASE)
    assert plan.tasks == []


def test_a_node_already_down_is_not_written_again() -> None:
    nodes = nodes_by_name(make_node("n1", state=NodeState.down, last_heartbeat=0.0))
    plan = reconcile(nodes, [], {"n1": 0.0}, NOW, LEASE)
    assert plan.empty


def test_tasks_still_live_on_a_node_already_down_are_lost() -> None:
    nodes = nodes_by_name(make_node("n1", state=NodeState.down))
    plan = reconcile(nodes, [make_task(WEB, 1, node="n1")], {"n1": NOW}, NOW, LEASE)
    assert plan.nodes == []
    assert [t.state for t in plan.tasks] == [TaskState.lost]


def test_tasks_on_a_removed_node_are_lost() -> None:
    plan = reconcile({}, [make_task(WEB, 1, node="gone")], {}, NOW, LEASE)
    [lost] = plan.tasks
    assert lost.state == TaskState.lost and lost.error == "node gone was removed"


def test_a_second_pass_changes_nothing() -> None:
    nodes = nodes_by_name(make_node("n1"), make_node("n2"))
    tasks = {t.id: t for t in [make_task(WEB, 1, id="a", node="n1"), make_task(WEB, 2, id="b", node="n2")]}
    beats = {"n1": 0.0, "n2": NOW}
    plan = reconcile(nodes, tasks.values(), beats, NOW, LEASE)
    for node in plan.nodes:
        nodes[node.name] = node
    for task in plan.tasks:
        tasks[task.id] = task
    assert reconcile(nodes, tasks.values(), beats, NOW + 5, LEASE).empty
