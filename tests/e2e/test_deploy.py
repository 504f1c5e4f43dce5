"""Deploying a compose file to a real three-node cluster, and steering it."""

import json
import os
import subprocess
import time
from collections import Counter

import httpx

from tests.e2e.cluster import CORRAL, Cluster, wait_until

WEB = """
services:
  web:
    image: corral-demo:latest
    ports: ["8080"]
    environment: {GREETING: hello}
    labels: {team: blue}
    stop_grace_period: 1s
    deploy:
      replicas: 3
      resources:
        limits: {cpus: "0.5", memory: 64m}
        reservations: {cpus: "0.1", memory: 16m}
"""


def test_deploy_spreads_replicas_and_serves(cluster: Cluster, compose_file) -> None:
    out = cluster.cli("deploy", "-c", str(compose_file(WEB)), "--name", "shop")
    assert "Created service shop_web" in out.stdout
    tasks = cluster.wait_running("shop_web", 3)

    # spread: one replica per node, each on its node's address
    assert sorted(t["node"] for t in tasks) == ["node-1", "node-2", "node-3"]
    nodes = {n["name"]: n for n in cluster.cli_json("node", "ls")}
    for task in tasks:
        assert set(task) >= {"id", "service", "slot", "node", "desired_state", "state", "container_id", "image", "error", "address"}
        host, port = task["address"].split(":")
        assert host == nodes[task["node"]]["address"]
        assert httpx.get(f"http://{task['address']}/", timeout=5).status_code == 200

    # real containers, labelled and limited as the spec says
    containers = cluster.containers(service="shop_web")
    assert len(containers) == 3
    for container in containers:
        labels = container.labels
        assert labels["corral.stack"] == "shop" and labels["team"] == "blue"
        assert labels["corral.task"] in {t["id"] for t in tasks}
        assert container.attrs["HostConfig"]["NanoCpus"] == 500_000_000
        assert container.attrs["HostConfig"]["Memory"] == 64 * 1024 * 1024
        assert "GREETING=hello" in container.attrs["Config"]["Env"]

    # node listing shows the reservations
    for node in nodes.values():
        assert {"name", "address", "state", "availability", "labels", "resources"} <= set(node)
        assert node["state"] == "ready" and node["availability"] == "active"
    wait_until(lambda: all(n["reserved"]["cpus"] == 0.1 for n in cluster.cli_json("node", "ls")), 10, what="reservations")

    # a second deploy of the same file changes nothing
    again = cluster.cli("deploy", "-c", str(compose_file(WEB)), "--name", "shop")
    assert "Unchanged service shop_web" in again.stdout
    assert {t["id"] for t in cluster.running_tasks("shop_web")} == {t["id"] for t in tasks}


def test_scale_up_and_down(cluster: Cluster, compose_file) -> None:
    cluster.cli("deploy", "-c", str(compose_file(WEB)), "--name", "shop")
    cluster.wait_running("shop_web", 3)
    cluster.cli("service", "scale", "shop_web=6")
    tasks = cluster.wait_running("shop_web", 6)
    assert Counter(t["node"] for t in tasks) == {"node-1": 2, "node-2": 2, "node-3": 2}
    assert sorted(t["slot"] for t in tasks) == [1, 2, 3, 4, 5, 6]

    cluster.cli("service", "scale", "shop_web=1")
    tasks = cluster.wait_running("shop_web", 1)
    wait_until(lambda: len(cluster.containers(service="shop_web")) == 1, 30, what="scaled-down containers removed")
    assert tasks[0]["slot"] == 1


def test_drain_moves_tasks_and_activate_takes_new_ones(cluster: Cluster, compose_file) -> None:
    cluster.cli("deploy", "-c", str(compose_file(WEB)), "--name", "shop")
    cluster.wait_running("shop_web", 3)
    cluster.cli("node", "drain", "node-2")

    def moved() -> list[dict] | None:
        tasks = cluster.running_tasks("shop_web")
        return tasks if len(tasks) == 3 and all(t["node"] != "node-2" for t in tasks) else None

    tasks = wait_until(moved, 45, 0.5, what="tasks to leave node-2")
    assert sorted(t["slot"] for t in tasks) == [1, 2, 3]
    wait_until(lambda: not [c for c in cluster.containers(node="node-2") if c.status == "running"], 30, what="node-2 empty")
    node = json.loads(cluster.cli("node", "inspect", "node-2").stdout)
    assert node["availability"] == "drain"

    cluster.cli("node", "activate", "node-2")
    cluster.cli("service", "scale", "shop_web=6")
    tasks = cluster.wait_running("shop_web", 6)
    assert "node-2" in {t["node"] for t in tasks}


def test_stack_rm_leaves_no_container(cluster: Cluster, compose_file) -> None:
    two = WEB + """
  worker:
    image: corral-demo:latest
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
    deploy: {mode: global}
"""
    cluster.cli("deploy", "-c", str(compose_file(two)), "--name", "shop")
    cluster.wait_running("shop_web", 3)
    workers = cluster.wait_running("shop_worker", 3)
    assert sorted(t["node"] for t in workers) == ["node-1", "node-2", "node-3"]
    stacks = cluster.cli_json("stack", "ls")
    assert stacks == [{"name": "shop", "services": 2, "tasks": 6}]

    cluster.cli("stack", "rm", "shop")
    wait_until(lambda: cluster.containers() == [], 40, 0.5, what="every container of the stack removed")
    wait_until(lambda: cluster.api("GET", "/v1/tasks") == [], 20, what="tasks forgotten")
    assert cluster.cli_json("service", "ls") == []
    missing = cluster.cli("stack", "rm", "shop", check=False)
    assert missing.returncode == 1 and "not found" in missing.stderr


def test_task_that_fits_nowhere_is_pending_with_reason(cluster: Cluster, compose_file) -> None:
    big = """
services:
  big:
    image: corral-demo:latest
    deploy:
      resources: {reservations: {cpus: "64"}}
"""
    cluster.cli("deploy", "-c", str(compose_file(big)), "--name", "huge")

    def pending() -> dict | None:
        tasks = cluster.cli_json("service", "ps", "huge_big")
        return tasks[0] if tasks and tasks[0]["state"] == "pending" else None

    task = wait_until(pending, 20, what="a pending task")
    assert task["node"] is None
    assert "64" in task["error"] and "cpu" in task["error"] and "3 nodes" in task["error"]
    assert cluster.containers() == []


def test_events_stream_what_the_cluster_does(cluster: Cluster, compose_file) -> None:
    watcher = subprocess.Popen(
        [*CORRAL, "events", "--output", "json"], env=cluster.cli_env(),
        stdout=subprocess.PIPE, text=True,
    )
    try:
        time.sleep(1.0)  # let it connect: events are "from now on" by default
        cluster.cli("deploy", "-c", str(compose_file(WEB)), "--name", "shop")
        seen: list[dict] = []
        assert watcher.stdout is not None
        for line in watcher.stdout:
            seen.append(json.loads(line))
            if sum(1 for e in seen if e["type"] == "task" and e["action"] == "running") == 3:
                break
        kinds = {(e["type"], e["action"]) for e in seen}
        assert ("service", "create") in kinds and ("task", "create") in kinds
        assert any(e["action"] == "create" and "created, assigned to node-" in e["message"] for e in seen)
        assert any("shop_web" in e["message"] and "running on node-" in e["message"] for e in seen)
    finally:
        watcher.kill()
        watcher.wait()
