"""Paged lists (`limit`, `continue`; corral/manager/api/pages.py) against a real manager (SQLite store, uvicorn).

The contract: the pages of one listing cover every object that existed at the first page's revision
exactly once, in the unpaged order (tasks: the manager's own order), as it was at that revision, while other requests write; a bad
`limit` or `continue` is a 400 naming it; an expired listing is a 410.
"""

import asyncio
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from corral.manager import keys
from corral.manager.api.pages import MAX_LIMIT, Listings, PageRequest, Token
from corral.model.paging import CONTINUE_HEADER, REMAINING_HEADER, REVISION_HEADER
from corral.manager.context import ManagerContext
from corral.manager.server import Manager
from corral.manager.settings import ManagerSettings
from corral.model.errors import BadParameter, ListingExpired
from corral.store import Store
from tests.tls import admin_headers


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def manager(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, ManagerContext]]:
    # A long lease: no node goes down (a write of the health loop) while a test pages.
    manager = Manager(ManagerSettings(data_dir=tmp_path, listen_port=_free_port(), tls=False, node_lease=600.0))
    ctx = await manager.start()
    try:
        async with httpx.AsyncClient(base_url=manager.settings.url, headers=admin_headers(manager.settings.data_dir)) as client:
            yield client, ctx
    finally:
        await manager.stop()


async def _register(api: httpx.AsyncClient, ctx: ManagerContext, *names: str) -> None:
    for name in names:
        body = {"name": name, "address": "127.0.0.2", "resources": {"cpus": 2, "memory": 2**30}}
        answer = await api.post("/v1/agent/register", json=body, headers={"Authorization": f"Bearer {ctx.join_token}"})
        assert answer.status_code == 200, answer.text


async def _state_at(store: Store, prefix: str, revision: int) -> dict[str, dict[str, Any]]:
    """The objects under prefix at `revision`, replayed from the store's history: an oracle independent of the cache."""
    state: dict[str, dict[str, Any]] = {}
    if revision == 0:
        return state
    async for event in store.watch(prefix, 0):
        if event.revision > revision:
            break
        if event.value is None:
            state.pop(event.key, None)
        else:
            state[event.key] = event.value
        if event.revision == revision:
            break
    return state


async def _walk(api: httpx.AsyncClient, path: str, limit: int, between: Any = None, **params: Any) -> tuple[list[dict[str, Any]], int, int]:
    """Every page of a listing (calling `between()` after each page): the items, the revision, the number of pages."""
    items: list[dict[str, Any]] = []
    token, pages, revision = None, 0, None
    while True:
        query = {**params, "limit": limit, **({"continue": token} if token else {})}
        answer = await api.get(path, params=query)
        assert answer.status_code == 200, answer.text
        pages += 1
        page_revision = int(answer.headers[REVISION_HEADER])
        assert revision in (None, page_revision), "every page reflects the first page's revision"
        revision = page_revision
        items += answer.json()
        assert len(answer.json()) <= limit
        token = answer.headers.get(CONTINUE_HEADER)
        assert int(answer.headers[REMAINING_HEADER]) >= (1 if token else 0)
        if token is None:
            assert answer.headers[REMAINING_HEADER] == "0"
            assert revision is not None
            return items, revision, pages
        if between is not None:
            await between()


async def test_pages_cover_every_item_once_in_order_at_the_first_pages_revision_under_writes(
    manager: tuple[httpx.AsyncClient, ManagerContext],
) -> None:
    api, ctx = manager
    await _register(api, ctx, *(f"n{i:02d}" for i in range(23)))
    compose = "services:\n" + "".join(f"  s{i}:\n    image: corral-demo:latest\n    deploy: {{replicas: 3}}\n" for i in range(9))
    assert (await api.post("/v1/stacks/shop/deploy", json={"compose": compose})).status_code == 200
    assert (await api.get("/v1/services/shop_s0/tasks", params={"limit": 1})).status_code == 200  # the stack is in the cache

    # Unpaged answers keep their shape (a JSON array of everything) and carry no paging headers.
    whole = await api.get("/v1/nodes")
    assert len(whole.json()) == 23 and CONTINUE_HEADER not in whole.headers and REVISION_HEADER not in whole.headers

    writes = iter(range(1000))

    async def write() -> None:
        """Between two pages: a new node before and after the cursor, a changed one, a new service, a scale."""
        n = next(writes)
        await _register(api, ctx, f"n{n:02d}a")  # sorts among the names already listed and those to come
        await _register(api, ctx, f"z{n:02d}")  # sorts after every page so far
        assert (await api.patch("/v1/nodes/n22", json={"labels": {"written": str(n)}})).status_code == 200
        more = f"services:\n  late{n}:\n    image: corral-demo:latest\n"
        assert (await api.post(f"/v1/stacks/more{n}/deploy", json={"compose": more})).status_code == 200
        assert (await api.post("/v1/services/shop_s1/scale", json={"replicas": 3 + n})).status_code == 200

    for path, prefix, key in (
        ("/v1/nodes", keys.NODES, "name"),
        ("/v1/services", keys.SERVICES, "name"),
        ("/v1/tasks", keys.TASKS, "id"),
        ("/v1/services/shop_s1/tasks", keys.TASKS, "id"),
    ):
        items, revision, pages = await _walk(api, path, 4, write)
        assert pages >= 3, path
        listed = [item[key] for item in items]
        assert len(listed) == len(set(listed)), f"{path}: an item listed twice"
        at = {k: v for k, v in (await _state_at(ctx.store, prefix, revision)).items() if "/" not in k.removeprefix(prefix)}
        if path == "/v1/services/shop_s1/tasks":
            at = {k: v for k, v in at.items() if v["service"] == "shop_s1"}
        assert set(listed) == {k.removeprefix(prefix) for k in at}, f"{path}: the pages are not the objects at revision {revision}"
        if path == "/v1/nodes":
            assert listed == sorted(listed)
            n22 = next(item for item in items if item["name"] == "n22")
            assert n22["labels"] == at[keys.node_key("n22")]["labels"], "a node is listed as it was at the first page's revision"
        if path == "/v1/services":
            assert listed == sorted(listed)
            s1 = next(item for item in items if item["name"] == "shop_s1")
            assert s1["replicas"] == at[keys.SERVICES + "shop_s1"]["spec"]["replicas"]

    # Without writes, the pages join into the unpaged answer (tasks: once the controller has settled them; paged
    # task lists come in the manager's own order, unsorted).
    for path in ("/v1/nodes", "/v1/services", "/v1/tasks", "/v1/services/shop_s1/tasks"):
        for _ in range(50):
            before = (await api.get(path)).json()
            items, _, _ = await _walk(api, path, 5)
            if "tasks" in path:
                items.sort(key=lambda t: t["id"])
                before.sort(key=lambda t: t["id"])
            if items == before:
                break
            await asyncio.sleep(0.2)
        assert items == before, path


async def test_bad_limit_or_token_is_400_naming_it_and_an_expired_listing_is_410(
    manager: tuple[httpx.AsyncClient, ManagerContext],
) -> None:
    api, ctx = manager
    await _register(api, ctx, *(f"n{i}" for i in range(5)))
    for value in ("0", "-1", "ten", str(MAX_LIMIT + 1), "1.5"):
        answer = await api.get("/v1/nodes", params={"limit": value})
        assert answer.status_code == 400 and answer.json()["path"] == "limit", (value, answer.text)
        assert value in answer.json()["error"] or "out of range" in answer.json()["error"]
    for value in ("garbage", "", Token("x", 1, 0).encode(), "W10"):
        answer = await api.get("/v1/nodes", params={"limit": 2, "continue": value})
        assert answer.status_code == 400 and answer.json()["path"] == "continue", (value, answer.text)
    first = await api.get("/v1/nodes", params={"limit": 2})
    token = first.headers[CONTINUE_HEADER]
    other = await api.get("/v1/services", params={"limit": 2, "continue": token})
    assert other.status_code == 400 and "another listing" in other.json()["error"]
    filtered = await api.get("/v1/tasks", params={"limit": 2, "continue": token, "service": "x"})
    assert filtered.status_code == 400 and filtered.json()["path"] == "continue"
    volumes = await api.get("/v1/volumes", params={"limit": 2})  # none: one empty page
    assert volumes.json() == [] and volumes.headers[REMAINING_HEADER] == "0" and CONTINUE_HEADER not in volumes.headers
    # `continue` alone pages by the default limit.
    assert len((await api.get("/v1/nodes", params={"continue": token})).json()) == 3
    # A manager restart (or another manager) does not hold the snapshot: 410, and the listing starts again.
    stale = Token(Token.decode(token).listing, Token.decode(token).revision + 1000, 2).encode()
    gone = await api.get("/v1/nodes", params={"limit": 2, "continue": stale})
    assert gone.status_code == 410 and "list again" in gone.json()["error"]


def _request(limit: int, token: str | None = None) -> PageRequest:
    return PageRequest(limit, Token.decode(token) if token else None)


def test_snapshots_expire_when_idle_and_the_least_recently_used_goes_first() -> None:
    held = Listings(kept=2, idle=60.0)
    items = list(range(10))
    calls: list[int] = []

    def source() -> list[int]:
        calls.append(1)
        return items

    a = held.page("a", 5, source, _request(4), now=0.0)
    assert list(a.items) == [0, 1, 2, 3] and a.remaining == 6 and a.next is not None
    again = held.page("a", 5, source, _request(4), now=1.0)  # a first page at a revision held: no new list
    assert list(again.items) == [0, 1, 2, 3] and len(calls) == 1
    items.append(99)  # the source changes: pages of the listing do not
    second = held.page("a", 5, source, _request(4, a.next.encode()), now=50.0)
    assert list(second.items) == [4, 5, 6, 7]
    assert second.next is not None
    with pytest.raises(ListingExpired):  # idle longer than 60 s
        held.page("a", 5, source, _request(4, second.next.encode()), now=111.0)
    b = held.page("b", 1, source, _request(2), now=200.0)
    c = held.page("c", 1, source, _request(2), now=201.0)
    held.page("b", 1, source, _request(2, b.next.encode() if b.next else None), now=202.0)  # b used: c is the oldest
    held.page("d", 1, source, _request(2), now=203.0)
    assert len(held) == 2
    with pytest.raises(ListingExpired):
        held.page("c", 1, source, _request(2, c.next.encode() if c.next else None), now=204.0)
    budget = Listings(kept=16, idle=60.0, items=15)  # 10 items a snapshot: a second pushes the first out
    first = budget.page("a", 1, source, _request(2), now=0.0)
    budget.page("b", 1, source, _request(2), now=1.0)
    assert len(budget) == 1
    with pytest.raises(ListingExpired):
        budget.page("a", 1, source, _request(2, first.next.encode() if first.next else None), now=2.0)
    with pytest.raises(BadParameter) as wrong:
        held.page("b", 1, source, _request(2, c.next.encode() if c.next else None), now=205.0)
    assert wrong.value.path == "continue"
