"""schedule(): where tasks go, and why those that go nowhere do not."""

import pytest

from corral.manager.scheduling import Assignment, Plan, Unplaced, schedule
from corral.model import NodeAvailability, NodeState, PortSpec, TaskState

from sched_helpers import GiB, MiB, node, per_node, reasons, spec, task, tasks, where

SAMPLES = [None, 2]


# -- spread and load


@pytest.mark.parametrize("sample", SAMPLES)
def test_six_replicas_on_three_nodes_go_two_each(sample: int | None) -> None:
    nodes = [node("a"), node("b"), node("c")]
    plan = schedule(nodes, [], tasks("web", spec(), 6), now=0, sample=sample)
    assert per_node(plan) == {"a": 2, "b": 2, "c": 2}
    assert plan.unplaced == []


def test_spread_counts_replicas_already_placed() -> None:
    web = spec()
    placed = [task("old1", web, "a", TaskState.running), task("old2", web, "a", TaskState.running)]
    plan = schedule([node("a"), node("b"), node("c")], placed, tasks("web", web, 4), now=0)
    assert per_node(plan) == {"b": 2, "c": 2}


def test_spread_is_per_service() -> None:
    other = spec("db")
    placed = [task(f"db{i}", other, "a", TaskState.running) for i in range(3)]
    plan = schedule([node("a"), node("b")], placed, tasks("web", spec(), 2), now=0)
    # one each: replicas of another service only break ties (fewest tasks overall)
    assert per_node(plan) == {"a": 1, "b": 1}
    assert where(plan)["web0"] == "b"


def test_least_loaded_node_first() -> None:
    heavy = spec("db", cpus=3)
    placed = [task("db0", heavy, "a", TaskState.running)]
    plan = schedule([node("a"), node("b")], placed, [task("w", spec(cpus=1))], now=0)
    assert plan.assignments == [Assignment("w", "b")]


def test_load_is_the_fraction_after_placement() -> None:
    # b has more CPU reserved in absolute terms but is bigger: 2/16 < 1/4 after placement.
    db = spec("db", cpus=1)
    placed = [task("db0", db, "b", TaskState.running)]
    plan = schedule([node("a", cpus=4), node("b", cpus=16)], placed, [task("w", spec(cpus=1))], now=0)
    assert plan.assignments == [Assignment("w", "b")]


def test_fewest_tasks_breaks_load_ties_then_name() -> None:
    other = spec("db")
    placed = [task("db0", other, "a", TaskState.running)]
    plan = schedule([node("c"), node("a"), node("b")], placed, tasks("web", spec(), 2), now=0)
    assert [a.node for a in plan.assignments] == ["b", "c"]


# -- resources


@pytest.mark.parametrize("sample", SAMPLES)
def test_reservations_are_never_over_committed(sample: int | None) -> None:
    nodes = [node("a", cpus=2), node("b", cpus=2)]
    plan = schedule(nodes, [], tasks("w", spec(cpus=1), 5), now=0, sample=sample)
    assert per_node(plan) == {"a": 2, "b": 2}
    assert plan.unplaced == [Unplaced("w4", "no node has 1 CPU free (2 nodes: 2 insufficient cpu)")]


def test_placed_tasks_hold_their_reservations() -> None:
    db = spec("db", cpus=3, memory=6 * GiB)
    placed = [task("db0", db, "a", TaskState.running)]
    plan = schedule([node("a")], placed, [task("w", spec(cpus=2))], now=0)
    assert plan.unplaced == [Unplaced("w", "no node has 2 CPUs free (1 node: 1 insufficient cpu)")]
    plan = schedule([node("a")], placed, [task("m", spec(memory=4 * GiB))], now=0)
    assert plan.unplaced == [Unplaced("m", "no node has 4GiB memory free (1 node: 1 insufficient memory)")]


def test_ended_and_nodeless_tasks_hold_nothing() -> None:
    db = spec("db", cpus=4)
    placed = [
        task("gone", db, "a", TaskState.failed),
        task("shut", db, "a", TaskState.shutdown),
        task("nowhere", db, None, TaskState.pending),
    ]
    plan = schedule([node("a")], placed, [task("w", spec(cpus=4))], now=0)
    assert plan.assignments == [Assignment("w", "a")]


def test_exact_fit_with_fractional_cpus() -> None:
    plan = schedule([node("a", cpus=1)], [], tasks("w", spec(cpus=0.1), 11), now=0)
    assert len(plan.assignments) == 10
    assert reasons(plan) == {"w10": "no node has 0.1 CPUs free (1 node: 1 insufficient cpu)"}


def test_reason_names_memory_asked() -> None:
    plan = schedule([node("a", memory=256 * MiB), node("b", availability=NodeAvailability.drain)], [],
                    [task("m", spec(memory=512 * MiB))], now=0)
    assert reasons(plan) == {"m": "no node has 512MiB memory free (2 nodes: 1 drained, 1 insufficient memory)"}


def test_reason_with_cpu_and_memory_short() -> None:
    nodes = [node("a", cpus=1), node("b", memory=1 * GiB), node("c", cpus=1)]
    plan = schedule(nodes, [], [task("x", spec(cpus=2, memory=2 * GiB))], now=0)
    assert reasons(plan) == {
        "x": "no node has 2 CPUs and 2GiB memory free (3 nodes: 2 insufficient cpu, 1 insufficient memory)"
    }


def test_reason_example_from_the_docs() -> None:
    nodes = [node("a", cpus=1), node("b", cpus=1), node("c", availability=NodeAvailability.drain)]
    plan = schedule(nodes, [], [task("x", spec(cpus=2))], now=0)
    assert reasons(plan) == {"x": "no node has 2 CPUs free (3 nodes: 2 insufficient cpu, 1 drained)"}


def test_tasks_left_over_once_nodes_are_full_share_the_reason() -> None:
    plan = schedule([node("a", cpus=2)], [], tasks("w", spec(cpus=1), 4), now=0)
    assert reasons(plan) == {
        "w2": "no node has 1 CPU free (1 node: 1 insufficient cpu)",
        "w3": "no node has 1 CPU free (1 node: 1 insufficient cpu)",
    }


# -- node state


@pytest.mark.parametrize("sample", SAMPLES)
def test_drained_paused_and_down_nodes_take_nothing(sample: int | None) -> None:
    nodes = [
        node("down", state=NodeState.down),
        node("drained", availability=NodeAvailability.drain),
        node("paused", availability=NodeAvailability.pause),
        node("up"),
    ]
    plan = schedule(nodes, [], tasks("w", spec(), 3), now=0, sample=sample)
    assert per_node(plan) == {"up": 3}


def test_no_node_available() -> None:
    nodes = [
        node("a", state=NodeState.down),
        node("b", availability=NodeAvailability.drain),
        node("c", availability=NodeAvailability.pause),
        node("d", availability=NodeAvailability.drain),
    ]
    plan = schedule(nodes, [], [task("w", spec())], now=0)
    assert reasons(plan) == {"w": "no suitable node (4 nodes: 2 drained, 1 down, 1 paused)"}


def test_down_wins_over_drain() -> None:
    nodes = [node("a", state=NodeState.down, availability=NodeAvailability.drain)]
    plan = schedule(nodes, [], [task("w", spec())], now=0)
    assert reasons(plan) == {"w": "no suitable node (1 node: 1 down)"}


def test_no_nodes_at_all() -> None:
    plan = schedule([], [], [task("w", spec(cpus=1))], now=0)
    assert plan == Plan(assignments=[], unplaced=[Unplaced("w", "no nodes in the cluster")])


# -- constraints


@pytest.mark.parametrize("sample", SAMPLES)
def test_label_equal_constraint(sample: int | None) -> None:
    nodes = [node("a", labels={"zone": "east"}), node("b", labels={"zone": "west"}), node("c")]
    plan = schedule(nodes, [], tasks("w", spec(constraints=["node.labels.zone == east"]), 3), now=0, sample=sample)
    assert per_node(plan) == {"a": 3}


def test_label_not_equal_constraint_includes_unlabelled_nodes() -> None:
    nodes = [node("a", labels={"zone": "east"}), node("b", labels={"zone": "west"}), node("c")]
    plan = schedule(nodes, [], tasks("w", spec(constraints=["node.labels.zone != east"]), 4), now=0)
    assert per_node(plan) == {"b": 2, "c": 2}


def test_name_constraints() -> None:
    nodes = [node("a"), node("b"), node("c")]
    plan = schedule(nodes, [], tasks("w", spec(constraints=["node.name == b"]), 2), now=0)
    assert per_node(plan) == {"b": 2}
    plan = schedule(nodes, [], tasks("w", spec(constraints=["node.hostname != b"]), 2), now=0)
    assert per_node(plan) == {"a": 1, "c": 1}


def test_all_constraints_must_hold() -> None:
    nodes = [
        node("a", labels={"zone": "east", "disk": "ssd"}),
        node("b", labels={"zone": "east", "disk": "hdd"}),
        node("c", labels={"zone": "west", "disk": "ssd"}),
    ]
    constraints = ["node.labels.zone == east", "node.labels.disk == ssd"]
    plan = schedule(nodes, [], tasks("w", spec(constraints=constraints), 2), now=0)
    assert per_node(plan) == {"a": 2}


def test_constraint_reason() -> None:
    nodes = [
        node("a", labels={"zone": "west"}),
        node("b", labels={"zone": "west", "disk": "hdd"}),
        node("c", labels={"zone": "east", "disk": "hdd"}),
    ]
    constraints = ["node.labels.zone == east", "node.labels.disk == ssd"]
    plan = schedule(nodes, [], [task("w", spec(constraints=constraints))], now=0)
    assert reasons(plan) == {
        "w": "no suitable node (3 nodes: 2 constraint node.labels.zone == east, 1 constraint node.labels.disk == ssd)"
    }


def test_invalid_constraint_is_reported_not_raised() -> None:
    plan = schedule([node("a")], [], [task("w", spec(constraints=["zone = east"]))], now=0)
    [unplaced] = plan.unplaced
    assert unplaced.reason.startswith("placement.constraints[0]: invalid constraint 'zone = east'")


# -- max replicas per node


@pytest.mark.parametrize("sample", SAMPLES)
def test_max_replicas_per_node(sample: int | None) -> None:
    web = spec(max_per_node=2)
    placed = [task("old", web, "a", TaskState.running)]
    plan = schedule([node("a"), node("b")], placed, tasks("w", web, 4), now=0, sample=sample)
    assert per_node(plan) == {"a": 1, "b": 2}
    assert reasons(plan) == {"w3": "no suitable node (2 nodes: 2 max replicas per node (2))"}


def test_max_replicas_counts_only_the_same_service() -> None:
    placed = [task("db", spec("db"), "a", TaskState.running)]
    plan = schedule([node("a")], placed, [task("w", spec(max_per_node=1))], now=0)
    assert plan.assignments == [Assignment("w", "a")]


# -- host ports


def test_host_port_conflict() -> None:
    edge = spec("edge", ports=[PortSpec(target=80, published=8080, mode="host")])
    plan = schedule([node("a"), node("b")], [], tasks("e", edge, 3), now=0)
    assert per_node(plan) == {"a": 1, "b": 1}
    assert reasons(plan) == {"e2": "no suitable node (2 nodes: 2 host port 8080/tcp in use)"}


def test_host_port_held_by_another_service() -> None:
    other = spec("other", ports=[PortSpec(target=8000, published=8080, mode="host")])
    edge = spec("edge", ports=[PortSpec(target=80, published=8080, mode="host")])
    placed = [task("o", other, "a", TaskState.running)]
    plan = schedule([node("a"), node("b")], placed, tasks("e", edge, 2), now=0)
    assert plan.assignments == [Assignment("e0", "b")]
    assert reasons(plan) == {"e1": "no suitable node (2 nodes: 2 host port 8080/tcp in use)"}


def test_ingress_unpublished_and_other_protocol_ports_do_not_conflict() -> None:
    ingress = spec("ingress", ports=[PortSpec(target=80, published=8080)])
    dynamic = spec("dynamic", ports=[PortSpec(target=80, mode="host")])
    udp = spec("udp", ports=[PortSpec(target=80, published=8080, protocol="udp", mode="host")])
    tcp = spec("tcp", ports=[PortSpec(target=80, published=8080, mode="host")])
    todo = tasks("i", ingress, 2) + tasks("d", dynamic, 2) + tasks("u", udp, 1) + tasks("t", tcp, 1)
    plan = schedule([node("a")], [], todo, now=0)
    assert plan.unplaced == []
    assert per_node(plan) == {"a": 6}


def test_ended_task_frees_its_port() -> None:
    edge = spec("edge", ports=[PortSpec(target=80, published=8080, mode="host")])
    placed = [task("old", edge, "a", TaskState.failed)]
    plan = schedule([node("a")], placed, [task("e", edge)], now=0)
    assert plan.assignments == [Assignment("e", "a")]


# -- global (pinned) tasks


def test_pinned_task_goes_to_its_node() -> None:
    busy = spec("db", cpus=3)
    placed = [task("db", busy, "a", TaskState.running)]
    agent = spec("agent", cpus=0.5)
    todo = [task("g-a", agent, "a", slot=None), task("g-b", agent, "b", slot=None)]
    plan = schedule([node("a"), node("b")], placed, todo, now=0)
    assert where(plan) == {"g-a": "a", "g-b": "b"}


def test_pinned_task_reasons() -> None:
    agent = spec("agent", cpus=2, constraints=["node.labels.agent == yes"])
    nodes = [
        node("small", cpus=1, labels={"agent": "yes"}),
        node("drained", labels={"agent": "yes"}, availability=NodeAvailability.drain),
        node("plain"),
    ]
    todo = [task(f"g-{name}", agent, name, slot=None) for name in ("small", "drained", "plain", "gone")]
    plan = schedule(nodes, [], todo, now=0)
    assert plan.assignments == []
    assert reasons(plan) == {
        "g-small": "node small does not have 2 CPUs free",
        "g-drained": "node drained is not suitable: drained",
        "g-plain": "node plain is not suitable: constraint node.labels.agent == yes",
        "g-gone": "node gone is not in the cluster",
    }


def test_pinned_tasks_are_placed_before_others() -> None:
    big = spec("big", cpus=3)
    agent = spec("agent", cpus=2)
    todo = [task("b", big), task("g", agent, "a", slot=None)]
    plan = schedule([node("a"), node("b", cpus=2)], [], todo, now=0)
    assert where(plan) == {"g": "a"}
    assert reasons(plan) == {"b": "no node has 3 CPUs free (2 nodes: 2 insufficient cpu)"}


# -- what is left out


def test_not_before_in_the_future_is_left_out() -> None:
    web = spec()
    todo = [task("later", web, not_before=10.0), task("now", web, not_before=5.0), task("past", web, not_before=1.0)]
    plan = schedule([node("a")], [], todo, now=5.0)
    assert sorted(where(plan)) == ["now", "past"]
    assert plan.unplaced == []


def test_every_task_is_either_assigned_or_unplaced_once() -> None:
    web = spec(cpus=1)
    todo = tasks("w", web, 10) + [tasks("w", web, 1)[0]]  # w0 twice
    plan = schedule([node("a", cpus=4)], [], todo, now=0)
    ids = [a.task_id for a in plan.assignments] + [u.task_id for u in plan.unplaced]
    assert sorted(ids) == sorted(f"w{i}" for i in range(10))


def test_ended_tasks_are_not_placed() -> None:
    plan = schedule([node("a")], [], [task("x", spec(), state=TaskState.failed)], now=0)
    assert plan == Plan([], [])


# -- determinism


@pytest.mark.parametrize("sample", SAMPLES)
def test_same_input_same_plan(sample: int | None) -> None:
    nodes = [node(f"n{i}", cpus=1 + i % 4, labels={"zone": "ab"[i % 2]}) for i in range(20)]
    todo = tasks("w", spec(cpus=0.5), 30) + tasks("x", spec("x", constraints=["node.labels.zone == a"]), 15)
    first = schedule(nodes, [], todo, now=0, sample=sample, seed=7)
    assert schedule(nodes, [], todo, now=0, sample=sample, seed=7) == first
    assert schedule(list(reversed(nodes)), [], todo, now=0, sample=sample, seed=7) == first


def test_sampling_keeps_spread_exact_whatever_the_seed() -> None:
    nodes = [node(f"n{i}") for i in range(50)]
    plans = [schedule(nodes, [], tasks("w", spec(), 50), now=0, sample=2, seed=seed) for seed in range(3)]
    for plan in plans:
        assert set(per_node(plan).values()) == {1}


def test_sample_must_be_positive() -> None:
    with pytest.raises(ValueError):
        schedule([node("a")], [], [], now=0, sample=0)
