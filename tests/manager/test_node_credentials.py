"""Secrets treated as secrets: node credentials on every agent route, no join token over HTTP, a private data dir.

A real manager (SQLite store, uvicorn) and plain HTTP calls, as an agent or an intruder would make them.
"""

import re
import stat
import time
from pathlib import Path

import httpx
import pytest
from corral.manager.server import Manager
from corral.manager.settings import ManagerSettings
from tests.tls import admin_headers
from test_api import _free_port

NODE = {"name": "n1", "address": "127.0.0.2", "resources": {"cpus": 2, "memory": 2**30}}


@pytest.fixture
async def api(tmp_path: Path):
    manager = Manager(ManagerSettings(data_dir=tmp_path / "data", listen_port=_free_port(), tls=False, registry_listen=None))
    ctx = await manager.start()
    async with httpx.AsyncClient(base_url=manager.settings.url, headers=admin_headers(manager.settings.data_dir)) as client:
        client.token = ctx.join_token  # type: ignore[attr-defined]
        client.data_dir = tmp_path / "data"  # type: ignore[attr-defined]
        yield client
    await manager.stop()


async def _join(api: httpx.AsyncClient, body: dict = NODE) -> str:
    reply = await api.post("/v1/agent/register", json=body, headers={"Authorization": f"Bearer {api.token}"})  # type: ignore[attr-defined]
    assert reply.status_code == 200, reply.text
    assert reply.json()["node"]["credential"] == ""  # the digest stays in the store
    return str(reply.json()["credential"])


def _as(credential: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {credential}"}


async def test_every_agent_route_in_the_document_refuses_a_call_without_the_credential(api: httpx.AsyncClient) -> None:
    """A route added later is covered too: each /v1/agent operation but registration answers 401 without it."""
    await _join(api)
    document = (await api.get("/openapi.json")).json()
    seen = 0
    for template, operations in document["paths"].items():
        if not template.startswith("/v1/agent/") or template in ("/v1/agent/register", "/v1/agent/ca"):  # the CA is public
            continue
        path = re.sub(r"\{[^}]+\}", "x", template.replace("{node}", "n1"))
        for method in operations:
            seen += 1
            assert "401" in operations[method]["responses"], (method, template)
            for headers in ({}, _as(api.token)):  # type: ignore[attr-defined]
                response = await api.request(method.upper(), path, json={}, headers=headers)
                assert response.status_code == 401, (method, template, response.text)
    assert seen >= 5  # heartbeats, watch, status, and the node's mesh routes


async def test_agent_routes_need_the_nodes_credential(api: httpx.AsyncClient) -> None:
    credential = await _join(api)
    other = await _join(api, {**NODE, "name": "n2", "address": "127.0.0.3"})
    calls = [
        ("GET", "/v1/agent/n1/mesh", None),
        ("PUT", "/v1/agent/n1/mesh/errors", {"errors": {"80/tcp": "fake"}}),
        ("POST", "/v1/agent/heartbeats", {"nodes": ["n1"]}),
        ("POST", "/v1/agent/watch", {"after": {"n1": 0}}),
        ("POST", "/v1/agent/status", {"reports": [{"node": "n1", "task_id": "t1", "state": "running"}]}),
    ]
    for method, path, body in calls:
        for headers in ({}, _as("corral-node-" + "0" * 64), _as(other), _as(api.token)):  # type: ignore[attr-defined]
            refused = await api.request(method, path, json=body, headers=headers)
            assert refused.status_code == 401, (method, path, headers, refused.text)
            assert set(refused.json()) == {"error", "path"} and "credential" in refused.json()["error"]
    assert (await api.get("/v1/services/none/mesh")).status_code == 404  # (nothing was stored by the refused calls)
    for method, path, body in calls:
        allowed = await api.request(method, path, json=body, headers=_as(credential))
        assert allowed.status_code in (200, 404), (method, path, allowed.text)  # 404: task t1 is not there


async def test_a_batched_call_may_not_name_another_nodes_node(api: httpx.AsyncClient) -> None:
    mine = await _join(api)
    await _join(api, {**NODE, "name": "n2", "address": "127.0.0.3"})
    refused = await api.post("/v1/agent/heartbeats", json={"nodes": ["n1", "n2"]}, headers=_as(mine))
    assert refused.status_code == 401 and "n2" in refused.json()["error"]


async def test_a_fleet_shares_one_credential_and_keeps_it_when_joining_again(api: httpx.AsyncClient) -> None:
    first = await _join(api)
    second = await _join(api, {**NODE, "name": "n2", "address": "127.0.0.3", "credential": first})
    assert second == first
    both = await api.post("/v1/agent/heartbeats", json={"nodes": ["n1", "n2"]}, headers=_as(first))
    assert both.status_code == 200 and both.json() == {"unknown": [], "recovered": []}
    bad = await api.post(
        "/v1/agent/register", json={**NODE, "credential": "guessable"}, headers=_as(api.token)  # type: ignore[attr-defined]
    )
    assert bad.status_code == 422 and bad.json()["path"] == "credential"


async def test_an_unknown_node_is_404_at_once_even_on_a_long_poll(api: httpx.AsyncClient) -> None:
    credential = await _join(api)
    began = time.monotonic()
    response = await api.get("/v1/agent/ghost/mesh", params={"wait": 30}, headers=_as(credential))
    assert response.status_code == 404 and "ghost" in response.json()["error"]
    assert time.monotonic() - began < 2
    began = time.monotonic()  # the watch of tasks: nothing to wait for until the node registers
    response = await api.post("/v1/agent/watch", json={"after": {"ghost": 0}, "wait": 30}, headers=_as(credential))
    assert response.status_code == 200 and time.monotonic() - began < 2
    began = time.monotonic()
    watch = await api.post("/v1/agent/watch", json={"after": {"ghost": 0}, "wait": 30}, headers=_as(credential))
    assert watch.status_code == 200 and time.monotonic() - began < 2


async def test_the_join_token_is_not_served_over_http(api: httpx.AsyncClient) -> None:
    response = await api.get("/v1/join-token")
    assert response.status_code == 404 and api.token not in response.text  # type: ignore[attr-defined]


async def test_the_data_dir_and_its_files_are_private(api: httpx.AsyncClient) -> None:
    await _join(api)  # something written: the WAL is there
    data: Path = api.data_dir  # type: ignore[attr-defined]
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    names = {p.name for p in data.iterdir()}
    assert {"store.db", "store.db-wal", "store.db-shm", "join-token"} <= names
    for path in data.iterdir():
        if path.is_file():
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


async def test_an_existing_data_dir_is_made_private(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    data.chmod(0o755)
    (data / "join-token").write_text("corral-" + "ab" * 24 + "\n")
    (data / "join-token").chmod(0o644)
    (data / "manager.log").write_text("")
    (data / "manager.log").chmod(0o664)
    manager = Manager(ManagerSettings(data_dir=data, listen_port=_free_port(), tls=False, registry_listen=None))
    await manager.start()
    try:
        assert stat.S_IMODE(data.stat().st_mode) == 0o700
        for name in ("join-token", "manager.log", "store.db"):
            assert stat.S_IMODE((data / name).stat().st_mode) == 0o600, name
    finally:
        await manager.stop()


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"address": ""}, "address"),
        ({"address": "not-an-ip"}, "address"),
        ({"resources": {"cpus": 2, "memory": False}}, "resources.memory"),
        ({"resources": {"cpus": 2, "memory": "1g"}}, "resources.memory"),
        ({"labels": {"": "x"}}, "labels"),
        ({"labels": {"zone": "a\nb"}}, "labels.zone"),
        ({"labels": {"zo\x00ne": "a"}}, "labels"),
    ],
)
async def test_registration_refuses_bad_input_and_changes_nothing(api: httpx.AsyncClient, change: dict, path: str) -> None:
    reply = await api.post("/v1/agent/register", json={**NODE, **change}, headers=_as(api.token))  # type: ignore[attr-defined]
    assert reply.status_code == 422 and reply.json()["path"].startswith(path), reply.text
    assert (await api.get("/v1/nodes")).json() == []


@pytest.mark.parametrize("labels", [{"": "x"}, {"zone": "east\x1b[31m"}, {"a b": "c"}])
async def test_node_labels_refuse_empty_keys_and_control_characters(api: httpx.AsyncClient, labels: dict) -> None:
    await _join(api)
    reply = await api.patch("/v1/nodes/n1", json={"labels": labels})
    assert reply.status_code == 422 and reply.json()["path"].startswith("labels")
    assert (await api.get("/v1/nodes/n1")).json()["labels"] == {}
    ok = await api.patch("/v1/nodes/n1", json={"labels": {"topology.zone/rack-1": "east 1"}})
    assert ok.status_code == 200 and ok.json()["labels"] == {"topology.zone/rack-1": "east 1"}


@pytest.mark.parametrize("name", [".", ".."])
async def test_service_names_dot_and_dotdot_are_refused(api: httpx.AsyncClient, name: str) -> None:
    compose = f"services:\n  '{name}':\n    image: corral-demo:latest\n"
    reply = await api.post("/v1/stacks/shop/deploy", json={"compose": compose})
    assert reply.status_code == 422 and reply.json()["path"] == f"services.{name}"
    assert (await api.get("/v1/services")).json() == []
    stack = await api.post(f"/v1/stacks/{'%2E' * len(name)}/deploy", json={"compose": "services:\n  web:\n    image: x\n"})
    assert stack.status_code in (404, 422) and set(stack.json()) == {"error", "path"}
    assert (await api.get("/v1/services")).json() == []
