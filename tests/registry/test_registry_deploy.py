"""End to end: a `corral up` cluster deploys a service whose image lives only in its registry."""

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.cluster import Cluster, wait_until

pytestmark = pytest.mark.e2e


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    running = Cluster(tmp_path / "cluster", nodes=2, first_address="127.0.0.91", registry=True)
    try:
        yield running.start()
    finally:
        running.cleanup()
        if running.registry:
            subprocess.run(["docker", "rmi", "-f", f"{running.registry}/app:2"], capture_output=True)


def test_service_image_pulled_from_the_cluster_registry(cluster: Cluster, tmp_path: Path) -> None:
    assert cluster.registry is not None
    image = f"{cluster.registry}/app:2"
    assert httpx.get(f"http://{cluster.registry}/v2/").status_code == 401  # credentials needed
    assert f"corral registry serving on http://{cluster.registry} (loopback only" in cluster.log.read_text()
    # A Docker config of this test's own: `docker login` must never touch the machine's ~/.docker.
    docker_env = {**os.environ, "DOCKER_CONFIG": str(tmp_path / "docker-config")}
    (tmp_path / "docker-config").mkdir()
    compose = tmp_path / "compose.yaml"
    compose.write_text(f"services:\n  web:\n    image: {image}\n    deploy:\n      replicas: 2\n      restart_policy: {{delay: 1s}}\n")
    cluster.cli("deploy", "-c", str(compose), "--name", "shop")

    # Not pushed yet: the tasks fail with a reason that says so, and are retried.
    def failed_for_missing_image() -> bool:
        tasks = cluster.cli_json("service", "ps", "shop_web", "--all")
        return any(t["error"] == f"image {image} not found in registry" for t in tasks)

    wait_until(failed_for_missing_image, 30, what="a task failing for the missing image")

    subprocess.run(["docker", "tag", "corral-demo:latest", image], check=True, capture_output=True)
    anonymous = subprocess.run(["docker", "push", image], capture_output=True, text=True, timeout=120, env=docker_env)
    refusal = (anonymous.stderr + anonymous.stdout).lower()
    assert anonymous.returncode != 0 and ("no basic auth credentials" in refusal or "unauthorized" in refusal), anonymous
    admin = (cluster.data_dir / "admin-token").read_text().strip()
    login = subprocess.run(
        ["docker", "login", cluster.registry, "-u", "corral", "--password-stdin"],
        input=admin, capture_output=True, text=True, timeout=60, env=docker_env,
    )
    assert login.returncode == 0, login.stderr
    subprocess.run(["docker", "push", image], check=True, capture_output=True, timeout=120, env=docker_env)
    subprocess.run(["docker", "rmi", image], check=True, capture_output=True)  # only the registry has it now
    tasks = cluster.wait_running("shop_web", 2, timeout=60)
    assert {t["image"] for t in tasks} == {image}

    [listed] = cluster.cli_json("image", "ls")
    assert listed["repository"] == "app" and listed["tag"] == "2" and listed["size"] > 1_000_000
    table = cluster.cli("image", "ls").stdout
    assert "app" in table and "MiB" in table

    # Untagged, but the service runs it: gc keeps every blob.
    assert "untagged app:2" in cluster.cli("image", "rm", "app:2").stdout
    report = cluster.cli_json("registry", "gc", "--grace", "0")
    assert report["removed_blobs"] == [] and image in report["kept_images"]
    missing = cluster.cli("image", "rm", "app:2", check=False)
    assert missing.returncode == 1 and "not found in the registry" in missing.stderr

    # Once no service uses it, gc frees it.
    cluster.cli("stack", "rm", "shop")
    wait_until(lambda: not cluster.cli_json("service", "ls"), 30, what="the stack to go")
    ended = {"complete", "failed", "shutdown", "rejected", "lost", "orphaned"}
    wait_until(lambda: all(t["state"] in ended for t in cluster.api("GET", "/v1/tasks")), 30, what="tasks to end")
    freed = cluster.cli_json("registry", "gc", "--grace", "0")
    assert freed["freed_bytes"] > 1_000_000 and freed["removed_manifests"]
