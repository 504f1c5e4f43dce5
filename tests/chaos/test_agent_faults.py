"""An agent stopped (SIGSTOP) or cut off (iptables) past its lease: its node goes down, its replicas are
replaced, and once it is back its node is ready again by itself and the replaced containers go away.

Each fault asserts: replicas converge to exactly the wanted count, every node alive is
`ready`, no acknowledged write lost (a scale of another service, acknowledged during the
fault, holds). The running containers of `web` (whose wanted count stays 6) are counted all
along: the figures of docs/reliability.md.
"""

import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest

from tests.chaos.harness import HOLD, ChaosCluster, Figure, Figures, Sampler
from tests.e2e.cluster import wait_until

pytestmark = pytest.mark.e2e

BACK_WITHIN = 5.0  # seconds: a heartbeat (1 s apart) given up after 3 s, and the next one brings it back


@contextmanager
def stopped(cluster: ChaosCluster, name: str) -> Iterator[None]:
    cluster.pause(cluster.agents[name])
    try:
        yield
    finally:
        cluster.resume(cluster.agents[name])


def _survive(cluster: ChaosCluster, sampler: Sampler, figures: Figures, label: str, name: str,
             fault: AbstractContextManager[None], api: int) -> None:
    """`fault` cuts `name` off past its lease and grace; `app_api` is scaled to `api` meanwhile."""
    sampler.expect(6)
    began = time.monotonic()
    with fault:
        wait_until(lambda: cluster.node_states()[name] == "down", 10, 0.1, what=f"{name} down")
        down_s = time.monotonic() - began
        cluster.scale("app_api", api)
        time.sleep(max(0.0, HOLD - (time.monotonic() - began)))
        assert cluster.node_states()[name] == "down"
        lost = [t["id"] for t in cluster.tasks("app_web") if t["node"] == name and t["state"] == "lost"]
        assert lost
        held = time.monotonic() - began
    ready = cluster.ready_again(name)
    converged = ready + cluster.wait_settled({"app_web": 6, "app_api": api})
    figures.add(Figure(label, round(held, 1), round(ready, 2), round(converged, 2), sampler.above, sampler.below,
                       {"declared_down_s": round(down_s, 2)}))
    # the lost tasks' containers are stopped and removed by the agent that came back (their stop
    # runs beside the replacements' start, so it may end after the service has converged)
    wait_until(lambda: not [c for c in cluster.containers(node=name) if c.labels["corral.task"] in lost], 20, 0.2,
               what=f"the lost tasks' containers on {name} to be removed")
    assert ready < BACK_WITHIN, f"{name} took {ready:.1f}s to be ready again"


def test_a_stopped_or_cut_off_agent_comes_back_by_itself(cluster: ChaosCluster, tmp_path: Path) -> None:
    figures = Figures(tmp_path / "figures.json")
    cluster.deploy_stack(web=6, api=2)
    with Sampler(cluster, "app_web") as sampler:
        _survive(cluster, sampler, figures, "agent SIGSTOP", "node-1", stopped(cluster, "node-1"), api=3)
        _survive(cluster, sampler, figures, "agent partition", "node-2", cluster.partition("node-2"), api=1)

    # Both nodes take work again: no acknowledged write lost, nothing doubled.
    assert cluster.api("GET", "/v1/services/app_api")["replicas"] == 1
    cluster.scale("app_web", 9)
    cluster.wait_settled({"app_web": 9, "app_api": 1})
    assert {t["node"] for t in cluster.live_tasks("app_web")} == {"node-1", "node-2", "node-3"}
