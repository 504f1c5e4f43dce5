"""/v1/secrets, /v1/configs, the deploy of a stack's values, and the agents' route to a value, on a real
manager (SQLite store, uvicorn): values sealed at rest, metadata only in the API and the events."""

import asyncio
import base64
import json
from pathlib import Path

import httpx

from test_node_credentials import api  # noqa: F401 - the fixture: a real manager, its data dir beside

VALUE = b"hunter2-\x00\xff-do-not-leak-7f3a9c"
B64 = base64.b64encode(VALUE).decode()
NODE = {"resources": {"cpus": 2, "memory": 2**30}}
COMPOSE = """
services:
  web:
    image: corral-demo:latest
    secrets: [db, {source: api, target: api_key, mode: 0400}]
    configs: [{source: site, target: /etc/site.conf}]
secrets:
  db: {file: ./db.txt}
  api: {external: true}
configs:
  site: {content: "listen 80;"}
"""


async def _join(api: httpx.AsyncClient, name: str, address: str) -> dict[str, str]:
    body = {**NODE, "name": name, "address": address}
    reply = await api.post("/v1/agent/register", json=body, headers={"Authorization": f"Bearer {api.token}"})  # type: ignore[attr-defined]
    assert reply.status_code == 200, reply.text
    return {"Authorization": f"Bearer {reply.json()['credential']}"}


async def _deploy(api: httpx.AsyncClient, **fields: object) -> httpx.Response:
    return await api.post("/v1/stacks/app/deploy", json={"compose": COMPOSE, "secrets": {"app_db": B64}, **fields})


def _leaks(text: str | bytes) -> list[bytes]:
    data = text.encode() if isinstance(text, str) else text
    return [form for form in (VALUE, B64.encode(), VALUE.hex().encode(), b"hunter2") if form in data]


async def test_create_list_inspect_remove_show_metadata_only(api: httpx.AsyncClient) -> None:
    created = await api.post("/v1/secrets", json={"name": "db", "data": B64})
    assert created.status_code == 201, created.text
    assert created.json()["size"] == len(VALUE) and "data" not in created.json()
    listed, inspected = await api.get("/v1/secrets"), await api.get("/v1/secrets/db")
    assert [row["name"] for row in listed.json()] == ["db"] and "data" not in listed.json()[0]
    assert inspected.json() == created.json()
    assert not _leaks(created.text + listed.text + inspected.text)
    again = await api.post("/v1/secrets", json={"name": "db", "data": base64.b64encode(b"other").decode()})
    assert again.status_code == 409 and "create a new secret" in again.json()["error"]
    assert (await api.get("/v1/configs")).json() == []  # the two kinds are apart
    removed = await api.delete("/v1/secrets/db")
    assert removed.status_code == 200 and (await api.get("/v1/secrets")).json() == []
    assert (await api.delete("/v1/secrets/db")).status_code == 404
    assert (await api.get("/v1/secrets/db")).status_code == 404


async def test_bad_input_names_the_field_and_stores_nothing(api: httpx.AsyncClient) -> None:
    bad = await api.post("/v1/secrets", json={"name": "db", "data": "not base64!"})
    assert bad.status_code == 422 and bad.json()["path"] == "data"
    bad = await api.post("/v1/secrets", json={"name": "../etc", "data": B64})
    assert bad.status_code == 422 and bad.json()["path"] == "name"
    big = base64.b64encode(b"x" * (500 * 1024 + 1)).decode()
    bad = await api.post("/v1/configs", json={"name": "big", "data": big})
    assert bad.status_code == 422 and "at most" in bad.json()["error"]
    assert (await api.get("/v1/secrets")).json() == [] and (await api.get("/v1/configs")).json() == []


async def test_a_configs_inspect_shows_its_value(api: httpx.AsyncClient) -> None:
    await api.post("/v1/configs", json={"name": "site", "data": base64.b64encode(b"listen 80;").decode()})
    shown = (await api.get("/v1/configs/site")).json()
    assert base64.b64decode(shown["data"]) == b"listen 80;" and shown["kind"] == "config"
    assert "data" not in (await api.get("/v1/configs")).json()[0]


async def test_deploy_stores_the_stacks_values_and_refers_to_them_by_name(api: httpx.AsyncClient) -> None:
    missing = await _deploy(api)
    assert missing.status_code == 422 and missing.json()["path"] == "secrets.api" and "corral secret create api" in missing.json()["error"]
    assert (await api.get("/v1/secrets")).json() == [] and (await api.get("/v1/services")).json() == []
    await api.post("/v1/secrets", json={"name": "api", "data": base64.b64encode(b"key").decode()})
    dry = await _deploy(api, dry_run=True)
    assert dry.json()["created_secrets"] == ["app_db"] and [s["name"] for s in (await api.get("/v1/secrets")).json()] == ["api"]
    done = await _deploy(api)
    assert done.status_code == 200, done.text
    assert done.json()["created_secrets"] == ["app_db"] and done.json()["created_configs"] == ["app_site"]
    assert {s["name"] for s in (await api.get("/v1/secrets")).json()} == {"api", "app_db"}
    assert base64.b64decode((await api.get("/v1/configs/app_site")).json()["data"]) == b"listen 80;"
    again = await _deploy(api)  # the same values: nothing to store
    assert again.status_code == 200 and again.json()["unchanged"] == ["app_web"] and again.json()["created_secrets"] == []
    service = (await api.get("/v1/services/app_web")).json()
    assert not _leaks(json.dumps(service))
    assert service["spec"]["secrets"][0]["source"] == "app_db" and service["spec"]["secrets"][1]["target"] == "/run/secrets/api_key"


async def test_other_bytes_under_an_existing_name_are_refused(api: httpx.AsyncClient) -> None:
    await api.post("/v1/secrets", json={"name": "api", "data": B64})
    assert (await _deploy(api)).status_code == 200
    changed = await _deploy(api, secrets={"app_db": base64.b64encode(b"rotated").decode()})
    assert changed.status_code == 409 and "new name" in changed.json()["error"] and "secrets.db" in changed.json()["error"]
    assert not _leaks(changed.text)


async def test_deploy_values_must_be_sent_as_the_file_defines_them(api: httpx.AsyncClient) -> None:
    await api.post("/v1/secrets", json={"name": "api", "data": B64})
    unsent = await _deploy(api, secrets={})
    assert unsent.status_code == 422 and unsent.json()["path"] == "secrets.db.file"
    extra = await _deploy(api, secrets={"app_db": B64, "stray": B64})
    assert extra.status_code == 422 and extra.json()["path"] == "secrets.stray"
    garbled = await _deploy(api, secrets={"app_db": "%%%"})
    assert garbled.status_code == 422 and garbled.json()["path"] == "secrets.app_db"
    assert (await api.get("/v1/services")).json() == [] and len((await api.get("/v1/secrets")).json()) == 1


async def test_a_value_in_use_cannot_be_removed(api: httpx.AsyncClient) -> None:
    await api.post("/v1/secrets", json={"name": "api", "data": B64})
    await _deploy(api)
    for kind, name in (("secrets", "api"), ("secrets", "app_db"), ("configs", "app_site")):
        refused = await api.delete(f"/v1/{kind}/{name}")
        assert refused.status_code == 409 and "app_web" in refused.json()["error"], refused.text
    assert (await api.get("/v1/secrets/app_db")).json()["stack"] == "app" and (await api.get("/v1/secrets/api")).json()["stack"] == ""
    await api.delete("/v1/stacks/app")  # the values its deploy stored go with it; the external one stays
    assert [s["name"] for s in (await api.get("/v1/secrets")).json()] == ["api"] and (await api.get("/v1/configs")).json() == []
    assert (await api.delete("/v1/secrets/api")).status_code == 200


async def test_a_stacks_value_another_stack_uses_stays_when_the_stack_goes(api: httpx.AsyncClient) -> None:
    await api.post("/v1/secrets", json={"name": "api", "data": B64})
    await _deploy(api)
    other = "services:\n  job:\n    image: corral-demo:latest\n    secrets: [db]\nsecrets:\n  db: {external: true, name: app_db}\n"
    assert (await api.post("/v1/stacks/other/deploy", json={"compose": other})).status_code == 200
    await api.delete("/v1/stacks/app")
    assert {s["name"] for s in (await api.get("/v1/secrets")).json()} == {"api", "app_db"}
    await api.delete("/v1/stacks/other")  # app_db is not other's: it stays until removed by name
    assert (await api.delete("/v1/secrets/app_db")).status_code == 200


async def test_only_a_node_running_a_task_that_uses_a_secret_gets_its_value(api: httpx.AsyncClient) -> None:
    one = await _join(api, "n1", "127.0.0.2")
    two = await _join(api, "n2", "127.0.0.3")
    await api.post("/v1/secrets", json={"name": "api", "data": base64.b64encode(b"key").decode()})
    await api.post("/v1/secrets", json={"name": "unused", "data": B64})
    await _deploy(api)
    for _ in range(100):
        tasks = (await api.get("/v1/services/app_web/tasks")).json()
        if tasks and tasks[0].get("node"):
            break
        await asyncio.sleep(0.05)
    runs, idle = ("n1", "n2") if tasks[0]["node"] == "n1" else ("n2", "n1")
    credential = {"n1": one, "n2": two}
    got = await api.get(f"/v1/agent/{runs}/secrets/app_db", headers=credential[runs])
    assert got.status_code == 200 and base64.b64decode(got.json()["data"]) == VALUE
    config = await api.get(f"/v1/agent/{runs}/configs/app_site", headers=credential[runs])
    assert base64.b64decode(config.json()["data"]) == b"listen 80;"
    refused = await api.get(f"/v1/agent/{idle}/secrets/app_db", headers=credential[idle])
    assert refused.status_code == 403 and "no task assigned" in refused.json()["error"]
    assert (await api.get(f"/v1/agent/{runs}/secrets/unused", headers=credential[runs])).status_code == 403
    assert (await api.get(f"/v1/agent/{runs}/secrets/app_db", headers=credential[idle])).status_code == 401
    assert (await api.get(f"/v1/agent/{runs}/secrets/app_db")).status_code == 401
    assert (await api.get("/v1/agent/nobody/secrets/app_db", headers=credential[runs])).status_code == 404


async def test_the_value_is_nowhere_in_the_store_the_data_dir_or_the_events(api: httpx.AsyncClient) -> None:
    await api.post("/v1/secrets", json={"name": "api", "data": B64})
    await _deploy(api)
    data_dir: Path = api.data_dir  # type: ignore[attr-defined]
    files = [path for path in data_dir.rglob("*") if path.is_file()]
    assert any(path.name.startswith("store.db") for path in files)
    for path in files:
        assert not _leaks(path.read_bytes()), path
    lines: list[str] = []
    async with api.stream("GET", "/v1/events", params={"since": 0}) as response:
        async def read() -> None:
            async for line in response.aiter_lines():
                if line.strip():
                    lines.append(line)
                if any("service app_web created" in seen for seen in lines):
                    return
        await asyncio.wait_for(read(), 10)
    events = [json.loads(line) for line in lines]
    assert {"secret app_db created (%d bytes)" % len(VALUE), "config app_site created (10 bytes)"} <= {e["message"] for e in events}
    assert not _leaks("\n".join(lines))


async def test_the_policy_gives_writes_to_deployers_and_no_user_route_a_secrets_value(api: httpx.AsyncClient) -> None:
    from corral.manager.access.roles import Role, required_role

    document = (await api.get("/openapi.json")).json()
    schemas = document["components"]["schemas"]
    seen = 0
    for template, operations in document["paths"].items():
        if "/secrets" not in template and "/configs" not in template:
            continue
        for method, operation in operations.items():
            seen += 1
            role = required_role(method, template)
            if template.startswith("/v1/agent/"):
                assert role == Role.node, template
                continue
            assert role == (Role.viewer if method == "get" else Role.deployer), (method, template)
            if "/secrets" in template:
                schema = operation["responses"][next(iter(operation["responses"]))]["content"]["application/json"]["schema"]
                name = (schema.get("items") or schema)["$ref"].rsplit("/", 1)[1]
                assert "data" not in schemas[name]["properties"], (method, template)
    assert seen == 10
