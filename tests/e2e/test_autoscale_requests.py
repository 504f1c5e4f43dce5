"""Autoscaling on the request rate, on real containers: connections sent through the routing mesh
(loopback, both nodes' published port) scale the service up to its max, with the figures in the events;
when the load stops it comes back to its min after the (short) scale-down window. The agents' /metrics
show the mesh's per-service counters growing with the load."""

import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.cluster import Cluster, free_port, wait_until
from tests.e2e.test_autoscale import _autoscale_events

FIRST = "127.0.0.105"
NODES = ("127.0.0.105", "127.0.0.106")
PORT = free_port()

STACK = f"""
services:
  web:
    image: corral-demo:latest
    stop_grace_period: 1s
    ports: ["{PORT}:8080"]
    deploy:
      replicas: 1
    x-corral-autoscale:
      min: 1
      max: 3
      target: {{requests_per_second: 10}}
      interval: 2s
      behavior: {{scale_down: {{stabilization: 10s}}}}
"""


class Load:
    """One HTTP/1.0 request per connection, alternating between the nodes' published port, about `rate` a second
    in all from a few threads (one alone is too slow on a loaded machine)."""

    def __init__(self, rate: float, threads: int = 4) -> None:
        self.interval = threads / rate
        self.sent = 0
        self.answered = 0
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(threads)]
        self.began = self.ended = 0.0

    def _run(self, index: int) -> None:
        count = 0
        while not self.stop.is_set():
            began = time.monotonic()
            address = NODES[(index + count) % len(NODES)]
            count += 1
            answered = False
            try:
                with socket.create_connection((address, PORT), timeout=2) as conn:
                    conn.sendall(b"GET / HTTP/1.0\r\n\r\n")
                    answered = conn.recv(64).startswith(b"HTTP/")
            except OSError:
                pass
            with self.lock:
                self.sent += 1
                self.answered += answered
            self.stop.wait(max(0.0, self.interval - (time.monotonic() - began)))

    @property
    def rate(self) -> float:
        return self.sent / max(1e-9, (self.ended or time.monotonic()) - self.began)

    def __enter__(self) -> "Load":
        self.began = time.monotonic()
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(5)
        self.ended = time.monotonic()


@pytest.fixture
def small(tmp_path: Path) -> Iterator[Cluster]:
    running = Cluster(tmp_path / "cluster", nodes=2, first_address=FIRST)
    try:
        yield running.start()
    finally:
        running.cleanup()


def _replicas(cluster: Cluster) -> int:
    return int(cluster.api("GET", "/v1/services/r_web")["spec"]["replicas"])


def _mesh_connections(node: str) -> float:
    text = httpx.get(f"http://{node}:7071/metrics", timeout=10).text
    return sum(
        s.value for f in text_string_to_metric_families(text) for s in f.samples
        if s.name == "corral_mesh_connections_total" and s.labels.get("service") == "r_web" and s.labels.get("listener") == "published"
    )


def test_requests_through_the_mesh_scale_up_to_max_and_back_down_with_the_figures_in_the_events(small: Cluster, compose_file) -> None:
    cluster = small
    cluster.cli("deploy", "-c", str(compose_file(STACK)), "--name", "r")
    cluster.wait_running("r_web", 1)
    wait_until(lambda: all(_mesh_connections(node) == 0 for node in NODES), 20, 0.5, what="both nodes' meshes serving the port")
    time.sleep(4)  # idle samples: a service at its min without requests stays there
    assert _replicas(cluster) == 1
    seen: list[int] = []
    with Load(rate=50) as load:

        def at_max() -> bool:
            seen.append(_replicas(cluster))
            return seen[-1] == 3

        wait_until(at_max, 40, 0.5, what="3 replicas under 50 requests/s")
        cluster.wait_running("r_web", 3)
        assert load.answered > 0.9 * load.sent, (load.answered, load.sent)
    stopped, stopped_at = time.monotonic(), time.time()
    assert _replicas(cluster) == 3
    assert 2 in seen, f"1 -> 2 -> 3: at most double per step ({seen})"
    counted = [_mesh_connections(node) for node in NODES]
    assert all(c > 0 for c in counted) and sum(counted) >= load.sent - 2, (counted, load.sent)  # every connection counted
    status = json.loads(cluster.cli("service", "inspect", "r_web").stdout)["autoscale_status"]
    assert status["metric"] == "requests_per_second" and status["target"] == 10, status

    assert load.rate > 35, f"the load reached {load.rate:.0f}/s only"
    wait_until(lambda: _replicas(cluster) == 1, 40, 0.5, what="back to 1 replica without requests")
    down_took = time.monotonic() - stopped

    found = _autoscale_events(cluster, "-> 1")
    first_down = next(e for e in found if "scale down" in e["message"])
    # the last loaded sample was at most one interval (2 s) before the stop: its recommendation holds 10 s from then
    assert first_down["time"] >= stopped_at + 10 - 2 - 0.5, (first_down, stopped_at)
    events = [e["message"] for e in found]
    steps = [tuple(int(n) for n in re.findall(r"autoscaled (\d+) -> (\d+)", m)[0]) for m in events]
    assert steps[:2] == [(1, 2), (2, 3)], events
    assert steps[-1][1] == 1 and all(later[0] == earlier[1] for earlier, later in zip(steps, steps[1:])), events
    figures = [float(f) for m in events[:2] for f in re.findall(r": ([\d.]+) requests/s per replica \(mesh connections\) of target 10/s: scale up", m)]
    assert len(figures) == 2 and all(f > 11 for f in figures), events  # above the target's tolerance, measured
    assert re.search(r": 0\.0 requests/s per replica", events[-1]) or "stabilized" in events[-1] or "within" in events[-1], events
    print(f"load {load.rate:.1f}/s; down in {down_took:.1f}s after it stopped; sent {load.sent}, mesh counted {counted}", *events, sep="\n")

