"""Every route of the OpenAPI document is behind a token with the role roles.POLICY names.

The routes come from the document the manager serves, so a route added later
without a check (or under a prefix the policy gives to a weaker role than
meant) fails here. A real manager (SQLite store), tokens made through the API.
"""

import base64
import json
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from corral.manager.access.roles import CODE_ONLY, READ, Role, required_role
from corral.manager.server import Manager
from corral.manager.settings import ManagerSettings
from tests.tls import admin_headers
from test_api import _free_port

SECRET = b"s3cret-value-\x01-only-for-nodes"
NODE = "n1"


class Api:
    def __init__(self, client: httpx.AsyncClient, manager: Manager) -> None:
        self.client = client
        self.manager = manager
        self.tokens: dict[str, str] = {}

    async def call(self, method: str, path: str, token: str | None, body: object = None) -> httpx.Response:
        """One request; a stream (GET /v1/events) is answered with its status and left unread."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        request = self.client.build_request(method, path, headers=headers, json=body if method not in READ else None)
        response = await self.client.send(request, stream=True)
        if response.headers.get("content-type", "").startswith("application/x-ndjson"):
            await response.aclose()
        else:
            await response.aread()
        return response


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    manager = Manager(ManagerSettings(data_dir=tmp_path, listen_port=_free_port(), tls=False, registry_listen=None))
    ctx = await manager.start()
    async with httpx.AsyncClient(base_url=manager.settings.url, timeout=10) as client:
        api = Api(client, manager)
        admin = admin_headers(tmp_path)["Authorization"].removeprefix("Bearer ")
        api.tokens["admin"] = admin
        for role in ("viewer", "deployer"):
            made = await client.post("/v1/tokens", json={"name": f"a-{role}", "role": role}, headers=admin_headers(tmp_path))
            assert made.status_code == 201, made.text
            api.tokens[role] = made.json()["token"]
        joined = await client.post(
            "/v1/agent/register", headers={"Authorization": f"Bearer {ctx.join_token}"},
            json={"name": NODE, "address": "127.0.0.2", "resources": {"cpus": 1, "memory": 2**30}},
        )
        assert joined.status_code == 200, joined.text
        yield api
    await manager.stop()


async def _operations(api: Api) -> list[tuple[str, str, str]]:
    """(method, path template, path to call) for every operation of the served document."""
    document = (await api.call("GET", "/openapi.json", None)).json()
    found = []
    for template, operations in document["paths"].items():
        path = re.sub(r"\{node\}", NODE, template)
        path = re.sub(r"\{[^}]+\}", "x", path)
        found += [(method.upper(), template, path) for method in operations if method in ("get", "post", "put", "patch", "delete")]
    assert len(found) > 30, found
    return found


def _says_role(response: httpx.Response) -> str:
    body = response.json()
    assert set(body) == {"error", "path"}, body
    return str(body["error"])


async def test_every_route_needs_a_token_and_the_role_the_policy_names(api: Api) -> None:
    operations = await _operations(api)
    for method, template, path in operations:
        needed = required_role(method, template)
        if needed == Role.node:  # the agents' routes: a node's identity, and no API token of any role
            if template == "/v1/agent/ca":
                continue  # public: the CA an agent checks against its join token
            refused = await api.call(method, path, api.tokens["admin"], {})
            assert refused.status_code == 401, (method, template, refused.status_code, refused.text)
            continue
        if (method, template) in CODE_ONLY:  # the web UI's sign-in: the one-time code is the credential
            made_up = await api.call(method, path, None, {"code": "made-up"})
            assert made_up.status_code == 401 and "not valid" in _says_role(made_up), made_up.text
            continue
        missing = await api.call(method, path, None, {})
        assert missing.status_code == 401, (method, template, missing.status_code)
        assert f"{method} {template} needs a token of the {needed.value} role" in _says_role(missing), missing.text
        assert missing.headers["www-authenticate"] == "Bearer"
        bad = await api.call(method, path, "corral_000000000000_" + "A" * 43, {})
        assert bad.status_code == 401 and "matches no token" in _says_role(bad), (method, template, bad.text)
        admin = await api.call(method, path, api.tokens["admin"], {})
        assert admin.status_code not in (401, 403), (method, template, admin.status_code, admin.text)
        for role in ("viewer", "deployer"):
            answer = await api.call(method, path, api.tokens[role], {})
            if Role(role) == needed or (role == "deployer" and needed == Role.viewer):
                assert answer.status_code not in (401, 403), (role, method, template, answer.text)
            else:
                assert answer.status_code == 403, (role, method, template, answer.status_code)
                assert f"needs the {needed.value} role; this token has {role}" in _says_role(answer)


async def test_viewers_write_nothing_and_deployers_administer_nothing(api: Api) -> None:
    operations = await _operations(api)
    # every write but the agents' and the web UI's sign-in (a viewer may get a login code for its own role)
    writes = [(m, t, p) for m, t, p in operations if m not in READ and not t.startswith(("/v1/agent", "/v1/ui/"))]
    assert writes
    for method, template, path in writes:
        assert (await api.call(method, path, api.tokens["viewer"], {})).status_code == 403, (method, template)
    admin_only = [(m, t, p) for m, t, p in writes if t.startswith(("/v1/nodes", "/v1/tokens", "/v1/join-token", "/v1/cluster"))]
    assert {t for _, t, _ in admin_only} >= {"/v1/nodes/{name}", "/v1/tokens", "/v1/tokens/{name}"}
    for method, template, path in admin_only:
        assert (await api.call(method, path, api.tokens["deployer"], {})).status_code == 403, (method, template)
    assert (await api.call("GET", "/v1/tokens", api.tokens["deployer"])).status_code == 403  # who may use the API: admins
    assert (await api.call("PATCH", f"/v1/nodes/{NODE}", api.tokens["admin"], {"availability": "drain"})).status_code == 200


async def test_a_viewer_never_sees_a_secret_value(api: Api) -> None:
    made = await api.call("POST", "/v1/secrets", api.tokens["deployer"], {"name": "db", "data": base64.b64encode(SECRET).decode()})
    assert made.status_code in (200, 201), made.text
    seen = []
    for method, template, path in await _operations(api):
        if method == "GET" and template != "/v1/events" and not template.startswith("/v1/agent"):
            answer = await api.call("GET", re.sub(r"/x(/|$)", r"/db\1", path), api.tokens["viewer"])
            assert answer.status_code != 401 and (answer.status_code != 403 or required_role("GET", template) == Role.admin), template
            seen.append(answer.text)
    assert any('"db"' in text for text in seen)  # the listing names it
    encoded = base64.b64encode(SECRET).decode()
    assert not any(SECRET.decode(errors="replace") in text or encoded in text for text in seen)
    # the one route that gives values is for nodes: a user token of any role is refused there
    for role in ("viewer", "deployer", "admin"):
        assert (await api.call("GET", f"/v1/agent/{NODE}/secrets/db", api.tokens[role])).status_code == 401


async def test_tokens_are_shown_once_expire_and_revoke_and_writes_are_audited(api: Api) -> None:
    admin = api.tokens["admin"]
    made = await api.call("POST", "/v1/tokens", admin, {"name": "ci", "role": "viewer", "expires_in": 1})
    assert made.status_code == 201 and made.json()["role"] == "viewer" and made.json()["state"] == "active"
    ci = made.json()["token"]
    assert (await api.call("POST", "/v1/tokens", admin, {"name": "ci", "role": "admin"})).status_code == 409
    assert (await api.call("POST", "/v1/tokens", admin, {"name": "n", "role": "node"})).status_code == 422
    assert (await api.call("POST", "/v1/tokens", admin, {"name": "bad name", "role": "viewer"})).status_code == 422
    me = await api.call("GET", "/v1/whoami", ci)
    assert me.json()["name"] == "ci" and me.json()["role"] == "viewer" and "token" not in me.json()
    listed = (await api.call("GET", "/v1/tokens", admin)).json()
    assert {t["name"] for t in listed} >= {"admin", "ci", "a-viewer", "a-deployer"}
    assert ci not in json.dumps(listed) and ci.split("_", 2)[2] not in json.dumps(listed)  # the secret is nowhere, not even hashed in the listing
    store = Path(api.manager.settings.data_dir)
    assert not any(ci.split("_", 2)[2].encode() in p.read_bytes() for p in store.rglob("*") if p.is_file())

    time.sleep(1.1)  # the token lives 1 s (the manager's clock is the real one here)
    expired = await api.call("GET", "/v1/whoami", ci)
    assert expired.status_code == 401 and "has expired" in _says_role(expired)
    assert {t["name"]: t["state"] for t in (await api.call("GET", "/v1/tokens", admin)).json()}["ci"] == "expired"

    deployer = api.tokens["deployer"]
    assert (await api.call("POST", "/v1/stacks/shop/deploy", deployer, {"compose": "services: {web: {image: corral-demo:latest}}"})).status_code == 200
    revoked = await api.call("DELETE", "/v1/tokens/a-deployer", admin)
    assert revoked.status_code == 200 and revoked.json()["state"] == "revoked"
    after = await api.call("GET", "/v1/services", deployer)
    assert after.status_code == 401 and "was revoked" in _says_role(after)
    assert (await api.call("DELETE", "/v1/tokens/nobody", admin)).status_code == 404

    async with api.client.stream("GET", "/v1/events", params={"since": 0}, headers={"Authorization": f"Bearer {admin}"}) as stream:
        audit = []
        async for line in stream.aiter_lines():
            event = json.loads(line)
            if event["type"] == "audit":
                audit.append(event)
            if event["type"] == "audit" and event["message"].startswith("admin (admin): DELETE /v1/tokens/a-deployer"):
                break
    deploys = [e for e in audit if "/v1/stacks/shop/deploy" in e["message"]]
    assert deploys and deploys[0]["actor"] == "a-deployer" and deploys[0]["message"].endswith("-> 200")
    assert any(e["actor"] == "admin" and "POST /v1/tokens" in e["message"] for e in audit)
    assert not any(api.tokens["admin"] in json.dumps(e) for e in audit)


async def test_the_document_and_the_docs_are_open(api: Api) -> None:
    assert (await api.call("GET", "/openapi.json", None)).status_code == 200
    assert (await api.call("GET", "/docs", None)).status_code == 200
    document = (await api.call("GET", "/openapi.json", None)).json()
    assert document["paths"]["/v1/services"]["get"]["security"] == [{"APIToken": []}]
    assert {"401", "403"} <= set(document["paths"]["/v1/services"]["get"]["responses"])
    assert "security" not in document["paths"]["/v1/agent/ca"]["get"]
    assert {"APIToken": []} not in document["paths"]["/v1/agent/heartbeats"]["post"]["security"]
