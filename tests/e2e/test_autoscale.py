"""Autoscaling on real containers: CPU burnt in the replicas scales the service up to its max, one
step at most doubling, and stopping the burn scales it down to its min after the (short) scale-down
stabilization window; each decision is an event with its figures, and `service inspect` shows the last."""

import json
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.cluster import CORRAL, Cluster, wait_until

STACK = """
services:
  web:
    image: corral-demo:latest
    stop_grace_period: 1s
    deploy:
      replicas: 1
      resources: {reservations: {cpus: "0.1"}}
    x-corral-autoscale:
      min: 1
      max: 3
      target: {cpu: 50}
      interval: 2s
      behavior: {scale_down: {stabilization: 10s}}
"""

BURN = "touch /burn; while [ -f /burn ]; do :; done"  # a busy loop until the file goes


@pytest.fixture
def small(tmp_path: Path) -> Iterator[Cluster]:
    running = Cluster(tmp_path / "cluster", nodes=2, first_address="127.0.0.51")
    try:
        yield running.start()
    finally:
        running.cleanup()


def _docker(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=20)


def _burn_in_every_replica(cluster: Cluster, burning: set[str]) -> None:
    for container in cluster.containers(service="a_web"):
        if container.status == "running" and container.id not in burning:
            _docker("exec", "-d", container.id, "sh", "-c", BURN)
            burning.add(container.id)


def _replicas(cluster: Cluster) -> int:
    return int(cluster.api("GET", "/v1/services/a_web")["spec"]["replicas"])


def _autoscale_events(cluster: Cluster, until: str, timeout: float = 20) -> list[dict]:
    """The `autoscale` events since the start, from `corral events`, read until one has `until` in its message."""
    reader = subprocess.Popen([*CORRAL, "events", "--since", "0", "--output", "json"], env=cluster.cli_env(), stdout=subprocess.PIPE, text=True)
    found: list[dict] = []
    deadline = time.monotonic() + timeout
    try:
        assert reader.stdout is not None
        for line in reader.stdout:
            event = json.loads(line)
            if event["action"] == "autoscale":
                found.append(event)
                if until in event["message"]:
                    break
            assert time.monotonic() < deadline, f"no autoscale event with {until!r} in {timeout}s: {found}"
    finally:
        reader.kill()
        reader.wait()
    return found


def test_cpu_load_scales_up_to_max_and_back_down_to_min_with_each_decision_an_event(small: Cluster, compose_file) -> None:
    cluster = small
    cluster.cli("deploy", "-c", str(compose_file(STACK)), "--name", "a")
    cluster.wait_running("a_web", 1)
    time.sleep(5)  # idle samples: an idle service at its min stays there
    assert _replicas(cluster) == 1
    began = time.monotonic()
    burning: set[str] = set()
    seen: list[int] = []

    def at_max() -> bool:
        _burn_in_every_replica(cluster, burning)
        seen.append(_replicas(cluster))
        return seen[-1] == 3 and len(cluster.running_tasks("a_web")) == 3

    wait_until(at_max, 40, 0.5, what="3 replicas under load")
    up_took = time.monotonic() - began
    assert 2 in seen, f"1 -> 2 -> 3: at most double per step ({seen})"
    inspected = json.loads(cluster.cli("service", "inspect", "a_web").stdout)
    status = inspected["autoscale_status"]
    assert status["desired"] == 3 and status["usage"] > 50, status
    assert "scale up" in status["reason"] and "cpu" in status["reason"], status

    for container in cluster.containers(service="a_web"):
        if container.status == "running":
            _docker("exec", container.id, "rm", "-f", "/burn")
    stopped = time.monotonic()
    time.sleep(6)
    assert _replicas(cluster) == 3, "not before the 10 s scale-down stabilization window"
    wait_until(lambda: _replicas(cluster) == 1, 30, 0.5, what="back to 1 replica without load")
    down_took = time.monotonic() - stopped
    assert down_took >= 10, down_took
    cluster.wait_running("a_web", 1)

    events = _autoscale_events(cluster, "-> 1")
    messages = [e["message"] for e in events]
    steps = [tuple(int(n) for n in re.findall(r"autoscaled (\d+) -> (\d+)", m)[0]) for m in messages]
    assert steps[:2] == [(1, 2), (2, 3)], messages  # a first step doubles at most, the second stops at max
    downs = steps[2:]  # once, or in steps as the window's highest recommendation falls
    assert downs and downs[0][0] == 3 and downs[-1][1] == 1 and all(a > b for a, b in downs), messages
    assert all(later[0] == earlier[1] for earlier, later in zip(steps, steps[1:])), messages
    assert all(re.search(r": cpu \d+% of target 50%: scale (up|down) ", m) for m in messages), messages
    status = json.loads(cluster.cli("service", "inspect", "a_web").stdout)["autoscale_status"]
    assert status["desired"] == 1 and status["current"] == downs[-1][0] and status["usage"] < 50, status
    print(f"scaled up in {up_took:.1f}s, down in {down_took:.1f}s after the load stopped", *messages, sep="\n")
