"""A slot with a volume sticks to the node that holds it: the scheduler's pure side of volumes."""

from corral.manager.scheduling import schedule
from corral.manager.scheduling.volumes import (
    VolumePin,
    bindings_of,
    explain_volume,
    needs_volumes,
    new_volumes,
    sticky_names,
    volume_pin,
)
from corral.model import NodeAvailability, NodeState, Resources, TaskState
from corral.model.volume import Mount, Volume
from tests.manager.factories import make_node, make_service, make_task

DATA = Mount(type="volume", source="shop_data", target="/data")
CACHE = Mount(type="volume", source="shop_cache", target="/cache", sticky=False)
SHARED = Mount(type="volume", source="shared", target="/shared", external=True)
BIND = Mount(type="bind", source="/srv/x", target="/x")


def service(*mounts: Mount, **fields: object):  # type: ignore[no-untyped-def]
    return make_service("shop_db", stack="shop", volumes=list(mounts), **fields)


def unplaced(svc, slot: int | None = 1, node: str | None = None):  # type: ignore[no-untyped-def]
    return make_task(svc, slot, id=f"t{slot}", state=TaskState.new, node=node)


def record(name: str, node: str, created_at: float = 0.0, sticky: bool = True) -> Volume:
    return Volume(name=name, node=node, source=name.rpartition(".")[0], service="shop_db", stack="shop", slot=1,
                  sticky=sticky, created_at=created_at)


NODES = [make_node("n1"), make_node("n2"), make_node("n3")]


def test_names_are_per_slot_and_per_node_for_global_services() -> None:
    svc = service(DATA, CACHE, SHARED, BIND)
    assert sticky_names(unplaced(svc, 2)) == ["shop_data.2"]
    assert needs_volumes(unplaced(svc, 2))
    assert not needs_volumes(unplaced(service(SHARED, BIND)))
    glob = service(DATA, global_=True)
    assert sticky_names(unplaced(glob, None, node="n2")) == ["shop_data.n2"]


def test_a_bound_slot_goes_to_its_node_even_when_others_are_emptier() -> None:
    svc = service(DATA)
    busy = [make_task(svc, 9, id=f"busy{i}", node="n3") for i in range(5)]  # n3 is the most loaded
    plan = schedule(NODES, busy, [unplaced(svc, 1)], 0.0, volumes={"shop_data.1": "n3"})
    assert [(a.task_id, a.node) for a in plan.assignments] == [("t1", "n3")]
    assert plan.unplaced == []


def test_a_bound_slot_waits_for_its_node_with_the_reason() -> None:
    svc = service(DATA)
    down = [make_node("n1"), make_node("n2", state=NodeState.down)]
    plan = schedule(down, (), [unplaced(svc, 1)], 0.0, volumes={"shop_data.1": "n2"})
    assert plan.assignments == []
    assert [(u.task_id, u.reason) for u in plan.unplaced] == [("t1", "volume shop_data.1 is on n2, which is down")]

    drained = [make_node("n1"), make_node("n2", availability=NodeAvailability.drain)]
    plan = schedule(drained, (), [unplaced(svc, 1)], 0.0, volumes={"shop_data.1": "n2"})
    assert plan.unplaced[0].reason == "volume shop_data.1 is on n2, which is drained"

    plan = schedule([make_node("n1")], (), [unplaced(svc, 1)], 0.0, volumes={"shop_data.1": "gone"})
    assert plan.unplaced[0].reason == "volume shop_data.1 is on gone, which is not in the cluster"


def test_a_bound_slot_short_of_room_on_its_node_says_so() -> None:
    svc = service(DATA, reservations=Resources(cpus=8))
    plan = schedule(NODES, (), [unplaced(svc, 1)], 0.0, volumes={"shop_data.1": "n2"})
    assert plan.unplaced[0].reason == "volume shop_data.1 is on n2, which does not have 8 CPUs free"


def test_unbound_slots_spread_and_the_pass_remembers_where_it_put_them() -> None:
    svc = service(DATA)
    tasks = [unplaced(svc, slot) for slot in (1, 2, 3)]
    plan = schedule(NODES, (), tasks, 0.0, volumes={})
    assert sorted(a.node for a in plan.assignments) == ["n1", "n2", "n3"]
    # an empty binding table is not "no volumes": a second task of slot 1 in the same pass follows the first
    twin = make_task(svc, 1, id="t1b", state=TaskState.new, node=None)
    plan = schedule(NODES, (), [tasks[0], twin], 0.0, volumes={})
    assert len({a.node for a in plan.assignments}) == 1


def test_disposable_and_external_volumes_do_not_pin() -> None:
    svc = service(CACHE, SHARED)
    assert volume_pin(unplaced(svc, 1), {"shop_cache.1": "n2", "shared": "n2"}) is None
    plan = schedule([make_node("n1"), make_node("n2", state=NodeState.down)], (), [unplaced(svc, 1)], 0.0,
                    volumes={"shop_cache.1": "n2"})
    assert [(a.task_id, a.node) for a in plan.assignments] == [("t1", "n1")]


def test_volumes_on_two_nodes_are_a_reason_not_a_guess() -> None:
    other = Mount(type="volume", source="shop_logs", target="/logs")
    pin = volume_pin(unplaced(service(DATA, other), 1), {"shop_data.1": "n1", "shop_logs.1": "n2"})
    assert isinstance(pin, str) and "shop_data.1 on n1" in pin and "shop_logs.1 on n2" in pin
    assert volume_pin(unplaced(service(DATA, other), 1), {"shop_data.1": "n1"}) == VolumePin("n1", "shop_data.1")


def test_bindings_come_from_sticky_records_the_oldest_winning() -> None:
    records = [record("shop_data.1", "n2", 5.0), record("shop_data.1", "n1", 3.0), record("shop_cache.1", "n3", sticky=False)]
    assert bindings_of(records) == {"shop_data.1": "n1"}


def test_new_volumes_are_recorded_once_per_node_and_never_for_external_ones() -> None:
    svc = service(DATA, CACHE, SHARED, BIND)
    task = unplaced(svc, 2)
    records = new_volumes(task, "n1", [], 7.0)
    assert [(r.name, r.node, r.slot, r.sticky, r.service, r.stack, r.created_at) for r in records] == [
        ("shop_data.2", "n1", 2, True, "shop_db", "shop", 7.0),
        ("shop_cache.2", "n1", 2, False, "shop_db", "shop", 7.0),
    ]
    assert new_volumes(task, "n1", [("n1", "shop_data.2")], 8.0)[0].name == "shop_cache.2"
    assert len(new_volumes(task, "n1", [("n1", "shop_data.2")], 8.0)) == 1


def test_reasons_read_well() -> None:
    pin = VolumePin("node-2", "shop_data.1")
    assert explain_volume(pin, "paused") == "volume shop_data.1 is on node-2, which is paused"
    assert explain_volume(pin, "insufficient memory", memory=1 << 30) == "volume shop_data.1 is on node-2, which does not have 1GiB memory free"
    assert explain_volume(pin, "constraint node.labels.x==y") == "volume shop_data.1 is on node-2, which is not suitable: constraint node.labels.x==y"


def test_a_slot_whose_volume_is_being_removed_waits_for_it_to_go() -> None:
    from corral.manager.scheduling.volumes import removing_of

    records = [record("shop_data.1", "n2").model_copy(update={"removing": True}), record("shop_data.2", "n1")]
    assert removing_of(records) == {"shop_data.1"}
    svc = service(DATA)
    plan = schedule(NODES, (), [unplaced(svc, 1), unplaced(svc, 2)], 0.0, volumes=bindings_of(records), removing=removing_of(records))
    assert [(u.task_id, u.reason) for u in plan.unplaced] == [
        ("t1", "volume shop_data.1 is being removed from n2; the task starts once it is gone")
    ]
    assert [(a.task_id, a.node) for a in plan.assignments] == [("t2", "n1")]
    # once its record is gone, the slot starts afresh wherever it fits
    plan = schedule(NODES, (), [unplaced(svc, 1)], 0.0, volumes=bindings_of(records[1:]), removing=())
    assert len(plan.assignments) == 1


def test_a_global_service_has_one_volume_per_node() -> None:
    glob = service(DATA, global_=True)
    tasks = [make_task(glob, None, id=f"g-{n}", state=TaskState.new, node=n) for n in ("n1", "n2")]
    plan = schedule(NODES, (), tasks, 0.0, volumes={})
    assert sorted(a.node for a in plan.assignments) == ["n1", "n2"]
    records = new_volumes(unplaced(glob, None, node="n2"), "n2", [], 1.0)
    assert [(r.name, r.node, r.slot) for r in records] == [("shop_data.n2", "n2", None)]
