"""The manager's `corral exec -i/-t` WebSocket: the same bearer tokens as every route, admin only, refusals as HTTP answers.

A real manager (SQLite store, uvicorn), reached with the CLI's own client (`ManagerClient.session`).
"""

import importlib
import pkgutil
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import APIRouter
from starlette.routing import WebSocketRoute

from corral.client import ApiError, ManagerClient
from corral.manager.access.roles import Role, required_role
from corral.manager.server import Manager
from corral.manager.settings import ManagerSettings
from tests.tls import admin_headers
from test_api import _free_port

PATH = "/v1/tasks/{task}/exec/session"


@pytest.fixture
async def manager(tmp_path: Path) -> AsyncIterator[tuple[Manager, dict[str, str]]]:
    manager = Manager(ManagerSettings(data_dir=tmp_path, listen_port=_free_port(), tls=False, registry_listen=None))
    await manager.start()
    tokens = {"admin": admin_headers(tmp_path)["Authorization"].removeprefix("Bearer ")}
    try:
        async with httpx.AsyncClient(base_url=manager.settings.url, timeout=10) as client:
            for role in ("viewer", "deployer"):
                made = await client.post("/v1/tokens", json={"name": f"a-{role}", "role": role}, headers=admin_headers(tmp_path))
                assert made.status_code == 201, made.text
                tokens[role] = made.json()["token"]
        yield manager, tokens
    finally:
        await manager.stop()


async def _refusal(manager: Manager, token: str | None, task: str = "web.1") -> ApiError:
    async with ManagerClient(manager.settings.url, token=token) as client:
        with pytest.raises(ApiError) as refused:
            await client.session(PATH.format(task=task))
    return refused.value


async def test_a_session_needs_an_admin_token(manager: tuple[Manager, dict[str, str]]) -> None:
    running, tokens = manager
    for token in (None, "not-a-token"):
        err = await _refusal(running, token)
        assert err.status == 401 and "admin" in str(err), err
    for role in ("viewer", "deployer"):
        err = await _refusal(running, tokens[role])
        assert err.status == 403 and f"needs the admin role; this token has {role}" in str(err), err
    err = await _refusal(running, tokens["admin"])  # let through: then the task is looked for
    assert err.status == 404 and "web.1" in str(err), err


def test_every_websocket_route_is_for_admins() -> None:
    """WebSocket routes are not in the OpenAPI document test_api_auth walks: the routers of corral.manager.api are."""
    import corral.manager.api as api

    sockets = []
    for module in pkgutil.iter_modules(api.__path__):
        for value in vars(importlib.import_module(f"corral.manager.api.{module.name}")).values():
            if isinstance(value, APIRouter):
                sockets += [value.prefix + route.path for route in value.routes if isinstance(route, WebSocketRoute)]
    assert PATH in sockets
    assert all(required_role("WEBSOCKET", path) == Role.admin for path in sockets)
