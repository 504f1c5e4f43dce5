"""The manager's /metrics on a real manager (uvicorn, SQLite): parsed with prometheus-client's own text parser,
and the figures follow what happens (requests by route template and status, services, tasks, store revision)."""

import asyncio
import hashlib
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.tls import admin_headers, admin_token

from corral.manager.server import Manager
from corral.manager.settings import ManagerSettings

WEB = "services:\n  web:\n    image: corral-demo:latest\n    deploy: {replicas: 2}\n"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    manager = Manager(ManagerSettings(data_dir=tmp_path, listen_port=_free_port(), tls=False))
    await manager.start()
    async with httpx.AsyncClient(base_url=manager.settings.url, headers=admin_headers(tmp_path)) as client:
        yield client
    await manager.stop()


async def scrape(api: httpx.AsyncClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = await api.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


async def test_metrics_parse_and_follow_the_cluster(api: httpx.AsyncClient) -> None:
    before = await scrape(api)
    assert before[("corral_tasks", (("state", "pending"),))] == 0
    assert before[("corral_nodes", (("state", "ready"),))] == 0
    revision = before[("corral_store_revision", ())]

    assert (await api.post("/v1/stacks/shop/deploy", json={"compose": WEB})).status_code == 200
    for name in ("nosuch", "other"):
        assert (await api.get(f"/v1/services/{name}")).status_code == 404
    for _ in range(50):
        after = await scrape(api)
        if after[("corral_tasks", (("state", "pending"),))] == 2:
            break
        await asyncio.sleep(0.1)
    assert after[("corral_tasks", (("state", "pending"),))] == 2
    assert after[("corral_service_replicas_desired", (("service", "shop_web"),))] == 2
    assert after[("corral_service_replicas_running", (("service", "shop_web"),))] == 0
    assert after[("corral_store_revision", ())] > revision
    assert after[("corral_rollouts", (("state", "updating"),))] == 0
    # by route template, never by raw path: two unknown services are one series
    missing = (("method", "GET"), ("route", "/v1/services/{name}"), ("status", "404"))
    assert after[("corral_api_requests_total", missing)] == 2
    deploy = (("method", "POST"), ("route", "/v1/stacks/{stack}/deploy"), ("status", "200"))
    assert after[("corral_api_requests_total", deploy)] == 1
    latency = (("le", "+Inf"), ("method", "POST"), ("route", "/v1/stacks/{stack}/deploy"))
    assert after[("corral_api_request_duration_seconds_bucket", latency)] == 1
    assert not any(dict(labels).get("route") == "/v1/services/nosuch" for _, labels in after)
    # the event loop's lag, probed every 50 ms (loop_watch.py)
    probes = before[("corral_manager_loop_lag_seconds_count", ())]
    for _ in range(40):
        if (await scrape(api))[("corral_manager_loop_lag_seconds_count", ())] > probes:
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("no loop-lag probe in 2 s")


async def test_control_plane_figures_follow_the_work(tmp_path: Path) -> None:
    """Reconcile passes, store writes and their latency, registry bytes both ways, events subscribers."""
    registry = f"127.0.0.1:{_free_port()}"
    manager = Manager(ManagerSettings(data_dir=tmp_path, listen_port=_free_port(), tls=False, registry_listen=registry))
    await manager.start()
    try:
        async with httpx.AsyncClient(base_url=manager.settings.url, headers=admin_headers(tmp_path)) as api:
            before = await scrape(api)
            for _ in range(50):  # the leader's controller starts its passes
                if (await scrape(api))[("corral_reconcile_passes_total", (("result", "ok"),))] > 0:
                    break
                await asyncio.sleep(0.1)
            writes = before[("corral_store_writes_total", (("result", "ok"),))]
            assert (await api.post("/v1/stacks/shop/deploy", json={"compose": WEB})).status_code == 200
            blob = b"layer " * 1000
            auth = ("ci", admin_token(tmp_path))
            async with httpx.AsyncClient(base_url=f"http://{registry}", auth=auth) as pusher:
                digest = "sha256:" + hashlib.sha256(blob).hexdigest()
                assert (await pusher.post("/v2/app/blobs/uploads/", params={"digest": digest}, content=blob)).status_code == 201
                assert (await pusher.get(f"/v2/app/blobs/{digest}")).content == blob
            async with api.stream("GET", "/v1/events") as following:
                assert following.status_code == 200
                for _ in range(50):
                    during = await scrape(api)
                    if during[("corral_event_subscribers", ())] == 1:
                        break
                    await asyncio.sleep(0.05)
                assert during[("corral_event_subscribers", ())] == 1
            for _ in range(50):
                after = await scrape(api)
                if after[("corral_event_subscribers", ())] == 0 and after[("corral_tasks", (("state", "pending"),))] == 2:
                    break
                await asyncio.sleep(0.1)
            assert after[("corral_event_subscribers", ())] == 0
            assert after[("corral_reconcile_passes_total", (("result", "ok"),))] > 0
            assert after[("corral_reconcile_pass_duration_seconds_count", ())] >= after[("corral_reconcile_passes_total", (("result", "ok"),))]
            # the deploy wrote the service, the controller its tasks: each a timed transaction
            assert after[("corral_store_writes_total", (("result", "ok"),))] >= writes + 2
            assert after[("corral_store_write_duration_seconds_count", ())] >= after[("corral_store_writes_total", (("result", "ok"),))]
            assert after[("corral_store_write_duration_seconds_sum", ())] > 0
            assert after[("corral_store_revision", ())] > before[("corral_store_revision", ())]
            assert after[("corral_registry_bytes_total", (("direction", "in"),))] - before[("corral_registry_bytes_total", (("direction", "in"),))] == len(blob)
            assert after[("corral_registry_bytes_total", (("direction", "out"),))] - before[("corral_registry_bytes_total", (("direction", "out"),))] >= len(blob)
    finally:
        await manager.stop()
