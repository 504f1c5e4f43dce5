"""The controller keeps a slot with a volume on the node that holds it, over a real store (controller_harness)."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from corral.manager import keys
from corral.manager.writes import dump
from corral.model import Node, NodeState, RestartPolicy, Service, ServiceSpec, TaskState
from corral.model.volume import Mount
from controller_harness import Harness, start

DATA = Mount(type="volume", source="shop_data", target="/data")


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    h = await start(tmp_path)
    yield h
    await h.close()


async def _deploy_db(h: Harness, replicas: int) -> None:
    spec = ServiceSpec(
        name="shop_db", stack="shop", image="img:1", replicas=replicas, volumes=[DATA], restart_policy=RestartPolicy(delay=0)
    )
    service = Service(spec=spec, created_at=h.clock(), updated_at=h.clock())
    await h.store.put(keys.service_key(spec.name), dump(service), expect=0)


async def _running(h: Harness) -> dict[int, str]:
    """Report every assigned task running; the node of each slot."""
    for task in h.live("shop_db"):
        if task.state == TaskState.assigned:
            await h.report(task.id, TaskState.running)
    await h.settle()
    return {t.slot: t.node for t in h.live("shop_db") if t.slot is not None and t.node is not None}


async def test_volumes_are_recorded_at_placement_and_replacements_follow_them(harness: Harness) -> None:
    h = harness
    for name in ("n1", "n2", "n3"):
        await h.add_node(name)
    await _deploy_db(h, replicas=2)
    await h.settle()
    nodes = await _running(h)
    assert len(set(nodes.values())) == 2  # spread as usual: the volumes did not exist yet
    records = {v.obj.name: v.obj for v in h.cache.volumes.values()}
    assert {name: (r.node, r.slot, r.service, r.stack) for name, r in records.items()} == {
        f"shop_data.{slot}": (node, slot, "shop_db", "shop") for slot, node in nodes.items()
    }

    # a failure: the replacement goes back to the node with the volume, although an empty node is free
    [first] = [t for t in h.live("shop_db") if t.slot == 1]
    await h.report(first.id, TaskState.failed)
    await h.settle()
    [again] = [t for t in h.live("shop_db") if t.slot == 1]
    assert again.id != first.id and again.node == nodes[1]
    assert len(h.cache.volumes) == 2  # nothing new recorded

    # the node goes down: the slot waits, naming the volume; it is not started empty elsewhere
    found = h.cache.nodes[nodes[1]]
    down = found.obj.model_copy(update={"state": NodeState.down})
    await h.store.put(keys.node_key(down.name), dump(down), expect=found.revision)
    await h.report(again.id, TaskState.failed)
    await h.settle()
    [waiting] = [t for t in h.live("shop_db") if t.slot == 1]
    assert waiting.state == TaskState.pending and waiting.node is None
    assert waiting.error == f"volume shop_data.1 is on {nodes[1]}, which is down"

    # back up: placed on its node
    found = h.cache.nodes[nodes[1]]
    up = Node.model_validate({**found.obj.model_dump(), "state": NodeState.ready})
    await h.store.put(keys.node_key(up.name), dump(up), expect=found.revision)
    await h.settle()
    [back] = [t for t in h.live("shop_db") if t.slot == 1]
    assert back.state == TaskState.assigned and back.node == nodes[1]

    # scaled down and up again: slot 2 comes back to its volume's node
    found_service = h.cache.services["shop_db"]
    await h.scale("shop_db", 1)
    await h.settle()
    assert [t.slot for t in h.live("shop_db")] == [1]
    assert "volumes/" + nodes[2] + "/shop_data.2" in h.cache.volumes  # kept
    await h.scale("shop_db", 2)
    await h.settle()
    [slot2] = [t for t in h.live("shop_db") if t.slot == 2]
    assert slot2.node == nodes[2]
    assert found_service.obj.spec.volumes == [DATA]
