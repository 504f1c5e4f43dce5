"""`node top` rows: capacity and reservations from the cache, use from each node's agent over real mutual TLS
(the agent's node listener with a fake engine), and the reason when a node gives none."""

import socket
from pathlib import Path

import httpx

from corral.agent.node_listener import NodeListener
from corral.manager.node_top import top
from corral.model import NodeState
from tests.agent.test_node_listener import FakeEngine, _manager_streams, _node, setup  # noqa: F401  (setup: a fixture)
from tests.manager.test_api import api  # noqa: F401  (a fixture: a real manager without agents)


async def test_each_node_gets_its_use_or_the_reason_it_has_none(setup: tuple[NodeListener, Path, FakeEngine]) -> None:
    listener, data_dir, _ = setup
    streams = _manager_streams(data_dir)
    mute = socket.socket()  # accepts connections (the backlog) but never answers
    mute.bind(("127.0.0.1", 0))
    mute.listen(4)
    try:
        up = _node(listener)
        down = _node(listener, "node-2").model_copy(update={"state": NodeState.down})
        hollow = _node(listener, "node-3").model_copy(update={"agent_port": None})
        silent = _node(listener, "node-4").model_copy(update={"agent_port": mute.getsockname()[1]})
        reserved = {"node-1": [2, 0.5, 256 << 20]}
        rows = await top(streams, [silent, hollow, down, up], reserved, 1234.0, timeout=1.0)
        assert [r["node"] for r in rows] == ["node-1", "node-2", "node-3", "node-4"]
        one = rows[0]
        assert one["resources"] == {"cpus": 1, "memory": 1 << 30}
        assert one["reserved"] == {"cpus": 0.5, "memory": 256 << 20}
        assert one["tasks"] == 2 and one["time"] == 1234.0 and "error" not in one
        assert one["used"] == {"cpus": 0.0, "memory": 4096} and one["containers"] == 1
        assert rows[1]["used"] is None and rows[1]["error"] == "node is down"
        assert rows[1]["reserved"] == {"cpus": 0.0, "memory": 0} and rows[1]["tasks"] == 0
        assert "no node listener" in rows[2]["error"]
        assert rows[3]["error"] == "no answer from its agent within 1s" and rows[3]["used"] is None
        without_ca = await top(None, [up], reserved, 1234.0)
        assert "reaches no agents" in without_ca[0]["error"]
    finally:
        mute.close()
        await streams.close()


async def test_the_route_names_an_unknown_node(api: httpx.AsyncClient) -> None:
    assert (await api.get("/v1/top/nodes")).json() == []
    response = await api.get("/v1/top/nodes", params={"node": ["node-9"]})
    assert response.status_code == 404 and "node 'node-9' not found" in response.json()["error"]
