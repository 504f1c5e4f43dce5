"""A fleet of hollow nodes against a real manager (SQLite store, uvicorn, HTTP): the whole agent protocol."""

import asyncio
import socket
from collections import Counter
from pathlib import Path

import httpx

from tests.tls import admin_headers, verify
import pytest

from corral.agent.daemon import EngineFactory
from corral.agent.engines.hollow import HollowTiming
from corral.agent.fleet import Fleet, FleetSettings
from corral.agent.settings import AgentSettings
from corral.manager.server import Manager
from corral.manager.settings import ManagerSettings
from corral.model import Resources

NODES = 50
TASKS = 500
COMPOSE = f"""
services:
  web:
    image: corral-demo:latest
    ports: ["8080"]
    deploy: {{replicas: {TASKS // 2}, resources: {{reservations: {{cpus: "0.1"}}}}}}
  worker:
    image: corral-demo:latest
    deploy: {{replicas: {TASKS // 2}}}
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _wait_for(check, timeout: float, what: str):  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.2)


@pytest.fixture
async def cluster(tmp_path: Path):
    manager = Manager(ManagerSettings(data_dir=tmp_path, listen_port=_free_port(), node_lease=3.0))
    ctx = await manager.start()
    template = AgentSettings(
        manager_url=manager.settings.url, name="x", address="127.0.0.1", token=ctx.join_token, engine="hollow",
        resources=Resources(cpus=4, memory=8 << 30), poll_interval=10.0,
    )
    fleet = Fleet(template, FleetSettings(count=NODES, name_prefix="hollow-t-"), EngineFactory("hollow", HollowTiming(0.01, 0.05)))
    await fleet.start()
    async with httpx.AsyncClient(base_url=manager.settings.url, timeout=30, verify=verify(tmp_path), headers=admin_headers(tmp_path)) as api:
        yield api, fleet
    await fleet.stop()
    await manager.stop()


async def _tasks(api: httpx.AsyncClient) -> list[dict]:
    return (await api.get("/v1/services/app_web/tasks")).json() + (await api.get("/v1/services/app_worker/tasks")).json()


async def test_a_fleet_runs_a_deploy_and_a_dead_node_is_replaced(cluster) -> None:  # type: ignore[no-untyped-def]
    api, fleet = cluster
    nodes = (await api.get("/v1/nodes")).json()
    assert len(nodes) == NODES and all(n["state"] == "ready" and n["engine"] == "hollow" for n in nodes)

    assert (await api.post("/v1/stacks/app/deploy", json={"compose": COMPOSE})).status_code == 200

    async def all_running() -> list[dict] | None:
        tasks = [t for t in await _tasks(api) if t["desired_state"] == "running"]
        return tasks if len(tasks) == TASKS and all(t["state"] == "running" for t in tasks) else None

    tasks = await _wait_for(all_running, 60, f"{TASKS} running tasks")
    per_node = Counter(t["node"] for t in tasks)
    assert len(per_node) == NODES and max(per_node.values()) - min(per_node.values()) <= 2  # spread
    web = [t for t in tasks if t["service"] == "app_web"]
    assert all(t["address"].startswith("127.0.0.1:") for t in web)  # the hollow engine published the port
    # Every node's engine holds exactly the containers of the tasks placed on it.
    for name, count in per_node.items():
        assert len(await fleet.agent(name).engine.list()) == count

    victim = "hollow-t-7"
    lost_ids = {t["id"] for t in tasks if t["node"] == victim}
    await fleet.stop_node(victim)

    async def replaced() -> list[dict] | None:
        tasks = await _tasks(api)
        live = [t for t in tasks if t["desired_state"] == "running"]
        old = [t for t in tasks if t["id"] in lost_ids]
        done = (
            len(live) == TASKS
            and all(t["state"] == "running" and t["node"] != victim for t in live)
            and all(t["state"] == "lost" for t in old)
        )
        return tasks if done else None

    await _wait_for(replaced, 60, f"the tasks of {victim} to be replaced")
    [node] = [n for n in (await api.get("/v1/nodes")).json() if n["name"] == victim]
    assert node["state"] == "down"
