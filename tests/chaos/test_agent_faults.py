"""An agent stopped (SIGSTOP) or cut off (iptables) past its lease: its node goes down, its replicas are
replaced, and once it is back its node is ready again by itself and the replaced containers go away.

Each fault asserts: replicas converge to exactly the wanted count, every node alive is
`ready`, no acknowledged write lost (a scale of another service, acknowledged during the
fault, holds). The running containers of `web` (whose wanted count stays 6) are counted all
along: the figures of docs/reliability.md.
"""

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.chaos.harness import ChaosCluster, Figure, Figures, Sampler
from tests.e2e.cluster import wait_until

LEASE, GRACE = 2.0, 1.0
HOLD = LEASE + GRACE + 4.0  # long enough for the node to be declared down and its replicas replaced
STACK = """
services:
  web:
    image: corral-demo:latest
    stop_grace_period: 1s
    deploy:
      replicas: 6
  api:
    image: corral-demo:latest
    stop_grace_period: 1s
    deploy:
      replicas: 2
"""


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[ChaosCluster]:
    running = ChaosCluster(tmp_path / "cluster", nodes=3, first_address=44,
                           manager_args=["--node-lease", str(LEASE), "--node-grace", str(GRACE)])
    try:
        yield running.start()
    finally:
        running.cleanup()


def _deploy(cluster: ChaosCluster, tmp_path: Path) -> None:
    compose = tmp_path / "compose.yaml"
    compose.write_text(STACK)
    cluster.deploy(compose, "app")


def _scale(cluster: ChaosCluster, service: str, replicas: int) -> None:
    assert cluster.api("POST", f"/v1/services/{service}/scale", {"replicas": replicas})["replicas"] == replicas


def _ready_again(cluster: ChaosCluster, name: str) -> float:
    began = time.monotonic()
    wait_until(lambda: cluster.node_states()[name] == "ready", 30, 0.1, what=f"{name} ready again")
    return time.monotonic() - began


def test_a_stopped_or_cut_off_agent_comes_back_by_itself(cluster: ChaosCluster, tmp_path: Path) -> None:
    figures = Figures(tmp_path / "figures.json")
    _deploy(cluster, tmp_path)
    cluster.wait_settled({"app_web": 6, "app_api": 2})

    with Sampler(cluster, "app_web") as sampler:
        # 1. SIGSTOP node-1's agent past its lease and grace; a scale is acknowledged meanwhile.
        sampler.expect(6)
        began = time.monotonic()
        cluster.pause(cluster.agents["node-1"])
        wait_until(lambda: cluster.node_states()["node-1"] == "down", 10, 0.1, what="node-1 down")
        down_s = time.monotonic() - began
        _scale(cluster, "app_api", 3)
        time.sleep(max(0.0, HOLD - (time.monotonic() - began)))
        assert cluster.node_states()["node-1"] == "down"
        lost = [t["id"] for t in cluster.tasks("app_web") if t["node"] == "node-1" and t["state"] == "lost"]
        assert len(lost) == 2
        held = time.monotonic() - began
        cluster.resume(cluster.agents["node-1"])
        ended = time.monotonic()
        ready = _ready_again(cluster, "node-1")
        cluster.wait_settled({"app_web": 6, "app_api": 3})
        figures.add(Figure("agent SIGSTOP", round(held, 1), round(ready, 2), round(time.monotonic() - ended, 2),
                           sampler.above, sampler.below, {"declared_down_s": round(down_s, 2)}))
        # the lost tasks' containers were stopped and removed by the agent that came back
        assert not [c for c in cluster.containers(node="node-1") if c.labels["corral.task"] in lost]
        assert ready < 3.0, f"node-1 took {ready:.1f}s to be ready again"

        # 2. node-2's agent cut off from the manager (packets dropped both ways); a scale meanwhile.
        sampler.expect(6)
        began = time.monotonic()
        with cluster.partition("node-2"):
            wait_until(lambda: cluster.node_states()["node-2"] == "down", 10, 0.1, what="node-2 down")
            down_s = time.monotonic() - began
            _scale(cluster, "app_api", 1)
            time.sleep(max(0.0, HOLD - (time.monotonic() - began)))
            assert cluster.node_states()["node-2"] == "down"
            lost = [t["id"] for t in cluster.tasks("app_web") if t["node"] == "node-2" and t["state"] == "lost"]
            held = time.monotonic() - began
        ended = time.monotonic()
        ready = _ready_again(cluster, "node-2")
        cluster.wait_settled({"app_web": 6, "app_api": 1})
        figures.add(Figure("agent partition", round(held, 1), round(ready, 2), round(time.monotonic() - ended, 2),
                           sampler.above, sampler.below, {"declared_down_s": round(down_s, 2)}))
        assert not [c for c in cluster.containers(node="node-2") if c.labels["corral.task"] in lost]
        assert ready < 5.0, f"node-2 took {ready:.1f}s to be ready again"

    # Both nodes take work again: no acknowledged write lost, nothing doubled.
    assert cluster.api("GET", "/v1/services/app_api")["replicas"] == 1
    _scale(cluster, "app_web", 9)
    cluster.wait_settled({"app_web": 9, "app_api": 1})
    assert {t["node"] for t in cluster.live_tasks("app_web")} == {"node-1", "node-2", "node-3"}
