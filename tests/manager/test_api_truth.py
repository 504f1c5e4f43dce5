"""The API answers every error with the one documented body, and its OpenAPI document declares them."""

from pathlib import Path

import httpx
import pytest

from corral.manager.api.openapi import declared_errors
from corral.manager.server import Manager
from corral.manager.settings import ManagerSettings
from tests.tls import admin_headers
from test_api import _free_port


@pytest.fixture
async def api(tmp_path: Path):
    manager = Manager(ManagerSettings(data_dir=tmp_path, listen_port=_free_port(), tls=False, registry_listen=None))
    await manager.start()
    async with httpx.AsyncClient(base_url=manager.settings.url, headers=admin_headers(manager.settings.data_dir)) as client:
        yield client
    await manager.stop()


def _is_error_body(response: httpx.Response) -> bool:
    body = response.json()
    return set(body) == {"error", "path"} and isinstance(body["error"], str) and body["error"] != ""


async def test_unknown_route_is_404_with_the_error_body(api: httpx.AsyncClient) -> None:
    response = await api.get("/v1/nothing-here")
    assert response.status_code == 404 and _is_error_body(response) and "/v1/nothing-here" in response.json()["error"]


async def test_405_names_every_method_of_the_path(api: httpx.AsyncClient) -> None:
    response = await api.put("/v1/nodes/n1", json={})
    assert response.status_code == 405 and _is_error_body(response)
    assert set(response.headers["allow"].replace(" ", "").split(",")) == {"GET", "HEAD", "PATCH", "DELETE"}


async def test_a_body_that_is_not_json_gets_the_error_body(api: httpx.AsyncClient) -> None:
    response = await api.post("/v1/stacks/shop/deploy", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 422 and _is_error_body(response)
    response = await api.post("/v1/services/x/scale", content=b"", headers={"content-type": "application/json"})
    assert response.status_code == 422 and _is_error_body(response)


async def test_the_document_declares_every_error_with_the_error_body(api: httpx.AsyncClient) -> None:
    document = (await api.get("/openapi.json")).json()
    assert "HTTPValidationError" not in document["components"]["schemas"]
    node = document["paths"]["/v1/nodes/{name}"]
    assert {"404", "422", "409"} <= set(node["patch"]["responses"])
    assert {"401", "404", "422"} <= set(document["paths"]["/v1/agent/{node}/mesh"]["get"]["responses"])
    assert "401" in document["paths"]["/v1/agent/heartbeats"]["post"]["responses"]
    assert "requestBody" in document["paths"]["/v1/agent/heartbeats"]["post"]  # read by the route itself, still documented
    assert "404" in document["paths"]["/v1/images"]["get"]["responses"]  # a manager without a registry
    for operations in document["paths"].values():
        for operation in operations.values():
            for status, response in operation["responses"].items():
                if status.startswith(("4", "5")):
                    assert response["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorBody"}


def test_errors_follow_from_an_operations_shape() -> None:
    """What a route added later gets without a word."""
    assert declared_errors("get", {"responses": {}}) == set()
    assert declared_errors("get", {"parameters": [{"in": "path", "name": "x"}]}) == {404, 422}
    assert declared_errors("post", {"requestBody": {}, "security": [{"HTTPBearer": []}]}) == {400, 401, 403, 409, 413, 422, 503, 507}
