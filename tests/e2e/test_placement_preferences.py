"""Placement preferences and anti-affinity on real containers: spread over zones, services kept apart, and why not."""

from collections import Counter

from tests.e2e.cluster import Cluster, wait_until

STACK = """
services:
  web:
    image: corral-demo:latest
    stop_grace_period: 1s
    deploy:
      replicas: 4
      placement: {preferences: [{spread: node.labels.zone}]}
  db:
    image: corral-demo:latest
    stop_grace_period: 1s
    deploy: {replicas: 2}
    x-corral-anti-affinity: [{service: db}, {service: app}]
  app:
    image: corral-demo:latest
    stop_grace_period: 1s
    deploy: {replicas: 1}
    x-corral-anti-affinity: [{service: db}, {service: app}]
"""


def test_spread_over_zones_and_anti_affinity_with_its_pending_reason(cluster: Cluster, compose_file) -> None:
    nodes = sorted(n["name"] for n in cluster.cli_json("node", "ls"))
    zones = dict(zip(nodes, ["a", "a", "b"]))
    for name, zone in zones.items():
        cluster.cli("node", "label", name, f"zone={zone}")
    cluster.cli("deploy", "-c", str(compose_file(STACK)), "--name", "ops")

    web = cluster.wait_running("ops_web", 4)
    assert Counter(zones[t["node"]] for t in web) == {"a": 2, "b": 2}, web
    assert Counter(t["node"] for t in web)[nodes[2]] == 2, "zone b is one node: it takes both"

    db = cluster.wait_running("ops_db", 2)
    app = cluster.wait_running("ops_app", 1)
    used = [t["node"] for t in db + app]
    assert len(set(used)) == 3, f"db and app never share a node: {used}"

    # One more app replica has nowhere to go: it waits, and says why.
    cluster.cli("service", "scale", "ops_app=2")

    def pending() -> dict | None:
        waiting = [t for t in cluster.cli_json("service", "ps", "ops_app") if t["state"] == "pending"]
        return waiting[0] if waiting else None

    task = wait_until(pending, 30, what="the second app replica to be pending")
    assert "runs ops_db (anti-affinity)" in task["error"] and "runs ops_app (anti-affinity)" in task["error"], task["error"]
    assert "ops_app" in cluster.cli("service", "ps", "ops_app").stdout and "anti-affinity" in cluster.cli("service", "ps", "ops_app").stdout
    assert len(cluster.running_tasks("ops_app")) == 1
    # Scaled back, nothing waits any more.
    cluster.cli("service", "scale", "ops_app=1")
    wait_until(lambda: pending() is None, 30, what="the pending replica to go")
