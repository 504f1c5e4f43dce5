"""schedule() with placement preferences (spread over label values) and service (anti-)affinity."""

from collections import Counter

import pytest

from corral.manager.scheduling import schedule
from corral.model import Placement, TaskState
from corral.model.affinity import Affinity

from sched_helpers import node, per_node, reasons, spec, task, tasks

SAMPLES = [None, 2]
ZONES = [node("n1", labels={"zone": "a"}), node("n2", labels={"zone": "a"}), node("n3", labels={"zone": "b"})]


def spread_spec(name: str = "web", *labels: str):  # type: ignore[no-untyped-def]
    return spec(name).model_copy(update={"placement": Placement(preferences=[f"node.labels.{label}" for label in labels or ("zone",)])})


def with_affinity(name: str, *rules: Affinity):  # type: ignore[no-untyped-def]
    return spec(name).model_copy(update={"affinities": list(rules)})


def zone_counts(plan, nodes) -> Counter[str]:  # type: ignore[no-untyped-def]
    zone = {n.name: n.labels.get("zone", "") for n in nodes}
    return Counter(zone[a.node] for a in plan.assignments)


@pytest.mark.parametrize("sample", SAMPLES)
def test_four_replicas_spread_two_per_zone(sample: int | None) -> None:
    plan = schedule(ZONES, [], tasks("w", spread_spec(), 4), now=0, sample=sample)
    assert zone_counts(plan, ZONES) == {"a": 2, "b": 2}
    assert per_node(plan) == {"n1": 1, "n2": 1, "n3": 2}, "within a zone, spread over its nodes"


def test_without_the_preference_nodes_not_zones_are_balanced() -> None:
    plan = schedule(ZONES, [], tasks("w", spec(), 4), now=0)
    assert zone_counts(plan, ZONES) == {"a": 3, "b": 1}


def test_spread_counts_what_already_runs_and_nodes_without_the_label_form_a_group() -> None:
    nodes = [*ZONES, node("n4")]
    web = spread_spec()
    placed = [task("old1", web, "n3", TaskState.running), task("old2", web, "n3", TaskState.running)]
    plan = schedule(nodes, placed, tasks("w", web, 4), now=0)
    assert zone_counts(plan, nodes) == {"a": 2, "": 2}


def test_nested_spreads_go_zone_then_rack() -> None:
    nodes = [
        node("n1", labels={"zone": "a", "rack": "1"}), node("n2", labels={"zone": "a", "rack": "1"}),
        node("n3", labels={"zone": "a", "rack": "2"}), node("n4", labels={"zone": "b", "rack": "3"}),
    ]
    plan = schedule(nodes, [], tasks("w", spread_spec("web", "zone", "rack"), 4), now=0)
    assert zone_counts(plan, nodes) == {"a": 2, "b": 2}
    racks = Counter({"n1": "1", "n2": "1", "n3": "2", "n4": "3"}[a.node] for a in plan.assignments)
    assert racks == {"1": 1, "2": 1, "3": 2}


@pytest.mark.parametrize("sample", SAMPLES)
def test_required_anti_affinity_keeps_services_apart_and_says_why_when_it_cannot(sample: int | None) -> None:
    db = spec("db")
    placed = [task("db1", db, "n1", TaskState.running), task("db2", db, "n2", TaskState.running)]
    app = with_affinity("app", Affinity(service="db", anti=True))
    plan = schedule(ZONES, placed, tasks("a", app, 2), now=0, sample=sample)
    assert per_node(plan) == {"n3": 2}
    # Anti-affinity with itself too: one per node, and the second has nowhere to go.
    lonely = with_affinity("app", Affinity(service="db", anti=True), Affinity(service="app", anti=True))
    plan = schedule(ZONES, placed, tasks("a", lonely, 2), now=0, sample=sample)
    assert per_node(plan) == {"n3": 1}
    assert list(reasons(plan).values()) == ["no suitable node (3 nodes: 2 runs db (anti-affinity), 1 runs app (anti-affinity))"]


def test_required_affinity_goes_only_where_the_other_service_runs() -> None:
    placed = [task("c1", spec("cache"), "n2", TaskState.running)]
    plan = schedule(ZONES, placed, tasks("a", with_affinity("app", Affinity(service="cache")), 2), now=0)
    assert per_node(plan) == {"n2": 2}
    alone = schedule(ZONES, [], tasks("a", with_affinity("app", Affinity(service="cache")), 1), now=0)
    assert list(reasons(alone).values()) == ["no suitable node (3 nodes: 3 does not run cache (affinity))"]


@pytest.mark.parametrize("sample", SAMPLES)
def test_preferred_anti_affinity_avoids_the_service_while_it_can(sample: int | None) -> None:
    placed = [task("db1", spec("db"), "n1", TaskState.running)]
    app = with_affinity("app", Affinity(service="db", anti=True, mode="prefer"))
    first = schedule(ZONES, placed, tasks("a", app, 2), now=0, sample=sample)
    assert per_node(first) == {"n2": 1, "n3": 1}
    crowded = with_affinity("app", Affinity(service="db", anti=True, mode="prefer")).model_copy(
        update={"placement": Placement(max_replicas_per_node=1)}
    )
    more = schedule(ZONES, placed, tasks("b", crowded, 3), now=0, sample=sample)
    assert per_node(more) == {"n1": 1, "n2": 1, "n3": 1}, "a preference, not a rule: n1 takes one when no other node can"


def test_preferred_affinity_goes_beside_the_service_first() -> None:
    placed = [task("c1", spec("cache"), "n3", TaskState.running)]
    app = with_affinity("app", Affinity(service="cache", mode="prefer"))
    plan = schedule(ZONES, placed, tasks("a", app, 3), now=0)
    assert per_node(plan) == {"n3": 3}
