"""A deploy of many replicas is started a bounded batch per pass (`new_slots`, `new_slots_per_pass`)."""

from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from corral.manager import replication
from corral.manager.replication import reconcile
from corral.model import TaskState

from controller_harness import Harness, start
from factories import apply_plan, id_gen, make_node, make_service, make_task, nodes_by_name, services_by_name

NOW = 1000.0
NODES = nodes_by_name(make_node("n1"), make_node("n2"), make_node("n3"))


def test_fresh_slots_over_the_limit_wait_for_the_next_call() -> None:
    services = services_by_name(make_service("web", replicas=10), make_service("api", replicas=4))
    new_id = id_gen()
    plan = reconcile(services, [], NODES, NOW, new_id, new_slots=6)
    assert [(t.service, t.slot) for t in plan.create] == [("web", s) for s in range(1, 7)]  # in the services' order
    assert plan.deferred == 8 and plan.new_slots == 0
    tasks = {}
    apply_plan(tasks, plan)
    second = reconcile(services, list(tasks.values()), NODES, NOW, new_id, new_slots=6)
    assert len(second.create) == 6 and second.deferred == 2
    apply_plan(tasks, second)
    third = reconcile(services, list(tasks.values()), NODES, NOW, new_id, new_slots=6)
    assert len(third.create) == 2 and third.deferred == 0 and third.new_slots == 4
    apply_plan(tasks, third)
    assert sorted((t.service, t.slot) for t in tasks.values()) == sorted(
        [("web", s) for s in range(1, 11)] + [("api", s) for s in range(1, 5)]
    )
    assert reconcile(services, list(tasks.values()), NODES, NOW, new_id, new_slots=6).empty


def test_replacements_are_never_deferred() -> None:
    """Only slots that never had a task wait: a failed replica is replaced whatever the limit."""
    service = make_service("web", replicas=3, restart={"delay": 0})
    failed = make_task(service, 2, node="n2", state=TaskState.failed)
    tasks = [make_task(service, 1, node="n1"), failed, make_task(service, 3, node="n3")]
    plan = reconcile(services_by_name(service), tasks, NODES, NOW, id_gen(), new_slots=0)
    assert [t.slot for t in plan.create] == [2] and plan.deferred == 0
    assert [t.id for t in plan.update] == [failed.id]


def test_no_limit_creates_every_slot() -> None:
    plan = reconcile(services_by_name(make_service("web", replicas=50)), [], NODES, NOW, id_gen())
    assert len(plan.create) == 50 and plan.deferred == 0 and plan.new_slots is None


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    h = await start(tmp_path)
    for name in ("n1", "n2", "n3"):
        await h.add_node(name)
    try:
        yield h
    finally:
        await h.close()


async def test_the_controller_starts_a_big_deploy_a_batch_per_pass(harness: Harness) -> None:
    h = harness
    h.controller.settings = replace(h.controller.settings, new_slots_per_pass=5)
    await h.deploy("web", 12)
    await h.deploy("api", 2)
    counts = []
    for _ in range(4):
        await h.step()  # no time passes: the deferred services are queued again at once, not by a resync
        counts.append(len(h.tasks()))
    assert counts == [5, 10, 14, 14]
    assert sorted(t.slot for t in h.tasks("web")) == list(range(1, 13))
    assert all(t.state == TaskState.assigned and t.node for t in h.tasks())  # each written once, placed


async def test_a_pass_reads_only_the_deferred_services_it_can_start(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ten deferred services are not all reconciled (every task of each read) for one's batch a pass."""
    h = harness
    h.controller.settings = replace(h.controller.settings, new_slots_per_pass=4)
    for name in ("a", "b", "c"):
        await h.deploy(name, 6)
    reconciled: list[list[str]] = []
    real = replication.reconcile

    def counting(services, *args, **kwargs):  # type: ignore[no-untyped-def]
        reconciled[-1].extend(services)
        return real(services, *args, **kwargs)

    monkeypatch.setattr(replication, "reconcile", counting)
    for _ in range(6):
        reconciled.append([])
        await h.step()
    assert reconciled[0] == ["a", "b", "c"]  # the first pass is over every service
    assert reconciled[1:] == [["a", "b"], ["c"], ["b"], ["c"], []]  # then only the services of the next batch
    assert sorted(len(h.tasks(name)) for name in ("a", "b", "c")) == [6, 6, 6]
