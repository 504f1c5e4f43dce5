"""The HTTP API of a real manager (SQLite store, uvicorn) without agents."""

import asyncio
import socket
from pathlib import Path

import httpx
import pytest

from corral.manager.server import Manager
from corral.manager.settings import ManagerSettings
from tests.tls import admin_headers


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def api(tmp_path: Path):
    manager = Manager(ManagerSettings(data_dir=tmp_path, listen_port=_free_port(), tls=False))
    ctx = await manager.start()
    async with httpx.AsyncClient(base_url=manager.settings.url, headers=admin_headers(manager.settings.data_dir)) as client:
        client.token = ctx.join_token  # type: ignore[attr-defined]
        yield client
    await manager.stop()


WEB = "services:\n  web:\n    image: corral-demo:latest\n    deploy: {replicas: 2}\n"


async def test_openapi_documents_the_routes(api: httpx.AsyncClient) -> None:
    paths = (await api.get("/openapi.json")).json()["paths"]
    assert {"/v1/stacks/{stack}/deploy", "/v1/services", "/v1/nodes", "/v1/events", "/v1/agent/register"} <= set(paths)


async def test_bad_compose_is_422_with_path_and_changes_nothing(api: httpx.AsyncClient) -> None:
    bad = WEB.replace("replicas: 2", "replicas: many")
    response = await api.post("/v1/stacks/shop/deploy", json={"compose": bad})
    assert response.status_code == 422
    assert response.json()["path"] == "services.web.deploy.replicas"
    assert (await api.get("/v1/services")).json() == []


async def test_bad_body_names_the_field(api: httpx.AsyncClient) -> None:
    response = await api.post("/v1/stacks/shop/deploy", json={"compose": 5})
    assert response.status_code == 422 and "compose" in response.json()["error"]
    response = await api.post("/v1/services/none/scale", json={"replicas": -1})
    assert response.status_code == 422 and "replicas" in response.json()["error"]


async def test_deploy_creates_tasks_that_wait_for_nodes(api: httpx.AsyncClient) -> None:
    dry = (await api.post("/v1/stacks/shop/deploy", json={"compose": WEB, "dry_run": True})).json()
    assert dry["created"] == ["shop_web"] and (await api.get("/v1/services")).json() == []
    done = (await api.post("/v1/stacks/shop/deploy", json={"compose": WEB})).json()
    assert done["created"] == ["shop_web"]
    [service] = (await api.get("/v1/services")).json()
    assert service["name"] == "shop_web" and service["replicas"] == 2 and service["running"] == 0
    for _ in range(50):
        tasks = (await api.get("/v1/services/shop_web/tasks")).json()
        if len(tasks) == 2 and all(t["state"] == "pending" for t in tasks):
            break
        await asyncio.sleep(0.1)
    assert sorted(t["slot"] for t in tasks) == [1, 2]
    assert all(t["error"] == "no nodes in the cluster" for t in tasks)


async def test_agent_calls_need_the_join_token(api: httpx.AsyncClient) -> None:
    body = {"name": "n1", "address": "127.0.0.2", "resources": {"cpus": 2, "memory": 2**30}}
    missing = await api.post("/v1/agent/register", json=body, headers={"Authorization": ""})  # not the admin token the client sends
    assert missing.status_code == 401 and "missing join token" in missing.json()["error"]
    wrong = await api.post("/v1/agent/register", json=body, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and "wrong join token" in wrong.json()["error"]
    assert (await api.get("/v1/nodes")).json() == []
    ok = await api.post("/v1/agent/register", json=body, headers={"Authorization": f"Bearer {api.token}"})  # type: ignore[attr-defined]
    assert ok.status_code == 200
    [node] = (await api.get("/v1/nodes")).json()
    assert node["name"] == "n1" and node["state"] == "ready" and node["availability"] == "active"
    drained = await api.patch("/v1/nodes/n1", json={"availability": "drain"})
    assert drained.json()["availability"] == "drain"
    bad = await api.patch("/v1/nodes/n1", json={"availability": "sideways"})
    assert bad.status_code == 422 and (await api.get("/v1/nodes/n1")).json()["availability"] == "drain"


async def test_batched_agent_calls_refuse_bad_bodies_by_field(api: httpx.AsyncClient) -> None:
    body = {"name": "n0", "address": "127.0.0.2", "resources": {"cpus": 2, "memory": 2**30}}
    joined = await api.post("/v1/agent/register", json=body, headers={"Authorization": f"Bearer {api.token}"})  # type: ignore[attr-defined]
    auth = {"Authorization": f"Bearer {joined.json()['credential']}"}
    bad = await api.post("/v1/agent/status", json={"reports": [{"node": "n1", "state": "running"}]}, headers=auth)
    assert bad.status_code == 422 and "task_id" in bad.json()["error"]
    bad = await api.post("/v1/agent/watch", content=b"{not json", headers={**auth, "content-type": "application/json"})
    assert bad.status_code == 422
    bad = await api.post("/v1/agent/heartbeats", json={"nodes": "n1"}, headers=auth)
    assert bad.status_code == 422 and "nodes" in bad.json()["error"]
    missing = await api.post("/v1/agent/status", json={"reports": []})
    assert missing.status_code == 401  # the token is checked before the body is read
    unknown = await api.post("/v1/agent/status", headers=auth, json={"reports": [{"node": "n1", "task_id": "t9", "state": "running"}]})
    assert unknown.status_code == 200 and unknown.json()["results"][0]["status"] == 404
