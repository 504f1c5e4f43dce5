"""The routing mesh with real containers: a published port answers on every node and survives churn.

Each replica serves its own container id at /id.txt, so a test can tell
which replica answered. Load runs in threads, one new connection per
request (the hardest case for a proxy: every request picks a backend).
"""

import json
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import docker
import httpx
import pytest

from tests.e2e.cluster import Cluster, free_port, wait_until

STACK = """
services:
  web:
    image: corral-demo:latest
    command: ["sh", "-c", "hostname > /www/id.txt; exec httpd -f -p 8080 -h /www"]
    ports: ["{port}:8080"]
    stop_grace_period: 1s
    deploy:
      replicas: {replicas}
      restart_policy: {{condition: any, delay: 0s}}
"""


@pytest.fixture
def mesh_cluster(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Cluster]:
    extra = ["--mesh", request.param] if hasattr(request, "param") else []
    running = Cluster(tmp_path / "cluster", nodes=3, first_address="127.0.0.52", extra=extra)
    try:
        yield running.start()
    finally:
        running.cleanup()


ADDRESSES = ["127.0.0.52", "127.0.0.53", "127.0.0.54"]


def deploy(cluster: Cluster, compose_file, port: int, replicas: int) -> None:
    cluster.cli("deploy", "-c", str(compose_file(STACK.format(port=port, replicas=replicas))), "--name", "m")


def endpoints(cluster: Cluster) -> list[dict]:
    return cluster.cli_json("service", "endpoints", "m_web")  # type: ignore[no-any-return]


def wait_endpoints(cluster: Cluster, count: int) -> list[dict]:
    def ready() -> list[dict] | None:
        found = endpoints(cluster)
        live = [c for c in cluster.containers(service="m_web") if c.status == "running"]
        return found if len(found) == count and len(live) == count else None

    return wait_until(ready, 60, 0.3, what=f"{count} endpoints")  # type: ignore[no-any-return]


class Load:
    """Requests in a loop from threads until stopped; counts answers by replica and failures."""

    def __init__(self, url: str, threads: int = 4) -> None:
        self.url = url
        self.stop = threading.Event()
        self.answers: Counter[str] = Counter()
        self.failures: list[str] = []
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def __enter__(self) -> "Load":
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self._threads:
            thread.join(10)

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                response = httpx.get(self.url, timeout=5)
                outcome = response.text.strip() if response.status_code == 200 else f"HTTP {response.status_code}"
            except httpx.HTTPError as err:
                outcome = f"error: {type(err).__name__}: {err}"
            with self._lock:
                if outcome.startswith(("HTTP", "error")):
                    self.failures.append(outcome)
                else:
                    self.answers[outcome] += 1

    @property
    def total(self) -> int:
        with self._lock:
            return sum(self.answers.values()) + len(self.failures)


@pytest.mark.parametrize("mesh_cluster", ["userspace", "kernel"], indirect=True)
def test_published_port_answers_on_every_node_from_every_replica(mesh_cluster: Cluster, compose_file) -> None:
    port = free_port()
    deploy(mesh_cluster, compose_file, port, 3)
    found = wait_endpoints(mesh_cluster, 3)
    replicas = {c.id[:12] for c in mesh_cluster.containers(service="m_web")}
    assert {e["node"] for e in found} == {"node-1", "node-2", "node-3"}
    for address in ADDRESSES:
        seen = {httpx.get(f"http://{address}:{port}/id.txt", timeout=5).text.strip() for _ in range(12)}
        assert seen == replicas, f"{address} reached {seen}, not every replica"
    listed = mesh_cluster.cli("service", "endpoints", "m_web").stdout
    assert f"mesh: {port}/tcp on every node -> 3 endpoint(s)" in listed
    rules = subprocess.run(["iptables", "-w", "-t", "nat", "-S"], capture_output=True, text=True).stdout
    dnat = [r for r in rules.splitlines() if "CORRAL-MESH" in r and f"--dport {port}" in r]
    if "kernel" in mesh_cluster.extra:
        assert len(dnat) >= 3 * 3  # each node's address, to each of 3 replicas
    else:
        assert dnat == []


def test_replica_killed_under_load_costs_no_request(mesh_cluster: Cluster, compose_file) -> None:
    port = free_port()
    deploy(mesh_cluster, compose_file, port, 3)
    wait_endpoints(mesh_cluster, 3)
    victim = mesh_cluster.containers(service="m_web")[0]
    with Load(f"http://{ADDRESSES[0]}:{port}/id.txt") as load:
        wait_until(lambda: load.total > 50, 20, what="load to start")
        victim.kill()
        wait_endpoints(mesh_cluster, 3)  # replaced
        time.sleep(1)
    assert load.failures == [], f"{len(load.failures)} failed of {load.total}: {load.failures[:3]}"
    assert len(load.answers) >= 3  # the replacement answered too


def test_scale_down_and_drain_under_load_cost_no_request(mesh_cluster: Cluster, compose_file) -> None:
    port = free_port()
    deploy(mesh_cluster, compose_file, port, 4)
    wait_endpoints(mesh_cluster, 4)
    with Load(f"http://{ADDRESSES[1]}:{port}/id.txt") as load:
        wait_until(lambda: load.total > 50, 20, what="load to start")
        mesh_cluster.cli("service", "scale", "m_web=2")
        wait_endpoints(mesh_cluster, 2)
        mesh_cluster.cli("node", "drain", "node-1")
        wait_until(lambda: all(e["node"] != "node-1" for e in endpoints(mesh_cluster)) and len(endpoints(mesh_cluster)) == 2, 60, 0.3, what="drain")
        time.sleep(2)
    assert load.failures == [], f"{len(load.failures)} failed of {load.total}: {load.failures[:3]}"
    assert load.total > 100


def test_port_conflict_is_refused_at_deploy(mesh_cluster: Cluster, compose_file) -> None:
    port = free_port()
    deploy(mesh_cluster, compose_file, port, 1)
    clash = compose_file(STACK.format(port=port, replicas=1), "clash.yaml")
    refused = mesh_cluster.cli("deploy", "-c", str(clash), "--name", "other", check=False)
    assert refused.returncode != 0
    assert f"port {port}/tcp is already published by service m_web" in refused.stderr
    assert [s["name"] for s in mesh_cluster.cli_json("service", "ls")] == ["m_web"]


def test_a_port_taken_on_a_node_is_reported_not_crashed(mesh_cluster: Cluster, compose_file) -> None:
    import socket

    port = free_port()
    with socket.socket() as squatter:
        squatter.bind((ADDRESSES[2], port))
        squatter.listen()
        deploy(mesh_cluster, compose_file, port, 1)
        wait_endpoints(mesh_cluster, 1)
        mesh = wait_until(lambda: (m := mesh_cluster.api("GET", "/v1/services/m_web/mesh"))["errors"] and m, 20, what="mesh error")
        assert list(mesh["errors"]) == ["node-3"]
        assert "address already in use" in mesh["errors"]["node-3"][f"{port}/tcp"].lower()
        # and `service ls` says so in the service's row
        [row] = mesh_cluster.cli_json("service", "ls")
        assert row["unbound_ports"] == {f"{port}/tcp": ["node-3"]}, row
        assert f"({port}/tcp not bound on node-3)" in mesh_cluster.cli("service", "ls").stdout
        # the other nodes still serve it
        assert httpx.get(f"http://{ADDRESSES[0]}:{port}/id.txt", timeout=5).status_code == 200


TWO = """
services:
  api:
    image: corral-demo:latest
    command: ["sh", "-c", "hostname > /www/id.txt; exec httpd -f -p 8000 -h /www"]
    ports: ["8000"]
    deploy: {replicas: 2}
  client:
    image: corral-demo:latest
    command: ["sh", "-c", "sleep 3600"]
    stop_grace_period: 0s
"""


def test_a_container_reaches_another_service_by_name(mesh_cluster: Cluster, compose_file) -> None:
    mesh_cluster.cli("deploy", "-c", str(compose_file(TWO)), "--name", "shop")
    mesh_cluster.wait_running("shop_api", 2)
    mesh_cluster.wait_running("shop_client", 1)
    vip = json.loads(mesh_cluster.cli("service", "inspect", "shop_api").stdout)["vip"]
    assert vip.startswith("10.217.") and vip.endswith(".2")  # the first VIP of its /24
    [client] = [c for c in mesh_cluster.containers(service="shop_client") if c.status == "running"]
    replicas = {c.id[:12] for c in mesh_cluster.containers(service="shop_api")}

    def fetch(host: str) -> str:
        # busybox-static's wget crashes in a FROM scratch image; nc speaks the HTTP needed here
        request = f"printf 'GET /id.txt HTTP/1.0\\r\\nHost: {host}\\r\\n\\r\\n' | nc -w 5 {host} 8000"
        code, out = client.exec_run(["sh", "-c", request])
        text = out.decode(errors="replace")
        assert code == 0 and " 200 " in text.splitlines()[0], text
        return text.split("\r\n\r\n", 1)[1].strip()

    # by the short name and the full name, from whichever node, reaching every replica
    seen = {fetch("api") for _ in range(8)}
    assert seen == replicas
    assert fetch("shop_api") in replicas


CHECKED = """
services:
  web:
    image: corral-demo:latest
    command: ["sh", "-c", "hostname > /www/id.txt; exec httpd -f -p 8080 -h /www"]
    ports: ["{port}:8080"]
    stop_grace_period: 1s
    x-corral-healthcheck:
      http: {{port: 8080, path: /ok.html}}
      interval: 1s
      retries: 2
      start_period: 120s
      start_interval: 0.5s
    deploy:
      replicas: 2
"""


def test_endpoints_follow_health(mesh_cluster: Cluster, compose_file) -> None:
    port = free_port()
    mesh_cluster.cli("deploy", "-c", str(compose_file(CHECKED.format(port=port))), "--name", "m")
    containers = wait_until(lambda: (c := [x for x in mesh_cluster.containers(service="m_web") if x.status == "running"]) and len(c) == 2 and c, 60, what="2 containers")
    time.sleep(2)
    assert endpoints(mesh_cluster) == []  # running containers, but not healthy yet: not endpoints
    assert {t["state"] for t in mesh_cluster.cli_json("service", "ps", "m_web")} == {"starting"}

    healthy, other = containers
    healthy.exec_run(["sh", "-c", "echo ok > /www/ok.html"])
    [endpoint] = wait_until(lambda: (e := endpoints(mesh_cluster)) and e, 20, 0.3, what="the healthy replica to join")
    assert endpoint["task"] == healthy.labels["corral.task"]
    for _ in range(6):  # the mesh sends nothing to the replica still starting
        assert httpx.get(f"http://{ADDRESSES[2]}:{port}/id.txt", timeout=5).text.strip() == healthy.id[:12]

    healthy.exec_run(["rm", "/www/ok.html"])
    wait_until(lambda: endpoints(mesh_cluster) == [], 20, 0.3, what="the unhealthy replica to leave")
    [gone] = [t for t in mesh_cluster.cli_json("service", "ps", "--all", "m_web") if t["id"] == endpoint["task"]]
    assert gone["state"] == "failed" and "health check failed" in gone["error"]
