"""Rebalancing on real containers: a drained node activated again gets its share back, start-first,
with a client going through the routing mesh the whole time and never failing."""

import time
from collections import Counter

from tests.e2e.cluster import Cluster, free_port, wait_until
from tests.e2e.test_mesh import Load

STACK = """
services:
  web:
    image: corral-demo:latest
    command: ["sh", "-c", "hostname > /www/id.txt; exec httpd -f -p 8080 -h /www"]
    ports: ["{port}:8080"]
    stop_grace_period: 1s
    deploy:
      replicas: 6
      update_config: {{parallelism: 1}}
    x-corral-rebalance: {{cooldown: 5s}}
"""


def spread(cluster: Cluster) -> Counter[str]:
    live = [t for t in cluster.cli_json("service", "ps", "r_web") if t["desired_state"] == "running"]
    if len(live) != 6 or any(t["state"] != "running" for t in live):
        return Counter()  # a move or a replacement under way
    return Counter(t["node"] for t in live)


def test_activated_node_gets_its_replicas_back_with_no_failed_request(cluster: Cluster, compose_file) -> None:
    port = free_port()
    cluster.cli("deploy", "-c", str(compose_file(STACK.format(port=port))), "--name", "r")
    cluster.wait_running("r_web", 6)
    nodes = sorted(n["name"] for n in cluster.cli_json("node", "ls"))
    with Load(f"http://127.0.0.12:{port}/id.txt") as load:
        wait_until(lambda: load.total > 30, 20, what="load to start")
        cluster.cli("node", "drain", nodes[2])
        wait_until(lambda: spread(cluster) == {nodes[0]: 3, nodes[1]: 3}, 60, 0.5, what="the drain to move 2 replicas")
        time.sleep(6)  # past the cool-down of the replicas the drain started
        cluster.cli("node", "activate", nodes[2])
        began = time.monotonic()
        wait_until(lambda: spread(cluster) == {name: 2 for name in nodes}, 30, 0.5, what="2/2/2 again")
        took = time.monotonic() - began
        time.sleep(2)
    assert took <= 30
    assert load.failures == [], f"{len(load.failures)} failed of {load.total}: {load.failures[:3]}"
    assert load.total > 100
    moved = [t for t in cluster.cli_json("service", "ps", "r_web", "--all") if "(rebalance)" in t["error"]]
    assert len(moved) == 2, f"2 moves, the fewest that even it: {moved}"
    assert all(t["error"].startswith(f"moved to node {nodes[2]} (rebalance)") for t in moved), moved
    time.sleep(6)  # past the cool-down again: nothing more moves
    assert spread(cluster) == {name: 2 for name in nodes}
    assert len([t for t in cluster.cli_json("service", "ps", "r_web", "--all") if "(rebalance)" in t["error"]]) == 2
