"""Requests stay on the event loop: no dependency makes a hop to FastAPI's thread pool.

A plain `def` dependency runs in the thread pool: during a large deploy each hop put the
request back in the event loop's queue, behind thousands of nodes' work, twice
(docs/performance.md, round two: the event loop). The node credentials' digests, which
the batched agent routes check, are remade when a node changes, not at every revision,
and still refuse a credential no registered node holds any more.

A real manager (SQLite store, uvicorn) over plain HTTP on loopback.
"""

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import fastapi.dependencies.utils
import httpx
import pytest

from corral.manager.server import Manager
from corral.manager.settings import ManagerSettings
from tests.tls import admin_headers
from test_api import _free_port

NODE = {"name": "n1", "address": "127.0.0.2", "resources": {"cpus": 2, "memory": 2**30}}


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    manager = Manager(ManagerSettings(data_dir=tmp_path / "data", listen_port=_free_port(), tls=False, registry_listen=None))
    ctx = await manager.start()
    async with httpx.AsyncClient(base_url=manager.settings.url, headers=admin_headers(manager.settings.data_dir)) as client:
        client.token = ctx.join_token  # type: ignore[attr-defined]
        yield client
    await manager.stop()


async def _join(api: httpx.AsyncClient, name: str, address: str) -> str:
    body = {**NODE, "name": name, "address": address}
    reply = await api.post("/v1/agent/register", json=body, headers={"Authorization": f"Bearer {api.token}"})  # type: ignore[attr-defined]
    assert reply.status_code == 200, reply.text
    return str(reply.json()["credential"])


async def test_users_and_agents_requests_make_no_thread_pool_hop(api: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch) -> None:
    credential = await _join(api, "n1", "127.0.0.2")
    hops: list[str] = []
    original = getattr(fastapi.dependencies.utils, "run_in_threadpool")  # what FastAPI calls a plain `def` dependency with

    async def counted(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        hops.append(getattr(func, "__name__", repr(func)))
        return await original(func, *args, **kwargs)

    monkeypatch.setattr(fastapi.dependencies.utils, "run_in_threadpool", counted)
    as_node = {"Authorization": f"Bearer {credential}"}
    calls = [
        ("GET", "/v1/info", None, {}),
        ("GET", "/v1/nodes", None, {}),
        ("GET", "/v1/nodes?limit=1", None, {}),
        ("GET", "/v1/services?limit=1", None, {}),
        ("GET", "/v1/tasks?limit=1", None, {}),
        ("POST", "/v1/agent/heartbeats", {"nodes": ["n1"]}, as_node),
        ("POST", "/v1/agent/watch", {"after": {"n1": 0}}, as_node),
        ("POST", "/v1/agent/status", {"reports": [{"node": "n1", "task_id": "t1", "state": "running"}]}, as_node),
    ]
    for method, path, body, headers in calls:
        reply = await api.request(method, path, json=body, headers=headers)
        assert reply.status_code == 200, (path, reply.text)
    assert hops == []


async def test_a_credential_no_registered_node_holds_is_refused_once_its_node_is_removed(api: httpx.AsyncClient) -> None:
    gone = await _join(api, "n1", "127.0.0.2")
    kept = await _join(api, "n2", "127.0.0.3")
    for credential, node in ((gone, "n1"), (kept, "n2")):  # both known: the digests are made once here
        reply = await api.post("/v1/agent/heartbeats", json={"nodes": [node]}, headers={"Authorization": f"Bearer {credential}"})
        assert reply.status_code == 200, reply.text
    assert (await api.delete("/v1/nodes/n1", params={"force": "true"})).status_code == 200
    refused = await api.post("/v1/agent/heartbeats", json={"nodes": ["n1"]}, headers={"Authorization": f"Bearer {gone}"})
    assert refused.status_code == 401 and "no registered node holds it" in refused.json()["error"]
    still = await api.post("/v1/agent/heartbeats", json={"nodes": ["n2"]}, headers={"Authorization": f"Bearer {kept}"})
    assert still.status_code == 200, still.text
