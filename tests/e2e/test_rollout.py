"""Rolling updates and rollbacks on a real cluster with real containers.

Two extra images are built from corral-demo for these tests: `rollout-v2`
serves a different page, `rollout-broken` exits at once. Each test runs its
own cluster on its own loopback addresses and removes every container it
started, by cluster label, even when it fails.
"""

import io
import os
import signal
import subprocess
import tarfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import httpx
import pytest

from tests.tls import admin_headers, admin_token, ca_file, verify
from tests.e2e.cluster import CORRAL, Cluster, free_port, remove_containers, wait_until
from tests.e2e.test_mesh import Load

V1 = "corral-demo:latest"
V2 = "corral-demo:rollout-v2"
BROKEN = "corral-demo:rollout-broken"

STACK = """
services:
  web:
    image: {image}
    ports: ["8080"]
    stop_grace_period: 1s{healthcheck}
    deploy:
      replicas: {replicas}
      update_config: {{parallelism: 1, order: {order}, monitor: 1s, failure_action: {action}}}
      rollback_config: {{parallelism: 0, monitor: 1s}}
"""


HEALTHCHECK = """
    x-corral-healthcheck:
      http: {port: 8080, path: /}
      interval: 1s
      timeout: 1s
      retries: 2"""


def stack(image: str = V1, replicas: int = 3, order: str = "start-first", action: str = "pause", checked: bool = False) -> str:
    return STACK.format(image=image, replicas=replicas, order=order, action=action, healthcheck=HEALTHCHECK if checked else "")


def _build(client: docker.DockerClient, tag: str, dockerfile: str, files: dict[str, bytes]) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in {"Dockerfile": dockerfile.encode(), **files}.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    buffer.seek(0)
    client.images.build(fileobj=buffer, custom_context=True, tag=tag, rm=True)


@pytest.fixture(scope="module", autouse=True)
def images() -> Iterator[None]:
    client = docker.from_env()
    _build(client, V2, f"FROM {V1}\nCOPY index.html /www/index.html\n", {"index.html": b"<h1>hello from v2</h1>\n"})
    # runs, but serves nothing: it fails its health check
    _build(client, BROKEN, f'FROM {V1}\nCMD ["sleep", "3600"]\n', {})
    yield
    for tag in (V2, BROKEN):
        try:
            client.images.remove(tag)
        except docker.errors.APIError:
            pass  # still used by a container another test owns; harmless


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    running = Cluster(tmp_path / "cluster", first_address="127.0.0.61", extra=["--no-registry"])
    try:
        yield running.start()
    finally:
        running.cleanup()


def images_running(cluster: Cluster, service: str) -> list[str]:
    return sorted(t["image"] for t in cluster.running_tasks(service))


def live_tasks(tasks: list[dict]) -> list[dict]:
    return [t for t in tasks if t["desired_state"] == "running"]


class Sampler:
    """Samples a service's tasks in the background: the fewest running, the most live in one slot."""

    def __init__(self, cluster: Cluster, service: str) -> None:
        self.url, self.service, self.trust = cluster.url, service, cluster.data_dir
        self.min_running = 10**6
        self.max_live_per_slot = 0
        self.overlaps = 0  # samples of a slot whose old task was still stopping while its new one existed
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "Sampler":
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                tasks = httpx.get(f"{self.url}/v1/services/{self.service}/tasks", timeout=5, verify=verify(self.trust), headers=admin_headers(self.trust)).json()
            except httpx.HTTPError:
                continue
            live = live_tasks(tasks)
            running = [t for t in tasks if t["state"] == "running"]
            self.min_running = min(self.min_running, len(running))
            per_slot: dict[int, int] = {}
            for task in live:
                per_slot[task["slot"]] = per_slot.get(task["slot"], 0) + 1
            self.max_live_per_slot = max([self.max_live_per_slot, *per_slot.values()])
            # a task asked to stop that has not stopped yet, beside a newer live task of its slot
            stopping = {t["slot"] for t in tasks if t["desired_state"] == "shutdown" and t["state"] in ("assigned", "starting", "running")}
            self.overlaps += len(stopping & set(per_slot))
            self.samples += 1
            self._stop.wait(0.1)


def serves(cluster: Cluster, service: str, text: str) -> bool:
    tasks = cluster.running_tasks(service)
    return bool(tasks) and all(text in httpx.get(f"http://{t['address']}/", timeout=5).text for t in tasks)


def test_rolling_update_start_first_then_stop_first(cluster: Cluster, compose_file) -> None:
    cluster.cli("deploy", "-c", str(compose_file(stack())), "--name", "shop", "--detach")
    cluster.wait_running("shop_web", 3)

    with Sampler(cluster, "shop_web") as start_first:
        done = cluster.cli("service", "update", "shop_web", "--image", V2, "--watch")
    assert "update completed" in done.stdout
    assert images_running(cluster, "shop_web") == [V2] * 3
    assert wait_until(lambda: serves(cluster, "shop_web", "hello from v2"), 15, what="v2 pages")
    assert start_first.samples > 3
    assert start_first.min_running >= 3  # start-first: never fewer running than wanted
    assert start_first.max_live_per_slot == 2  # the old task stayed until its replacement ran
    service = cluster.cli_json("service", "ls")[0]
    assert service["update_status"]["state"] == "completed" and service["update_status"]["updated"] == 3
    assert "completed 3/3" in cluster.cli("service", "ls").stdout

    with Sampler(cluster, "shop_web") as stop_first:
        done = cluster.cli("service", "update", "shop_web", "--image", V1, "--update-order", "stop-first", "--watch")
    assert "update completed" in done.stdout
    assert images_running(cluster, "shop_web") == [V1] * 3
    assert stop_first.max_live_per_slot == 1  # stop-first: never two live tasks in a slot
    assert stop_first.overlaps == 0  # and the new task is made only once the old one has stopped
    assert stop_first.min_running >= 2  # parallelism 1: at most one replica down at a time
    wait_until(lambda: len([c for c in cluster.containers(service="shop_web") if c.status == "running"]) == 3, 15, what="3 containers")


def test_failing_update_rolls_back_by_itself(cluster: Cluster, compose_file) -> None:
    cluster.cli("deploy", "-c", str(compose_file(stack(action="rollback", checked=True))), "--name", "shop", "--detach")
    cluster.wait_running("shop_web", 3)
    before = {t["id"] for t in cluster.running_tasks("shop_web")}

    broken = compose_file(stack(image=BROKEN, action="rollback", checked=True), "broken.yaml")
    done = cluster.cli("deploy", "-c", str(broken), "--name", "shop", "--watch", check=False)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "update failed, rolled back" in done.stderr and "shop_web" in done.stderr

    tasks = cluster.wait_running("shop_web", 3)
    assert sorted(t["image"] for t in tasks) == [V1] * 3
    assert {t["id"] for t in tasks} == before  # start-first: the old replicas never stopped
    service = cluster.cli_json("service", "ls")[0]
    assert service["image"] == V1 and service["update_status"]["state"] == "rollback_completed"
    assert serves(cluster, "shop_web", "hello from corral")
    broken_tasks = [t for t in cluster.cli_json("service", "ps", "shop_web", "--all") if t["image"] == BROKEN]
    assert broken_tasks and all(t["desired_state"] == "shutdown" for t in broken_tasks)
    # task history: `service ps` lists the failed tasks under their slots, with their error; the filter hides them
    failed = [t for t in cluster.cli_json("service", "ps", "shop_web") if t["image"] == BROKEN and t["state"] == "failed"]
    assert failed and all(t["error"] for t in failed), failed
    table = cluster.cli("service", "ps", "shop_web").stdout.splitlines()
    assert any("\\_ shop_web." in line and BROKEN in line and "failed" in line for line in table), table
    assert {t["image"] for t in cluster.cli_json("service", "ps", "shop_web", "--filter", "desired-state=running")} == {V1}


def test_manual_rollback_and_canary(cluster: Cluster, compose_file) -> None:
    cluster.cli("deploy", "-c", str(compose_file(stack(order="stop-first"))), "--name", "shop", "--detach")
    cluster.wait_running("shop_web", 3)

    # update, then roll back by hand
    cluster.cli("service", "update", "shop_web", "--image", V2, "--watch")
    assert images_running(cluster, "shop_web") == [V2] * 3
    done = cluster.cli("service", "rollback", "shop_web", "--watch")
    assert "rollback completed" in done.stdout
    assert images_running(cluster, "shop_web") == [V1] * 3

    # canary: one replica updated, then hold
    done = cluster.cli("service", "update", "shop_web", "--image", V2, "--canary", "1", "--watch")
    assert "canary" in done.stdout
    assert images_running(cluster, "shop_web") == [V1, V1, V2]
    inspect = cluster.cli("service", "inspect", "shop_web")
    assert '"canary_hold"' in inspect.stdout
    # promote: the rest follows
    done = cluster.cli("service", "promote", "shop_web", "--watch")
    assert "update completed" in done.stdout
    assert images_running(cluster, "shop_web") == [V2] * 3

    # a canary rolled back: every replica ends on the image before the canary
    cluster.cli("service", "update", "shop_web", "--image", V1, "--watch")
    cluster.cli("service", "update", "shop_web", "--image", V2, "--canary", "2", "--watch")
    assert images_running(cluster, "shop_web") == [V1, V2, V2]
    cluster.cli("service", "rollback", "shop_web", "--watch")
    assert images_running(cluster, "shop_web") == [V1] * 3
    # The rollback completes once the V1 replacements run; the canaries' containers may still be in their 1 s stop
    # grace period (httpd ignores SIGTERM) at that moment, and then must be gone.
    wait_until(lambda: len([c for c in cluster.containers(service="shop_web") if c.status == "running"]) == 3, 15, what="3 containers")

    # bad input is refused and changes nothing
    bad = cluster.cli("service", "update", "shop_web", "--update-order", "sideways", check=False)
    assert bad.returncode == 1 and "update_config.order" in bad.stderr
    assert cluster.cli("service", "update", "shop_web", "--env", "novalue", check=False).returncode == 1
    assert cluster.cli("service", "promote", "shop_web", check=False).returncode == 1
    assert cluster.cli_json("service", "ls")[0]["update_status"]["state"] == "rollback_completed"


def test_manager_killed_mid_rollout_finishes_after_restart(tmp_path: Path, compose_file) -> None:
    port = free_port()
    url = f"https://127.0.0.1:{port}"
    data = tmp_path / "manager"
    env = {**os.environ, "CORRAL_MANAGER": url, "CORRAL_CA": str(ca_file(data))}
    logs = (tmp_path / "cluster.log").open("ab")
    manager_cmd = [*CORRAL, "manager", "--data-dir", str(data), "--listen", f"127.0.0.1:{port}", "--no-registry"]
    procs: list[subprocess.Popen] = []
    cluster_id = ""

    def api(path: str) -> object:
        return httpx.get(verify=verify(data), headers=admin_headers(data), url=url + path, timeout=5).json()

    try:
        manager = subprocess.Popen(manager_cmd, stdout=logs, stderr=subprocess.STDOUT)
        procs.append(manager)
        token = wait_until(lambda: (data / "join-token").exists() and (data / "join-token").read_text().strip(), 20, what="join token")
        wait_until(lambda: httpx.get(verify=verify(data), headers=admin_headers(data), url=url + "/v1/info").status_code == 200, 20, what="manager API")
        env["CORRAL_TOKEN"] = admin_token(data)
        cluster_id = api("/v1/info")["cluster_id"]  # type: ignore[index]
        for i in range(1, 4):
            procs.append(subprocess.Popen(
                [*CORRAL, "agent", "--manager", url, "--name", f"node-{i}", "--address", f"127.0.0.{70 + i}", "--token", token],
                stdout=logs, stderr=subprocess.STDOUT,
            ))
        wait_until(lambda: len(api("/v1/nodes")) == 3, 20, what="three agents")  # type: ignore[arg-type]
        slow = stack(replicas=4).replace("monitor: 1s, failure_action", "monitor: 1s, delay: 2s, failure_action")
        subprocess.run([*CORRAL, "deploy", "-c", str(compose_file(slow)), "--name", "shop", "--detach"], env=env, check=True, capture_output=True)

        def running(image: str) -> list[dict]:
            tasks = api("/v1/services/shop_web/tasks")
            return [t for t in tasks if t["state"] == "running" and t["desired_state"] == "running" and t["image"] == image]  # type: ignore[union-attr]

        wait_until(lambda: len(running(V1)) == 4, 45, 0.5, what="4 running tasks")
        subprocess.run([*CORRAL, "service", "update", "shop_web", "--image", V2, "--detach"], env=env, check=True, capture_output=True)
        wait_until(lambda: 1 <= len(running(V2)) < 4, 45, 0.2, what="a rollout half done")

        manager.send_signal(signal.SIGKILL)
        manager.wait(10)  # the agents keep their containers running while the manager is away
        manager = subprocess.Popen(manager_cmd, stdout=logs, stderr=subprocess.STDOUT)
        procs.append(manager)

        wait_until(lambda: len(running(V2)) == 4, 90, 0.5, what="the rollout to finish after the restart")
        wait_until(lambda: api("/v1/services/shop_web")["update_status"]["state"] == "completed", 30, 0.5, what="completed")  # type: ignore[index]
        tasks = api("/v1/services/shop_web/tasks")
        live = live_tasks(tasks)  # type: ignore[arg-type]
        assert sorted(t["slot"] for t in live) == [1, 2, 3, 4]  # not one lost, not one doubled
        docker_client = docker.from_env()

        def containers() -> list:
            found = docker_client.containers.list(filters={"label": [f"corral.cluster={cluster_id}", "corral.service=shop_web"]})
            return found if len(found) == 4 else []

        found = wait_until(containers, 30, 0.5, what="4 running containers")
        assert {c.labels["corral.task"] for c in found} == {t["id"] for t in live}
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        if cluster_id:
            remove_containers(cluster_id)


# httpd under a shell that exits at once on SIGTERM, as most servers do (busybox httpd as PID 1
# ignores it and would be SIGKILLed only after the grace period, which hides a missing drain).
MESH_STACK = """
services:
  web:
    image: corral-demo:latest
    command: ["sh", "-c", "trap 'exit 0' TERM; httpd -f -p 8080 -h /www & wait"]
    ports: ["{port}:8080"]
    stop_grace_period: 1s
    x-corral-healthcheck:
      http: {{port: 8080, path: /}}
      interval: 1s
      timeout: 1s
    deploy:
      replicas: 3
      update_config: {{parallelism: 1, order: start-first, monitor: 1s}}
      rollback_config: {{parallelism: 1, order: start-first, monitor: 1s}}
"""


@pytest.fixture
def mesh_cluster(tmp_path: Path) -> Iterator[Cluster]:
    running = Cluster(tmp_path / "mesh-cluster", first_address="127.0.0.81", extra=["--no-registry"])
    try:
        yield running.start()
    finally:
        running.cleanup()


def only_image(cluster: Cluster, service: str, image: str, count: int) -> bool:
    """Exactly `count` live tasks, all running `image`, and no other container of the service still up."""
    tasks = live_tasks(cluster.cli_json("service", "ps", service))
    up = {c.labels["corral.task"] for c in cluster.containers(service=service) if c.status == "running"}
    return len(tasks) == count and all(t["state"] == "running" and t["image"] == image for t in tasks) and up == {t["id"] for t in tasks}


def test_update_and_rollback_under_load_through_the_mesh_drop_no_request(mesh_cluster: Cluster, compose_file) -> None:
    port = free_port()
    mesh_cluster.cli("deploy", "-c", str(compose_file(MESH_STACK.format(port=port))), "--name", "shop", "--detach")
    wait_until(lambda: only_image(mesh_cluster, "shop_web", V1, 3), 60, 0.5, what="3 healthy v1 replicas")
    wait_until(lambda: len(mesh_cluster.cli_json("service", "endpoints", "shop_web")) == 3, 30, 0.3, what="3 endpoints")
    v1_containers = {c.id for c in mesh_cluster.containers(service="shop_web")}

    with Load(f"http://127.0.0.82:{port}/") as load:  # node-2's mesh address: most replicas are elsewhere
        wait_until(lambda: load.total > 50, 20, what="load to start")
        with Sampler(mesh_cluster, "shop_web") as update:
            done = mesh_cluster.cli("service", "update", "shop_web", "--image", V2, "--watch")
            wait_until(lambda: only_image(mesh_cluster, "shop_web", V2, 3), 30, 0.3, what="only v2 containers")
        assert "update completed" in done.stdout
        after_update = load.total
        with Sampler(mesh_cluster, "shop_web") as rollback:
            done = mesh_cluster.cli("service", "rollback", "shop_web", "--watch")
            wait_until(lambda: only_image(mesh_cluster, "shop_web", V1, 3), 30, 0.3, what="only v1 containers again")
        assert "rollback completed" in done.stdout
        time.sleep(1)  # load goes on after the last old container is gone

    assert load.failures == [], f"{len(load.failures)} failed of {load.total}: {load.failures[:5]}"
    assert after_update > 100 and load.total - after_update > 100  # load ran through both rollouts
    pages = set(load.answers)
    assert any("hello from v2" in page for page in pages) and any("hello from corral" in page for page in pages)
    # start-first really overlapped old and new, and every container was replaced twice
    assert update.max_live_per_slot == 2 and rollback.max_live_per_slot == 2
    assert update.min_running >= 3 and rollback.min_running >= 3
    assert not v1_containers & {c.id for c in mesh_cluster.containers(service="shop_web") if c.status == "running"}
