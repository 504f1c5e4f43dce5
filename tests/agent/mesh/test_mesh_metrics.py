"""Mesh figures per service port: a real mesh carries connections, the routes name the services, Prometheus
and the node listener's /v1/mesh/counters show them."""

import json

import httpx
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from corral.agent.mesh import Listener, Mesh, MeshCounters
from corral.agent.mesh_metrics import ServicePort, by_service, by_service_port
from corral.agent.metrics_export import MeshCollector
from corral.agent.node_api import node_app

from mesh_backends import ask, free_port

NODE = "127.0.0.5"


def _routes(port: int, vip_port: int, backend: tuple[str, int]) -> list[dict[str, object]]:
    address = f"{backend[0]}:{backend[1]}"
    return [
        {"service": "shop_web", "stack": "shop", "vip": "", "port": port, "protocol": "tcp", "target": 8080, "backends": [address]},
        {"service": "shop_web", "stack": "shop", "vip": "127.0.0.6", "port": vip_port, "protocol": "tcp", "target": 8080, "backends": [address]},
        {"service": "shop_db", "stack": "shop", "vip": "", "port": 5432, "protocol": "tcp", "target": 5432, "backends": []},
    ]


def _samples(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(registry).decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for f in text_string_to_metric_families(text) for s in f.samples}


async def test_a_service_ports_figures_reach_prometheus_and_the_manager(named_servers) -> None:
    (server,) = await named_servers(1)
    port, vip_port = free_port(NODE), free_port("127.0.0.6")
    routes = _routes(port, vip_port, server.address)
    published, vips = Mesh(), Mesh()
    try:
        await published.apply({(NODE, port, "tcp"): [server.address]})
        await vips.apply({("127.0.0.6", vip_port, "tcp"): [server.address]})

        def figures() -> dict[ServicePort, MeshCounters]:
            return by_service_port(routes, NODE, published.counters(), vips.counters())

        registry = CollectorRegistry()
        registry.register(MeshCollector(figures))
        labels = (("listener", "published"), ("port", str(port)), ("protocol", "tcp"), ("service", "shop_web"))
        assert _samples(registry)[("corral_mesh_connections_total", labels)] == 0
        for i in range(3):
            assert await ask((NODE, port), f"q{i}") == f"b0:q{i}"
        assert await ask(("127.0.0.6", vip_port)) == "b0:hi"
        samples = _samples(registry)
        assert samples[("corral_mesh_connections_total", labels)] == 3
        assert samples[("corral_mesh_receive_bytes_total", labels)] == 9
        assert samples[("corral_mesh_errors_total", labels)] == 0
        vip_labels = (("listener", "vip"), ("port", str(vip_port)), ("protocol", "tcp"), ("service", "shop_web"))
        assert samples[("corral_mesh_connections_total", vip_labels)] == 1
        assert not any(dict(key[1]).get("service") == "shop_db" for key in samples)  # its listener is not open here

        app = node_app(lambda: None, mesh=lambda: by_service(figures()))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://node") as client:
            reply = await client.get("/v1/mesh/counters")
        assert reply.status_code == 200
        web = json.loads(reply.text)["services"]["shop_web"]
        assert web["connections"] == 4 and web["received_bytes"] == 9 + 3 and web["retries"] == 0
    finally:
        await published.close()
        await vips.close()


def test_by_service_port_leaves_out_listeners_no_route_names() -> None:
    counters = {Listener(NODE, 9000, "tcp"): MeshCounters(connections=5), Listener(NODE, 9001, "tcp"): MeshCounters(connections=7)}
    routes = [{"service": "a", "vip": "", "port": 9000, "protocol": "tcp"}]
    assert by_service_port(routes, NODE, counters, {}) == {ServicePort("a", 9000, "tcp", "published"): MeshCounters(connections=5)}
    assert by_service_port(routes, "127.0.0.9", counters, {}) == {}  # another node's address: not this mesh's listener
