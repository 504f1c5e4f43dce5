"""PlainClient (corral/client/plain.py), the CLI's standard-library client for one-off listings, against a real
manager over HTTPS (in process, SQLite) and, for failover, the tiny HTTP servers of test_manager_list: it pages as
ManagerClient pages, over one TLS connection, and fails as ManagerClient fails."""

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from corral.client import ApiError, ManagerClient, PlainClient
from corral.client.plain import query_string
from corral.manager.server import Manager
from corral.manager.settings import ManagerSettings
from corral.pki import create_ca
from corral.pki.tls import client_context
from tests.client.test_manager_list import Server, _closed_port, servers  # noqa: F401  (servers: a fixture)
from tests.tls import admin_token, verify

T = TypeVar("T")


@pytest.fixture
async def manager(tmp_path: Path) -> AsyncIterator[Manager]:
    manager = Manager(ManagerSettings(data_dir=tmp_path / "data", listen_port=_closed_port(), registry_listen=None))
    await manager.start()
    yield manager
    await manager.stop()


async def blocking(fn: Callable[[], T]) -> T:
    """Run the blocking client in a thread while the manager (or the test servers) answer on this loop."""
    return await asyncio.to_thread(fn)


def _plain(manager: Manager, **options: Any) -> PlainClient:
    data = manager.settings.data_dir
    return PlainClient(manager.settings.url, **{"token": admin_token(data), "verify": verify(data), **options})


async def test_a_listing_comes_page_by_page_over_one_tls_connection(manager: Manager) -> None:
    data, context = manager.settings.data_dir, manager.context
    assert context is not None
    async with httpx.AsyncClient(base_url=manager.settings.url, verify=verify(data)) as api:
        for i in range(5):
            body = {"name": f"n{i}", "address": "127.0.0.2", "resources": {"cpus": 2, "memory": 2**30}}
            registered = await api.post("/v1/agent/register", json=body, headers={"Authorization": f"Bearer {context.join_token}"})
            assert registered.status_code == 200, registered.text

    def listing() -> tuple[list[list[str]], set[int]]:
        pages, connections = [], set()
        with _plain(manager) as client:
            for page in client.pages("/v1/nodes", limit=2):
                pages.append([node["name"] for node in page])
                connections.add(id(client._connection))
        return pages, connections

    pages, connections = await blocking(listing)
    assert pages == [["n0", "n1"], ["n2", "n3"], ["n4"]]
    assert len(connections) == 1, "every page over the first page's connection: one TLS handshake"
    async with ManagerClient(manager.settings.url, token=admin_token(data), verify=verify(data)) as client:
        assert [[node["name"] for node in page] async for page in client.pages("/v1/nodes", limit=2)] == pages
        whole = await client.get("/v1/nodes")
    assert await blocking(lambda: _plain(manager).get("/v1/nodes")) == whole


async def test_errors_read_as_the_async_clients_do(manager: Manager, tmp_path: Path) -> None:
    data = manager.settings.data_dir

    async def both(path: str, **options: Any) -> tuple[ApiError, ApiError]:
        with pytest.raises(ApiError) as plain:
            await blocking(lambda: _plain(manager, **options).get(path))
        async with ManagerClient(manager.settings.url, **{"token": admin_token(data), "verify": verify(data), **options}) as client:
            with pytest.raises(ApiError) as async_:
                await client.get(path)
        return plain.value, async_.value

    plain, async_ = await both("/v1/services/nope")
    assert (plain.status, str(plain), plain.path) == (async_.status, str(async_), async_.path) and plain.status == 404
    assert "nope" in str(plain)
    plain, async_ = await both("/v1/services", token="not-a-token")
    assert (plain.status, str(plain)) == (async_.status, str(async_)) and plain.status == 401

    other_ca = client_context(create_ca(time.time(), "another cluster").certificate_pem)
    plain, async_ = await both("/v1/services", verify=other_ca)
    for err in (plain, async_):
        assert err.status == 0 and "CERTIFICATE_VERIFY_FAILED" in str(err) and "CORRAL_CA" in str(err), str(err)
        assert f"cannot reach the manager at {manager.settings.url}" in str(err)

    with pytest.raises(ApiError, match="neither https:// nor http://"):
        PlainClient("ftp://127.0.0.1:1").get("/v1/nodes")


async def test_the_call_finds_the_leader_past_a_dead_manager_and_a_follower(servers: tuple[Server, Server]) -> None:  # noqa: F811
    leader, follower = servers
    dead = f"http://127.0.0.1:{_closed_port()}"

    def calls() -> tuple[Any, Any, list[str], str]:
        with PlainClient(f"{dead}, {follower.url}") as client:
            first = client.get("/v1/agent/watch")
            second = client.get("/v1/nodes")
            return first, second, client.urls, client.url

    first, second, urls, now = await blocking(calls)
    assert first == second == {"ok": True}
    assert urls == [dead, follower.url, leader.url] and now == leader.url
    assert follower.paths == ["/v1/agent/watch"] and leader.paths == ["/v1/agent/watch", "/v1/nodes"]

    everyone_dead = ",".join(f"http://127.0.0.1:{_closed_port()}" for _ in range(2))
    with pytest.raises(ApiError, match="cannot reach the manager at http://127.0.0.1:.*refused"):
        await blocking(lambda: PlainClient(everyone_dead).get("/v1/nodes"))


def test_the_query_is_the_one_httpx_sends() -> None:
    params: dict[str, Any] = {"stack": "web app", "watch": True, "all": False, "limit": 500, "continue": None}
    assert query_string(params) == "stack=web+app&watch=true&all=false&limit=500"
    assert httpx.QueryParams({k: v for k, v in params.items() if v is not None}) == httpx.QueryParams(query_string(params))
