"""Named volumes and bind mounts on real containers: data that outlives its container, and stays on its node.

One cluster of separate processes (tests/e2e/split.py), so the manager and a
whole node can be killed; one long test walks a database-like service through
everything that replaces its task and checks each time that the replacement,
on the same node, reads what the first one wrote.
"""

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from tests.e2e.cluster import CORRAL, wait_until
from tests.e2e.split import SplitCluster
from tests.tls import cli_env

DB = """
services:
  db:
    image: corral-demo:latest
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.2; done"]
    stop_grace_period: 1s
    volumes:
      - data:/data
      - type: tmpfs
        target: /scratch
        tmpfs: {size: 1m}
    deploy:
      replicas: 2
      restart_policy: {condition: any, delay: 0s}
volumes:
  data:
    labels: {purpose: e2e}
"""

BIND = """
services:
  writer:
    image: corral-demo:latest
    command: ["sh", "-c", "echo hello > /host/out; trap 'exit 0' TERM; while true; do sleep 0.2; done"]
    stop_grace_period: 1s
    volumes: ["{path}:/host"]
"""


@pytest.fixture
def allowed(tmp_path: Path) -> Path:
    path = tmp_path / "allowed"
    path.mkdir()
    return path


@pytest.fixture
def split(tmp_path: Path, allowed: Path) -> Iterator[SplitCluster]:
    cluster = SplitCluster(tmp_path / "cluster", nodes=3, first_address=70, manager_args=["--allow-bind", str(allowed)])
    try:
        yield cluster.start()
    finally:
        cluster.cleanup()  # containers and volumes by the cluster's label


def run_cli(split: SplitCluster, *args: str) -> subprocess.CompletedProcess:
    """`corral ARGS` that may fail: the finished process."""
    env = cli_env(split.url, split.data_dir / "manager")  # its URL, CA and admin token
    return subprocess.run([*CORRAL, *args], env=env, capture_output=True, text=True, timeout=60)


def slot_task(split: SplitCluster, service: str, slot: int) -> dict | None:
    """The running task of the slot whose container runs, if there is one."""
    for task in split.live_tasks(service):
        if task["slot"] == slot and any(c.id == task["container_id"] for c in split.running_containers(service=service)):
            return task
    return None


def read(task: dict, path: str) -> str:
    container = docker.from_env().containers.get(task["container_id"])
    code, output = container.exec_run(["cat", path])
    return output.decode().strip() if code == 0 else f"<cat failed {code}: {output.decode().strip()}>"


def write(task: dict, path: str, text: str) -> None:
    container = docker.from_env().containers.get(task["container_id"])
    code, output = container.exec_run(["sh", "-c", f"echo {text} > {path}"])
    assert code == 0, output


def replaced(split: SplitCluster, slot: int, old: dict, what: str, timeout: float = 60, version: int = 0) -> dict:
    """Wait for a new running task in `slot` (not `old`, at least at `version`), and check it runs on old's node."""
    task = wait_until(
        lambda: (t := slot_task(split, "shop_db", slot)) and t["id"] != old["id"] and t["version"] >= version and t,
        timeout, 0.3, what=what,
    )
    assert task["node"] == old["node"], f"{what}: slot {slot} moved from {old['node']} to {task['node']}"
    return task  # type: ignore[no-any-return]


def test_a_slot_keeps_its_data_on_its_node_through_every_replacement(split: SplitCluster, compose_file, allowed: Path) -> None:
    split.deploy(compose_file(DB), "shop")
    first = {t["slot"]: t for t in split.wait_converged("shop_db", 2)}
    for slot, task in first.items():
        write(task, "/data/marker", f"slot-{slot}")
    assert read(first[1], "/data/marker") == "slot-1"
    # tmpfs mounted, with its size
    mounts = docker.from_env().containers.get(first[1]["container_id"]).attrs["Mounts"]
    assert {m["Type"] for m in mounts} == {"volume", "tmpfs"}

    # the records: one volume per slot, on the slot's node; the engine's volumes labelled as corral's
    listed = json.loads(split.cli("volume", "ls", "--output", "json"))
    assert sorted((v["name"], v["node"], v["stack"], v["service"], v["slot"]) for v in listed) == sorted(
        (f"shop_data.{slot}", task["node"], "shop", "shop_db", slot) for slot, task in first.items()
    )
    assert all(v["in_use_by"] == [first[v["slot"]]["id"]] for v in listed)
    engine = {v.name: v.attrs["Labels"] for v in docker.from_env().volumes.list(filters={"label": f"corral.cluster={split.cluster_id}"})}
    assert set(engine) == {"shop_data.1", "shop_data.2"}
    assert engine["shop_data.1"]["corral.node"] == first[1]["node"] and engine["shop_data.1"]["purpose"] == "e2e"

    # 1. its container is killed: the replacement, on the same node, reads the file
    docker.from_env().containers.get(first[1]["container_id"]).kill()
    after_kill = replaced(split, 1, first[1], "slot 1 replaced after docker kill")
    assert read(after_kill, "/data/marker") == "slot-1"

    # 2. an update replaces every task: each on its node, with its data
    split.cli("service", "update", "shop_db", "--env", "VERSION=2")
    updated = replaced(split, 1, after_kill, "slot 1 updated", version=after_kill["version"] + 1)
    assert read(updated, "/data/marker") == "slot-1"
    slot2 = replaced(split, 2, first[2], "slot 2 updated", version=after_kill["version"] + 1)
    assert read(slot2, "/data/marker") == "slot-2"

    # 3. a manager restart, then a crash decided by the new manager: still the same node
    split.kill_manager()
    split.start_manager()
    wait_until(lambda: slot_task(split, "shop_db", 1), 30, what="the restarted manager to see slot 1")
    docker.from_env().containers.get(updated["container_id"]).kill()
    after_restart = replaced(split, 1, updated, "slot 1 replaced after a manager restart")
    assert read(after_restart, "/data/marker") == "slot-1"

    # 4. the volume's node dies: the slot waits with the reason, and nothing starts empty elsewhere
    node = after_restart["node"]
    split.kill_node(node)
    reason = f"volume shop_data.1 is on {node}, which is down"
    pending = wait_until(
        lambda: [t for t in split.tasks("shop_db") if t["slot"] == 1 and t["state"] == "pending" and t["error"] == reason],
        60, 0.3, what="slot 1 pending with the volume's reason",
    )
    assert pending
    assert not [t for t in split.tasks("shop_db") if t["slot"] == 1 and t["state"] in ("assigned", "starting", "running") and t["desired_state"] == "running"]
    ps = split.cli("service", "ps", "shop_db")
    assert reason in ps
    # ... and comes back with its data when the node returns
    split.start_agent(node)
    back = replaced(split, 1, after_restart, "slot 1 back on its node", timeout=90)
    assert read(back, "/data/marker") == "slot-1"

    # 5. a volume in use cannot be removed; stack rm keeps volumes; a redeploy finds its data
    refused = run_cli(split, "volume", "rm", "shop_data.1")
    assert refused.returncode != 0 and "in use" in refused.stderr, refused
    split.cli("stack", "rm", "shop")
    wait_until(lambda: not split.containers(service="shop_db"), 30, what="the stack's containers gone")
    assert {v["name"] for v in json.loads(split.cli("volume", "ls", "--output", "json"))} == {"shop_data.1", "shop_data.2"}
    split.deploy(compose_file(DB), "shop")
    again = {t["slot"]: t for t in split.wait_converged("shop_db", 2)}
    assert again[1]["node"] == back["node"] and read(again[1], "/data/marker") == "slot-1"
    assert again[2]["node"] == slot2["node"] and read(again[2], "/data/marker") == "slot-2"

    # 6. stack rm --volumes: the nodes remove them once the containers are gone, and the records go
    split.cli("stack", "rm", "shop", "--volumes")
    wait_until(lambda: not json.loads(split.cli("volume", "ls", "--output", "json")), 60, 0.5, what="the volumes removed")
    assert not docker.from_env().volumes.list(filters={"label": f"corral.cluster={split.cluster_id}"})

    # 7. bind mounts: refused outside --allow-bind, naming the path and the option; inside, they work
    outside = run_cli(split, "deploy", "-c", str(compose_file(BIND.format(path="/etc"), "bind.yaml")), "--name", "host")
    assert outside.returncode != 0
    assert "/etc" in outside.stderr and "--allow-bind" in outside.stderr, outside.stderr
    assert not json.loads(split.cli("service", "ls", "--output", "json"))  # nothing deployed
    split.deploy(compose_file(BIND.format(path=allowed), "bind.yaml"), "host")
    split.wait_converged("host_writer", 1)
    wait_until(lambda: (allowed / "out").read_text().strip() == "hello", 20, what="the bind mount written")
