"""The deploy policy on a real manager started without --allow-privileged: refused, naming the option, nothing changes."""

import httpx

from test_node_credentials import api  # noqa: F401 - the fixture: a real manager, its data dir beside

PRIVILEGED = """
services:
  web:
    image: corral-demo:latest
    privileged: true
    pid: host
"""


async def test_a_privileged_service_is_refused_naming_the_option_and_nothing_changes(api: httpx.AsyncClient) -> None:
    for dry_run in (True, False):
        refused = await api.post("/v1/stacks/host/deploy", json={"compose": PRIVILEGED, "dry_run": dry_run})
        assert refused.status_code == 422, refused.text
        error = refused.json()["error"]
        assert "services.web.privileged" in error and "services.web.pid" in error and "--allow-privileged" in error
    assert (await api.get("/v1/services")).json() == []
