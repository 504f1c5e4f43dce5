"""Operating what runs, on real containers: `service logs` across nodes (tail, follow, a crashed task), `task logs`, `exec`."""

import json
import queue
import subprocess
import threading
import time

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.cluster import CORRAL, Cluster, wait_until
from tests.tls import admin_headers, verify

STACK = """
services:
  web:
    image: corral-demo:latest
    command: ["sh", "-c", "i=0; while true; do echo \\"tick $i from $(hostname)\\"; i=$((i+1)); sleep 0.3; done"]
    stop_grace_period: 1s
    deploy: {replicas: 3}
  crash:
    image: corral-demo:latest
    command: ["sh", "-c", "echo \\"last words of $(hostname)\\"; echo 'syntax error: unexpected (' >&2; exit 2"]
    deploy:
      replicas: 1
      restart_policy: {condition: on-failure, delay: 30s}
"""


def _reader(proc: subprocess.Popen) -> "queue.Queue[tuple[float, str]]":
    """Lines of a process's stdout with the time each arrived, read by a thread."""
    lines: queue.Queue[tuple[float, str]] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put((time.monotonic(), line.rstrip("\n")))

    threading.Thread(target=pump, daemon=True).start()
    return lines


def test_logs_of_every_replica_follow_crash_and_exec(cluster: Cluster, compose_file) -> None:
    cluster.cli("deploy", "-c", str(compose_file(STACK)), "--name", "ops")
    tasks = cluster.wait_running("ops_web", 3)
    slots = {t["slot"]: t for t in tasks}
    time.sleep(1.5)  # a few ticks each

    # --tail 3: three lines of each of the three replicas, each prefixed with its task and node
    shown = cluster.cli("service", "logs", "ops_web", "--tail", "3").stdout.splitlines()
    for slot, task in slots.items():
        prefix = f"ops_web.{slot}@{task['node']}"
        mine = [line for line in shown if line.startswith(prefix)]
        assert len(mine) == 3, shown
        assert all(" | tick " in line for line in mine), mine
    assert len(shown) == 9, shown

    # --output json keeps stdout and stderr apart; --no-prefix shows the bare lines; bad input is refused
    rows = [json.loads(line) for line in cluster.cli("service", "logs", "ops_web", "--tail", "1", "-o", "json").stdout.splitlines()]
    assert {r["name"] for r in rows} == {"ops_web.1", "ops_web.2", "ops_web.3"} and {r["stream"] for r in rows} == {"stdout"}
    assert all(r["time"].endswith("Z") for r in rows)
    bare = cluster.cli("service", "logs", "ops_web", "--tail", "1", "--no-prefix").stdout.splitlines()
    assert len(bare) == 3 and all(line.startswith("tick ") for line in bare)
    bad = cluster.cli("service", "logs", "ops_web", "--since", "yesterday-ish", check=False)
    assert bad.returncode == 1 and "--since" in bad.stderr
    missing = cluster.cli("service", "logs", "nosuch", check=False)
    assert missing.returncode == 1 and "not found" in missing.stderr

    # -f: a line a container prints appears within 1 s
    follower = subprocess.Popen(
        [*CORRAL, "service", "logs", "ops_web", "-f", "--tail", "0"], env=cluster.cli_env(),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        lines = _reader(follower)
        wait_until(lambda: not lines.empty(), 10, 0.05, what="the follow stream to start")
        container = next(c for c in cluster.containers(service="ops_web") if c.labels["corral.slot"] == "2")
        container.exec_run(["sh", "-c", "echo MARKER-42 > /proc/1/fd/1"])
        printed = time.monotonic()
        seen = None
        deadline = printed + 5
        while seen is None and time.monotonic() < deadline:
            at, line = lines.get(timeout=5)
            if "MARKER-42" in line:
                seen = (at, line)
        assert seen is not None, "the marker line never came"
        assert seen[1].startswith(f"ops_web.2@{slots[2]['node']} | MARKER-42")
        assert seen[0] - printed < 1.0, f"the line took {seen[0] - printed:.2f}s"
    finally:
        follower.terminate()
        follower.wait(10)

    # a crashed task: its last output, with its task name, stderr apart; its state says it failed
    wait_until(lambda: any(t["state"] == "failed" for t in cluster.cli_json("service", "ps", "ops_crash", "--all")), 30,
               what="the crash task to fail")
    crashed = cluster.cli("service", "logs", "ops_crash")
    assert any(line.startswith("ops_crash.1@node-") and "last words of" in line for line in crashed.stdout.splitlines()), crashed
    assert "syntax error: unexpected (" in crashed.stderr
    failed = next(t for t in cluster.cli_json("service", "ps", "ops_crash", "--all") if t["state"] == "failed")
    one = cluster.cli("task", "logs", failed["id"][:12], "-o", "json").stdout.splitlines()
    assert {json.loads(line)["stream"] for line in one} == {"stdout", "stderr"}

    # exec: cat in a replica returns its output and exit code; a failing command's exit code comes back
    hostname = cluster.cli("exec", "ops_web", "--slot", "3", "--", "cat", "/etc/hostname")
    assert hostname.returncode == 0
    container = next(c for c in cluster.containers(service="ops_web") if c.labels["corral.slot"] == "3")
    assert hostname.stdout.strip() == container.attrs["Config"]["Hostname"]
    absent = cluster.cli("exec", slots[1]["id"], "--", "cat", "/nonexistent", check=False)
    assert absent.returncode == 1 and "nonexistent" in absent.stderr
    assert cluster.cli("exec", "ops_web", "--", "sh", "-c", "exit 7", check=False).returncode == 7
    none = cluster.cli("exec", "ops_web", "--slot", "9", "--", "true", check=False)
    assert none.returncode == 1 and "no running task in slot 9" in none.stderr


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for f in text_string_to_metric_families(text) for s in f.samples}


def _node_metrics(cluster: Cluster, address: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return _samples(httpx.get(f"http://{address}:7071/metrics", timeout=10).text)


def test_metrics_of_manager_and_agents_follow_the_cluster(cluster: Cluster, compose_file) -> None:
    nodes = {n["name"]: n["address"] for n in cluster.api("GET", "/v1/nodes")}
    manager = _samples(httpx.get(cluster.url + "/metrics", timeout=10, verify=verify(cluster.data_dir), headers=admin_headers(cluster.data_dir)).text)
    assert manager[("corral_nodes", (("state", "ready"),))] == 3
    cluster.cli("deploy", "-c", str(compose_file(STACK.split("  crash:")[0])), "--name", "ops")
    tasks = cluster.wait_running("ops_web", 3)
    manager = _samples(httpx.get(cluster.url + "/metrics", timeout=10, verify=verify(cluster.data_dir), headers=admin_headers(cluster.data_dir)).text)
    assert manager[("corral_service_replicas_running", (("service", "ops_web"),))] == 3
    assert manager[("corral_tasks", (("state", "running"),))] == 3
    first = {t["id"]: _node_metrics(cluster, nodes[t["node"]]) for t in tasks}
    time.sleep(2)
    for task in tasks:
        labels = (("service", "ops_web"), ("slot", str(task["slot"])), ("task", task["id"]))
        before, after = first[task["id"]], _node_metrics(cluster, nodes[task["node"]])
        assert after[("corral_task_memory_working_set_bytes", labels)] > 0
        assert after[("corral_task_cpu_seconds_total", labels)] > before[("corral_task_cpu_seconds_total", labels)]
        assert after[("corral_container_starts_total", (("result", "started"),))] >= 1
        assert after[("corral_container_start_duration_seconds_count", ())] >= 1
    # `service top`: each running replica's CPU and memory, from its node's engine
    rows = cluster.cli_json("service", "top", "ops_web")
    assert sorted(r["name"] for r in rows) == ["ops_web.1", "ops_web.2", "ops_web.3"]
    assert all(r["memory_working_set"] > 0 and r["cpu_percent"] is not None and "error" not in r for r in rows), rows
