"""Three managers on a real three-member etcd, real agents and containers: SIGKILL the leader while a client
deploys in a loop through the other managers. Every acknowledged deploy is there afterwards, no container is
restarted, no node is declared down, and a new leader acts (a replica killed after the failover is replaced)."""

import json
import threading
import time
from pathlib import Path

import docker
import httpx

from tests.e2e.cluster import wait_until
from tests.e2e.control_plane import ControlPlane, ManagerProcess
from tests.e2e.test_lifecycle import ONE as WEB  # two replicas of the demo image, port 8080

EMPTY = "services:\n  idle:\n    image: corral-demo:latest\n    deploy: {replicas: 0}\n"


def test_sigkill_of_the_leader_loses_nothing_and_a_new_one_acts(tmp_path: Path) -> None:
    plane = ControlPlane.create(tmp_path / "plane", etcd_members=3)
    try:
        first = plane.start_manager("m1")
        managers = [first, plane.start_manager("m2", seed=first), plane.start_manager("m3", seed=first)]
        listing = wait_until(lambda: _one_leader(plane, managers), 20, what="one leader among three healthy managers")
        for address, name in (("127.0.0.61", "box-1"), ("127.0.0.62", "box-2")):
            plane.start_agent(first, name, address, managers=managers)
        wait_until(lambda: len(plane.api(first, "GET", "/v1/nodes")) == 2, 30, what="two agents")
        compose = tmp_path / "web.yaml"
        compose.write_text(WEB)
        plane.cli(managers, "deploy", "-c", str(compose), "--name", "shop")

        def running(through: ManagerProcess, count: int) -> list[dict] | None:
            tasks = [t for t in plane.api(through, "GET", "/v1/services/shop_web/tasks")
                     if t["state"] == "running" and t["desired_state"] == "running"]
            live = [c for c in _containers(plane) if c.status == "running"]
            return tasks if len(tasks) == count and len(live) == count else None

        wait_until(lambda: running(first, 2), 60, 0.5, what="2 running tasks")
        containers = {c.id for c in _containers(plane)}
        leader = next(m for m in managers if m.name == next(r["name"] for r in listing if r["leader"]))
        others = [m for m in managers if m is not leader]

        # A client deploys in a loop through the other two managers while the leader is SIGKILLed.
        empty = tmp_path / "empty.yaml"
        empty.write_text(EMPTY)
        acked: list[str] = []
        stop = threading.Event()

        def deploy_loop() -> None:
            i = 0
            while not stop.is_set() and i < 200:
                name = f"loop{i}"
                if plane.cli(others, "deploy", "-c", str(empty), "--name", name, check=False).returncode == 0:
                    acked.append(name)
                i += 1

        loop = threading.Thread(target=deploy_loop)
        loop.start()
        try:
            wait_until(lambda: len(acked) >= 3, 30, 0.1, what="deploys before the failover")
            plane.kill(leader)
            killed_at = time.monotonic()
            new = wait_until(lambda: _one_leader(plane, others, dead=leader), 15, 0.1, what="a new leader")
            takeover = time.monotonic() - killed_at
            count = len(acked)
            wait_until(lambda: len(acked) >= count + 3, 30, 0.1, what="deploys after the failover")
        finally:
            stop.set()
            loop.join(60)
        print(f"takeover {takeover:.2f}s by {new}; {len(acked)} deploys acknowledged")
        assert takeover < 5.0, takeover  # the lease is 2 s; the goal is 3 s (bench/failover.py measures it)

        # Every acknowledged deploy is there, seen through either survivor.
        for survivor in others:
            services = {s["name"] for s in plane.api(survivor, "GET", "/v1/services")}
            assert {f"{name}_idle" for name in acked} <= services
        # No container was restarted, no node declared down, the agents talk to the new leader.
        assert {c.id for c in _containers(plane) if c.status == "running"} == containers
        nodes = plane.api(others[0], "GET", "/v1/nodes")
        assert [n["state"] for n in nodes] == ["ready", "ready"]
        # The new leader acts: a replica killed now is replaced.
        victim = next(iter(_containers(plane)))
        victim.kill()
        after = wait_until(lambda: running(others[0], 2), 60, 0.5, what="the killed replica replaced")
        assert victim.id not in {c.id for c in _containers(plane) if c.status == "running"}
        for task in after:
            assert httpx.get(f"http://{task['address']}/", timeout=5).status_code == 200
        shown = json.loads(plane.cli(others, "manager", "ls", "--output", "json").stdout)
        assert {(m["name"], m["leader"], m["healthy"]) for m in shown} == {
            (leader.name, False, False), *((m.name, m.name == new, True) for m in others)
        }
    finally:
        plane.cleanup()


def _one_leader(plane: ControlPlane, managers: list[ManagerProcess], dead: ManagerProcess | None = None) -> list[dict] | str | None:
    """Through each of `managers`: the listing when every one of them is healthy and exactly one leads (with `dead`:
    the new leader's name, once one of `managers` leads)."""
    for through in managers:
        rows = plane.api(through, "GET", "/v1/managers")
        leaders = [r["name"] for r in rows if r["leader"] and r["healthy"]]
        if len(leaders) != 1 or any(not r["healthy"] for r in rows if dead is None or r["name"] != dead.name):
            return None
    return leaders[0] if dead is not None else rows


def _containers(plane: ControlPlane) -> list:
    return docker.from_env().containers.list(all=True, filters={"label": [f"corral.cluster={plane.cluster_id}", "corral.service=shop_web"]}, ignore_removed=True)
