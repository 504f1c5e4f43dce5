"""/v1/volumes and the deploy's bind policy on a real manager (SQLite store, uvicorn, its controller running)."""

import asyncio

import httpx

from corral.manager.cache import Versioned
from corral.manager.volumes.records import removal_ops
from corral.model.volume import Volume
from test_node_credentials import api  # noqa: F401 - the fixture: a real manager, its data dir beside

NODE = {"resources": {"cpus": 2, "memory": 2**30}}
DB = """
services:
  db:
    image: corral-demo:latest
    volumes: [data:/data]
volumes:
  data: {}
"""
BIND = """
services:
  web:
    image: corral-demo:latest
    volumes: ["/etc/passwd:/x:ro"]
"""


async def _join(api: httpx.AsyncClient, name: str) -> dict[str, str]:
    body = {**NODE, "name": name, "address": "127.0.0.2"}
    reply = await api.post("/v1/agent/register", json=body, headers={"Authorization": f"Bearer {api.token}"})  # type: ignore[attr-defined]
    assert reply.status_code == 200, reply.text
    return {"Authorization": f"Bearer {reply.json()['credential']}"}


async def _eventually(check, what: str):  # type: ignore[no-untyped-def]
    for _ in range(100):
        result = await check()
        if result:
            return result
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


async def test_a_bind_outside_the_allowed_directories_is_refused_and_nothing_changes(api: httpx.AsyncClient) -> None:
    refused = await api.post("/v1/stacks/host/deploy", json={"compose": BIND})
    assert refused.status_code == 422
    error = refused.json()["error"]
    assert "services.web.volumes[0]" in error and "/etc/passwd" in error and "--allow-bind" in error
    assert (await api.get("/v1/services")).json() == []


async def test_volumes_are_listed_kept_refused_in_use_and_removed_through_their_agent(api: httpx.AsyncClient) -> None:
    node = await _join(api, "n1")
    deployed = await api.post("/v1/stacks/shop/deploy", json={"compose": DB})
    assert deployed.status_code == 200, deployed.text

    async def listed() -> list[dict]:
        return (await api.get("/v1/volumes")).json()  # type: ignore[no-any-return]

    [volume] = await _eventually(listed, "the volume recorded at placement")
    assert {k: volume[k] for k in ("name", "node", "stack", "service", "slot", "removing")} == {
        "name": "shop_data.1", "node": "n1", "stack": "shop", "service": "shop_db", "slot": 1, "removing": False,
    }
    assert len(volume["in_use_by"]) == 1
    assert (await api.get("/v1/volumes", params={"stack": "other"})).json() == []
    assert (await api.get("/v1/volumes/shop_data.1")).json() == [volume]
    assert (await api.get("/v1/volumes/nope")).status_code == 404

    in_use = await api.delete("/v1/volumes/shop_data.1")
    assert in_use.status_code == 409 and "in use by task" in in_use.json()["error"]
    assert not (await listed())[0]["removing"]  # nothing changed

    # stack rm keeps it; stack rm --volumes marks it; the agent removes it and reports; the record goes
    assert (await api.delete("/v1/stacks/shop")).status_code == 200
    assert [v["name"] for v in await listed()] == ["shop_data.1"]
    assert (await api.get("/v1/agent/n1/volumes", headers=node)).json() == []
    assert (await api.post("/v1/stacks/cafe/deploy", json={"compose": DB})).status_code == 200
    await _eventually(lambda: _named(api, "cafe_data.1"), "the other stack's volume")
    assert (await api.delete("/v1/stacks/cafe", params={"volumes": "true"})).status_code == 200
    marked = (await api.get("/v1/agent/n1/volumes", headers=node)).json()
    assert [(v["name"], v["removing"]) for v in marked] == [("cafe_data.1", True)]  # only that stack's
    assert (await api.get("/v1/agent/n1/volumes")).status_code == 401  # the node's credential only
    # a report of what was not marked removes nothing
    done = await api.post("/v1/agent/n1/volumes/removed", json={"names": ["cafe_data.1", "shop_data.1"]}, headers=node)
    assert done.json() == {"names": ["cafe_data.1"]}
    assert [v["name"] for v in await listed()] == ["shop_data.1"]


async def _named(api: httpx.AsyncClient, name: str) -> bool:
    return (await api.get(f"/v1/volumes/{name}")).status_code == 200


def test_a_volume_on_a_node_gone_from_the_cluster_is_forgotten_at_once() -> None:
    here = Versioned(Volume(name="a.1", node="n1", source="a", service="s", created_at=0), 5)
    gone = Versioned(Volume(name="a.2", node="n9", source="a", service="s", created_at=0), 6)
    ops = removal_ops([here, gone], {"n1"})
    assert [(op.key, op.value is None, op.expect) for op in ops] == [("volumes/n1/a.1", False, 5), ("volumes/n9/a.2", True, 6)]
    assert ops[0].value is not None and ops[0].value["removing"] is True
