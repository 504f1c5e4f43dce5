"""The rollout routes of a real manager (SQLite store, uvicorn), without agents:
POST /v1/services/{name}/update, /rollback and /promote."""

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
    await manager.start()
    async with httpx.AsyncClient(base_url=manager.settings.url, headers=admin_headers(manager.settings.data_dir)) as client:
        await client.post("/v1/stacks/shop/deploy", json={"compose": WEB})
        yield client
    await manager.stop()


WEB = """
services:
  web:
    image: corral-demo:latest
    environment: {A: "1"}
    deploy: {replicas: 2, update_config: {parallelism: 2, order: start-first}}
"""


async def inspect(api: httpx.AsyncClient) -> dict:
    response = await api.get("/v1/services/shop_web")
    assert response.status_code == 200
    return response.json()


async def test_update_makes_a_new_version_and_keeps_the_previous_spec(api: httpx.AsyncClient) -> None:
    response = await api.post("/v1/services/shop_web/update", json={"image": "corral-demo:v2", "env": {"B": "2"}})
    assert response.status_code == 200
    service = await inspect(api)
    assert service["version"] == 2 and service["image"] == "corral-demo:v2"
    assert service["spec"]["environment"] == {"A": "1", "B": "2"}
    assert service["previous_spec"]["image"] == "corral-demo:latest"
    assert service["update_status"]["state"] == "updating"
    assert service["spec"]["update_config"]["order"] == "start-first"  # untouched by the patch


async def test_replicas_alone_make_no_new_version(api: httpx.AsyncClient) -> None:
    await api.post("/v1/services/shop_web/update", json={"replicas": 4})
    service = await inspect(api)
    assert service["version"] == 1 and service["replicas"] == 4 and service["update_status"] is None


async def test_same_values_change_nothing(api: httpx.AsyncClient) -> None:
    before = await inspect(api)
    await api.post("/v1/services/shop_web/update", json={"image": "corral-demo:latest", "env": {"A": "1"}})
    assert await inspect(api) == before


@pytest.mark.parametrize(
    ("body", "path", "words"),
    [
        ({"image": ""}, "image", "at least 1 character"),
        ({"replicas": -1}, "replicas", "greater than or equal to 0"),
        ({"env": {"A=B": "x"}}, "env", "invalid variable name"),
        ({"update_config": {"parallelism": -1}}, "update_config.parallelism", "greater than or equal to 0"),
        ({"update_config": {"order": "sideways"}}, "update_config.order", "stop-first"),
        ({"rollback_config": {"nope": 1}}, "rollback_config.nope", "Extra inputs"),
        ({"imagine": "x"}, "imagine", "Extra inputs"),
    ],
)
async def test_bad_update_names_the_field_and_changes_nothing(api: httpx.AsyncClient, body: dict, path: str, words: str) -> None:
    before = await inspect(api)
    response = await api.post("/v1/services/shop_web/update", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["path"] == path and words in response.json()["error"]
    assert await inspect(api) == before


async def test_update_of_an_unknown_service_is_404(api: httpx.AsyncClient) -> None:
    for route in ("update", "rollback", "promote"):
        response = await api.post(f"/v1/services/nosuch/{route}", json={"image": "x"} if route == "update" else None)
        assert response.status_code == 404 and "not found" in response.json()["error"]


async def test_rollback_returns_to_the_previous_spec(api: httpx.AsyncClient) -> None:
    refused = await api.post("/v1/services/shop_web/rollback")
    assert refused.status_code == 422 and "no previous spec" in refused.json()["error"]
    assert (await inspect(api))["version"] == 1

    await api.post("/v1/services/shop_web/update", json={"image": "corral-demo:v2"})
    response = await api.post("/v1/services/shop_web/rollback")
    assert response.status_code == 200
    service = await inspect(api)
    assert service["image"] == "corral-demo:latest" and service["version"] == 3
    assert service["previous_spec"]["image"] == "corral-demo:v2"
    assert service["update_status"]["state"] in ("rollback_started", "rollback_completed")


async def test_promote_lifts_the_canary(api: httpx.AsyncClient) -> None:
    refused = await api.post("/v1/services/shop_web/promote")
    assert refused.status_code == 422 and "no canary" in refused.json()["error"]

    await api.post("/v1/services/shop_web/update", json={"image": "corral-demo:v2", "canary": 1})
    assert (await inspect(api))["spec"]["canary"] == 1
    response = await api.post("/v1/services/shop_web/promote")
    assert response.status_code == 200
    service = await inspect(api)
    assert service["spec"]["canary"] is None and service["version"] == 2


async def test_global_service_cannot_take_replicas(api: httpx.AsyncClient) -> None:
    text = "services:\n  agent:\n    image: corral-demo:latest\n    deploy: {mode: global}\n"
    await api.post("/v1/stacks/ops/deploy", json={"compose": text})
    response = await api.post("/v1/services/ops_agent/update", json={"replicas": 3})
    assert response.status_code == 422 and "is global" in response.json()["error"]
