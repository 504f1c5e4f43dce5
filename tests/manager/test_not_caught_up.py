"""A write that is stored but not yet seen by the manager's cache answers 503 saying so, never 500."""

import asyncio
import socket
from pathlib import Path

import httpx
import pytest

from corral.manager import cache as cache_module
from corral.manager import keys
from corral.manager.server import Manager
from corral.manager.settings import ManagerSettings
from tests.tls import admin_headers

WEB = "services:\n  web:\n    image: corral-demo:latest\n    deploy: {replicas: 2}\n"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_a_stored_write_the_cache_has_not_seen_is_a_clear_503(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    manager = Manager(ManagerSettings(data_dir=tmp_path, listen_port=_free_port(), tls=False))
    ctx = await manager.start()
    try:
        async with httpx.AsyncClient(base_url=manager.settings.url, headers=admin_headers(manager.settings.data_dir)) as api:
            assert (await api.post("/v1/stacks/shop/deploy", json={"compose": WEB})).status_code == 200
            # The cache stops following the store (as when it lags far behind).
            [following] = [task for task in manager._tasks if task.get_name() == "cache"]
            following.cancel()
            await asyncio.gather(following, return_exceptions=True)
            monkeypatch.setattr(cache_module, "CATCH_UP_TIMEOUT", 0.2)

            response = await api.post("/v1/services/shop_web/scale", json={"replicas": 5})

            assert response.status_code == 503, response.text
            body = response.json()
            assert body["path"] is None
            assert body["error"].startswith("the change is stored (revision ")
            assert "has not caught up yet; retry the read" in body["error"]
            assert response.headers["retry-after"] == "1"
            stored = await ctx.store.get(keys.service_key("shop_web"))
            assert stored is not None and stored.value["spec"]["replicas"] == 5  # durable all the same
            assert f"revision {stored.mod_revision})" in body["error"]
    finally:
        await manager.stop()
