"""The manager stalled (SIGSTOP past every lease) and killed in the middle of deploys (SIGKILL).

A stall of the manager declares nobody dead (its loop-lag monitor extends every lease by
the stall); a killed manager, restarted, has every write it acknowledged, and no replica
runs twice. Each asserts: replicas converge to exactly the wanted count, every node alive
is `ready`, no acknowledged write lost.
"""

import threading
import time
from pathlib import Path

import pytest

import httpx

from tests.chaos.harness import GRACE, HOLD, LEASE, ChaosCluster, Figure, Figures, Sampler, live_slots
from tests.e2e.cluster import wait_until
from tests.e2e.split import SplitCluster

pytestmark = pytest.mark.e2e

ONE = "services:\n  s:\n    image: corral-demo:latest\n    stop_grace_period: 1s\n    deploy: {replicas: 2}\n"


class Deployer(threading.Thread):
    """Deploys stacks d1, d2... one after another until the manager stops answering; remembers which were acknowledged."""

    def __init__(self, cluster: SplitCluster) -> None:
        super().__init__(daemon=True)
        self.cluster = cluster
        self.acknowledged: list[str] = []
        self.tried: list[str] = []

    def run(self) -> None:
        for i in range(1, 40):
            stack = f"d{i}"
            self.tried.append(stack)
            try:
                response = self.cluster.request("POST", f"/v1/stacks/{stack}/deploy", {"compose": ONE}, timeout=5)
            except httpx.HTTPError:
                return
            if response.status_code != 200:
                return
            self.acknowledged.append(stack)


def test_a_stalled_or_killed_manager_loses_nothing_and_declares_nobody_dead(cluster: ChaosCluster, tmp_path: Path) -> None:
    figures = Figures(tmp_path / "figures.json")
    cluster.deploy_stack(web=6, api=1)
    tasks_before = {t["id"] for t in cluster.tasks("app_web")}

    with Sampler(cluster, "app_web") as sampler:
        # 1. The manager does not run for longer than every lease and grace.
        sampler.expect(6)
        began = time.monotonic()
        cluster.pause(cluster.manager)
        time.sleep(HOLD)
        cluster.resume(cluster.manager)
        ended = time.monotonic()
        held = ended - began
        converged = cluster.wait_settled({"app_web": 6, "app_api": 1})
        # nobody is declared down, now or in the next lease and grace
        seen = cluster.states_for(LEASE + GRACE + 1 - (time.monotonic() - ended))
        assert seen == {"ready"}, f"node states seen after the stall: {seen}"
        assert not [t for t in cluster.tasks("app_web") if t["state"] == "lost"]
        assert {t["id"] for t in cluster.tasks("app_web")} == tasks_before  # nothing replaced
        assert b"did not run for" in (cluster.data_dir / "cluster.log").read_bytes()
        figures.add(Figure("manager SIGSTOP", round(held, 1), None, round(converged, 2), sampler.above, sampler.below,
                           {"nodes_declared_down": 0}))

        # 2. SIGKILL in the middle of a run of deploys, then start it again.
        sampler.expect(6)
        deployer = Deployer(cluster)
        deployer.start()
        wait_until(lambda: len(deployer.acknowledged) >= 4, 30, 0.05, what="4 deploys acknowledged")
        began = time.monotonic()
        cluster.kill_manager()
        deployer.join(10)
        cluster.start_manager()
        restarted = time.monotonic()
        acknowledged = list(deployer.acknowledged)
        services = {name["name"]: name["replicas"] for name in cluster.api("GET", "/v1/services")}
        for stack in acknowledged:
            assert services.get(f"{stack}_s") == 2, f"acknowledged deploy of {stack} lost: {services}"
        # whatever was stored (the acknowledged ones, maybe the one in flight) converges, once each
        wanted = {name: count for name, count in services.items()}
        cluster.wait_settled(wanted, timeout=90)
        for name, count in wanted.items():
            assert len(cluster.running_containers(service=name)) == count
            assert max(live_slots(cluster.tasks(name)).values()) == 1
        figures.add(Figure("manager SIGKILL mid-deploy", round(restarted - began, 1), None,
                           round(time.monotonic() - restarted, 2), sampler.above, sampler.below,
                           {"deploys_acknowledged": len(acknowledged), "deploys_stored": sum(name.startswith("d") for name in wanted),
                            "services_converged": len(wanted)}))
        assert set(cluster.node_states().values()) == {"ready"}
