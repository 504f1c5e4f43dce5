"""One manager with its store on a real etcd, real agents and real containers: deploy, serve, scale, replace a
dead container, and a SIGKILL of the manager that loses nothing (the state is in etcd, not the data dir)."""

import time
from pathlib import Path

import docker
import httpx

from tests.e2e.cluster import wait_until
from tests.e2e.control_plane import ControlPlane
from tests.e2e.test_lifecycle import ONE as WEB  # two replicas of the demo image, port 8080



def test_a_manager_on_etcd_deploys_and_survives_sigkill(tmp_path: Path) -> None:
    plane = ControlPlane.create(tmp_path / "plane")
    try:
        first = plane.start_manager("m1")
        plane.start_agent(first, "box-1", "127.0.0.41")
        plane.start_agent(first, "box-2", "127.0.0.42")
        wait_until(lambda: len(plane.api(first, "GET", "/v1/nodes")) == 2, 30, what="two agents")
        compose = tmp_path / "compose.yaml"
        compose.write_text(WEB)
        assert "Created service shop_web" in plane.cli(first, "deploy", "-c", str(compose), "--name", "shop").stdout

        def running(count: int) -> list[dict] | None:
            tasks = [t for t in plane.api(first, "GET", "/v1/services/shop_web/tasks")
                     if t["state"] == "running" and t["desired_state"] == "running"]
            live = [c for c in _containers(plane) if c.status == "running"]
            return tasks if len(tasks) == count and len(live) == count else None

        tasks = wait_until(lambda: running(2), 60, 0.5, what="2 running tasks")
        assert {t["node"] for t in tasks} == {"box-1", "box-2"}
        for task in tasks:
            assert httpx.get(f"http://{task['address']}/", timeout=5).status_code == 200

        # The state is in etcd (under /corral/), none of it in the data dir.
        assert not (first.data_dir / "store.db").exists()
        keys = plane.etcd_keys()
        assert "/corral/services/shop_web" in keys and sum(key.startswith("/corral/tasks/") for key in keys) == 2

        # SIGKILL the manager; a new one on the same data dir and etcd has everything, the containers ran on.
        containers = {c.id for c in _containers(plane)}
        plane.kill(first)
        time.sleep(1)
        assert {c.id for c in _containers(plane) if c.status == "running"} == containers
        again = plane.start_manager("m1", port=first.port, data_dir=first.data_dir)
        assert plane.api(again, "GET", "/v1/info")["cluster_id"] == plane.cluster_id
        wait_until(lambda: all(n["state"] == "ready" for n in plane.api(again, "GET", "/v1/nodes")), 30, what="agents back")
        assert {t["id"] for t in wait_until(lambda: running(2), 30, 0.5, what="the same 2 tasks")} == {t["id"] for t in tasks}
        assert {c.id for c in _containers(plane)} == containers  # none restarted

        # It still acts: a scale-up starts a third container, a killed one is replaced.
        plane.cli(again, "service", "scale", "shop_web=3")
        wait_until(lambda: running(3), 60, 0.5, what="3 running tasks")
        victim = next(c for c in _containers(plane) if c.id in containers)
        victim.kill()
        after = wait_until(lambda: running(3), 60, 0.5, what="the killed replica replaced")
        assert victim.id not in {c.id for c in _containers(plane) if c.status == "running"}
        for task in after:
            assert httpx.get(f"http://{task['address']}/", timeout=5).status_code == 200
    finally:
        plane.cleanup()


def _containers(plane: ControlPlane) -> list:
    return docker.from_env().containers.list(all=True, filters={"label": [f"corral.cluster={plane.cluster_id}", "corral.service=shop_web"]}, ignore_removed=True)
