"""Health management with real faults: nodes, containers, health checks, and corral's own processes die.

Each test runs a manager and one agent per node as separate processes
(tests/e2e/split.py), injects one fault with SIGKILL or `docker kill`, and
checks the final state: every replica running exactly once, nothing lost,
nothing doubled.
"""

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import docker
import httpx
import pytest

from tests.e2e.cluster import wait_until
from tests.e2e.split import SplitCluster

WEB = """
services:
  web:
    image: corral-demo:latest
    ports: ["8080"]
    stop_grace_period: 1s
    deploy:
      replicas: {replicas}
      restart_policy: {{condition: any, delay: 0s}}
"""


@pytest.fixture
def split(tmp_path: Path) -> Iterator[SplitCluster]:
    cluster = SplitCluster(tmp_path / "cluster", nodes=3, first_address=40)
    try:
        yield cluster.start()
    finally:
        cluster.cleanup()


def one_task_per_slot(tasks: list[dict]) -> None:
    live = Counter(t["slot"] for t in tasks if t["desired_state"] == "running" and t["state"] not in ("complete", "failed", "shutdown", "rejected", "lost", "orphaned"))
    assert all(n == 1 for n in live.values()), f"a slot with two live tasks: {live}"


def serving(tasks: list[dict]) -> bool:
    return all(httpx.get(f"http://{t['address']}/", timeout=3).status_code == 200 for t in tasks)


def test_node_killed_its_replicas_move_and_it_comes_back_clean(split: SplitCluster, compose_file) -> None:
    split.deploy(compose_file(WEB.format(replicas=6)), "app")
    before = split.wait_converged("app_web", 6)
    assert Counter(t["node"] for t in before) == {"node-1": 2, "node-2": 2, "node-3": 2}

    killed_at = time.monotonic()
    split.kill_node("node-1")
    after = wait_until(
        lambda: (tasks := split.converged("app_web", 6)) and all(t["node"] != "node-1" for t in tasks) and tasks,
        30, 0.2, what="6 replicas off node-1",
    )
    recovery = time.monotonic() - killed_at
    assert recovery < 15, f"recovery took {recovery:.1f}s"
    assert serving(after)
    node = split.api("GET", "/v1/nodes/node-1")
    assert (node["state"], node["health"]) == ("down", "down")
    lost = [t for t in split.tasks("app_web") if t["state"] == "lost"]
    assert len(lost) == 2 and all(t["node"] == "node-1" and "node-1 is down" in t["error"] for t in lost)
    one_task_per_slot(split.tasks("app_web"))

    # The node comes back: the containers of its replaced tasks are removed, and it takes new work.
    split.start_agent("node-1")
    wait_until(lambda: split.api("GET", "/v1/nodes/node-1")["state"] == "ready", 60, what="node-1 ready")
    wait_until(lambda: not split.containers(node="node-1"), 20, what="node-1's old containers removed")
    split.deploy(compose_file(WEB.format(replicas=9)), "app")
    final = split.wait_converged("app_web", 9)
    assert Counter(t["node"] for t in final)["node-1"] == 3
    one_task_per_slot(split.tasks("app_web"))


def test_killed_container_is_replaced_and_counted(split: SplitCluster, compose_file) -> None:
    split.deploy(compose_file(WEB.format(replicas=2)), "app")
    [victim, _] = split.wait_converged("app_web", 2)
    docker.from_env().containers.get(victim["container_id"]).kill()
    tasks = wait_until(
        lambda: (t := split.converged("app_web", 2)) and victim["id"] not in {x["id"] for x in t} and t, 20, 0.2,
        what="a replacement",
    )
    [replacement] = [t for t in tasks if t["slot"] == victim["slot"]]
    assert replacement["attempt"] == victim["attempt"] + 1
    [dead] = [t for t in split.tasks("app_web") if t["id"] == victim["id"]]
    assert (dead["state"], dead["exit_code"], dead["error"]) == ("failed", 137, "exited with code 137")
    ps = split.cli("service", "ps", "--all", "app_web")
    assert "exited with code 137" in ps
    one_task_per_slot(split.tasks("app_web"))


CRASH = """
services:
  crash:
    image: corral-demo:latest
    command: ["sh", "-c", "exit 3"]
    deploy:
      replicas: 1
      restart_policy: {condition: on-failure, delay: 0s}
"""


def test_crash_loop_backs_off_and_shows_the_exit_code(split: SplitCluster, compose_file) -> None:
    split.deploy(compose_file(CRASH), "app")
    time.sleep(10)
    tasks = split.tasks("app_crash")
    attempts = max(t["attempt"] for t in tasks) + 1
    # Without back-off a container that exits at once restarts many times in 10 s; with it: 0, 1, 2, 4 s waits.
    assert 2 <= attempts <= 7, f"{attempts} attempts in 10s"
    failed = [t for t in tasks if t["state"] == "failed"]
    assert failed and all(t["exit_code"] == 3 and t["error"] == "exited with code 3" for t in failed)
    one_task_per_slot(tasks)


HEALTHY = """
services:
  web:
    image: corral-demo:latest
    ports: ["8080"]
    x-corral-healthcheck:
      http: {port: 8080, path: /index.html}
      interval: 1s
      timeout: 1s
      retries: 2
    deploy:
      replicas: 2
      restart_policy: {condition: any, delay: 0s}
  checked:
    image: corral-demo:latest
    healthcheck:
      test: ["CMD", "test", "-f", "/www/index.html"]
      interval: 1s
      retries: 2
  never:
    image: corral-demo:latest
    x-corral-healthcheck:
      tcp: {port: 9999}
      interval: 1s
      retries: 1
      start_period: 2s
      start_interval: 0.5s
    deploy:
      restart_policy: {condition: any, delay: 1s}
"""


def test_health_checks_gate_running_and_replace_the_unhealthy(split: SplitCluster, compose_file) -> None:
    split.deploy(compose_file(HEALTHY), "app")
    web = split.wait_converged("app_web", 2)
    split.wait_converged("app_checked", 1)

    # Break one replica's health: its page goes away; it is stopped and replaced.
    victim = web[0]
    docker.from_env().containers.get(victim["container_id"]).exec_run(["rm", "/www/index.html"])
    wait_until(
        lambda: (t := split.converged("app_web", 2)) and victim["id"] not in {x["id"] for x in t}, 30, 0.2,
        what="the unhealthy replica replaced",
    )
    [dead] = [t for t in split.tasks("app_web") if t["id"] == victim["id"]]
    assert dead["state"] == "failed" and dead["error"].startswith("health check failed 2 times in a row: GET http://")
    assert "HTTP 404" in dead["error"]

    # A task whose check never passes never counts as running, and is replaced with back-off.
    def never_failed() -> list[dict]:
        return [t for t in split.tasks("app_never") if t["state"] == "failed"]

    failed = wait_until(never_failed, 30, 0.5, what="the never-healthy task to fail")
    assert "connect" in failed[0]["error"] and failed[0]["error"].startswith("health check failed 1 times in a row")
    assert not [t for t in split.tasks("app_never") if t["state"] == "running"]
    one_task_per_slot(split.tasks("app_web"))


def test_manager_killed_changes_nothing_running(split: SplitCluster, compose_file) -> None:
    split.deploy(compose_file(WEB.format(replicas=3)), "app")
    before = split.wait_converged("app_web", 3)
    split.kill_manager()
    time.sleep(2)
    assert serving(before)  # the data plane does not need the control plane
    split.start_manager()
    time.sleep(4)  # longer than a lease: every node must have stayed up
    after = split.wait_converged("app_web", 3)
    assert {(t["id"], t["container_id"]) for t in after} == {(t["id"], t["container_id"]) for t in before}
    assert len(split.tasks("app_web")) == 3  # no task created, lost or restarted
    assert all(n["state"] == "ready" for n in split.api("GET", "/v1/nodes"))


@pytest.fixture
def long_lease(tmp_path: Path) -> Iterator[SplitCluster]:
    # "a restart within the lease": a lease long enough that a loaded test machine restarts the agent within it
    cluster = SplitCluster(tmp_path / "cluster", nodes=3, first_address=40, manager_args=["--node-lease", "20"])
    try:
        yield cluster.start()
    finally:
        cluster.cleanup()


def test_agent_killed_and_restarted_adopts_its_containers(long_lease: SplitCluster, compose_file) -> None:
    split = long_lease
    split.deploy(compose_file(WEB.format(replicas=6)), "app")
    before = split.wait_converged("app_web", 6)
    started = {c.id: c.attrs["State"]["StartedAt"] for c in split.running_containers(service="app_web")}
    split.kill_agent("node-2")
    # While it is away (within its lease) the service shrinks: a task on node-2 must go.
    split.deploy(compose_file(WEB.format(replicas=5)), "app")
    split.start_agent("node-2")
    after = split.wait_converged("app_web", 5, timeout=30)
    assert {t["id"] for t in after} < {t["id"] for t in before}  # nothing new started
    still = {c.id: c.attrs["State"]["StartedAt"] for c in split.running_containers(service="app_web")}
    assert all(started[cid] == at for cid, at in still.items())  # none restarted
    assert not [t for t in split.tasks("app_web") if t["state"] == "lost"]


GRACE = """
services:
  polite:
    image: corral-demo:latest
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.2; done"]
    stop_grace_period: 10s
  stubborn:
    image: corral-demo:latest
    command: ["sh", "-c", "trap '' TERM; while true; do sleep 0.2; done"]
    stop_grace_period: 2s
"""


def test_graceful_stop_sigterm_then_sigkill_after_the_grace_period(split: SplitCluster, compose_file) -> None:
    split.deploy(compose_file(GRACE), "app")
    split.wait_converged("app_polite", 1)
    split.wait_converged("app_stubborn", 1)
    # A new version replaces both tasks; the old ones stay in the history with how they ended.
    split.deploy(compose_file(GRACE.replace("    stop_grace_period", "    environment: {V: '2'}\n    stop_grace_period")), "app")
    t0 = time.monotonic()
    polite = wait_until(lambda: [t for t in split.tasks("app_polite") if t["state"] == "shutdown"], 20, 0.2, what="polite stopped")
    polite_took = time.monotonic() - t0
    stubborn = wait_until(lambda: [t for t in split.tasks("app_stubborn") if t["state"] == "shutdown"], 20, 0.2, what="stubborn stopped")
    stubborn_took = time.monotonic() - t0
    assert polite_took < 5 and polite[0]["exit_code"] == 0
    assert "exited on SIGTERM" in polite[0]["error"]
    assert stubborn_took > polite_took and stubborn[0]["exit_code"] == 137
    assert "killed after the 2s stop grace period" in stubborn[0]["error"]
