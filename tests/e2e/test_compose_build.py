"""`corral deploy --build` end to end: an app built from a local Dockerfile is pushed to the cluster's registry and
serves; an unchanged build deploys nothing new, a changed one a new image; without --build the file is refused
with the way out."""

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.cluster import Cluster, wait_until

COMPOSE = """
services:
  web:
    build:
      context: ./app
      args: {{GREETING: hello}}
      labels: {{team: web}}
  side:
    image: {registry}/custom/side:1
    build: {{context: ./app, dockerfile_inline: "FROM corral-demo:latest\\nRUN echo inline > /www/side.txt\\n"}}
"""

DOCKERFILE = """FROM corral-demo:latest
ARG GREETING
COPY page.txt /www/page.txt
RUN echo "$GREETING from a build" > /www/greeting.txt
"""


@contextlib.contextmanager
def _torn_down(running: Cluster) -> Iterator[Cluster]:
    """The cluster, then its containers and every image this machine tagged for its registry, gone."""
    try:
        yield running
    finally:
        running.cleanup()
        listed = subprocess.run(["docker", "images", "-q", "--filter", f"reference={running.registry}/*/*"], capture_output=True, text=True)
        listed2 = subprocess.run(["docker", "images", "-q", "--filter", f"reference={running.registry}/*"], capture_output=True, text=True)
        for image in set(listed.stdout.split()) | set(listed2.stdout.split()):
            subprocess.run(["docker", "rmi", "-f", image], capture_output=True)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    with _torn_down(Cluster(tmp_path / "cluster", nodes=1, first_address="127.0.0.95", registry=True)) as running:
        yield running.start()


def _served(cluster: Cluster, service: str, path: str) -> str:
    [container] = [c for c in cluster.containers(service=service) if c.status == "running"]
    done = subprocess.run(["docker", "exec", container.id, "timeout", "5", "wget", "-q", "-O-", f"http://127.0.0.1:8080{path}"],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_deploy_build_builds_pushes_and_serves(cluster: Cluster, tmp_path: Path) -> None:
    assert cluster.registry is not None
    app = tmp_path / "app"
    app.mkdir()
    (app / "Dockerfile").write_text(DOCKERFILE)
    (app / "page.txt").write_text("version 1")
    compose = tmp_path / "compose.yaml"
    compose.write_text(COMPOSE.format(registry=cluster.registry))
    env = {"CORRAL_TOKEN": (cluster.data_dir / "admin-token").read_text().strip()}

    refused = cluster.cli("deploy", "-c", str(compose), "-n", "bld", "--detach", check=False, env=env)
    assert refused.returncode == 1 and "services.web.build" in refused.stderr and "--build" in refused.stderr
    assert cluster.cli_json("service", "ls") == []  # nothing changed

    done = cluster.cli("deploy", "-c", str(compose), "-n", "bld", "--detach", "--build", env=env)
    assert "Created service bld_web" in done.stdout and "Created service bld_side" in done.stdout
    [web_task] = cluster.wait_running("bld_web", 1, timeout=90)
    cluster.wait_running("bld_side", 1, timeout=90)
    first_image = web_task["image"]
    assert first_image.startswith(f"{cluster.registry}/bld_web:") and len(first_image.rpartition(":")[2]) == 16
    assert _served(cluster, "bld_web", "/page.txt") == "version 1"
    assert _served(cluster, "bld_web", "/greeting.txt") == "hello from a build"  # args reach the build
    assert _served(cluster, "bld_side", "/side.txt") == "inline"  # dockerfile_inline, pushed as its image: name
    [side_task] = cluster.running_tasks("bld_side")
    assert side_task["image"] == f"{cluster.registry}/custom/side:1"
    labels = subprocess.run(["docker", "image", "inspect", "-f", "{{.Config.Labels.team}}", first_image], capture_output=True, text=True)
    assert labels.stdout.strip() == "web"

    # the same build again: the same content, the same reference, nothing new deployed
    again = cluster.cli("deploy", "-c", str(compose), "-n", "bld", "--detach", "--build", env=env)
    assert "Unchanged service bld_web" in again.stdout

    # a changed file: a new image, rolled out
    (app / "page.txt").write_text("version 2")
    changed = cluster.cli("deploy", "-c", str(compose), "-n", "bld", "--detach", "--build", env=env)
    assert "Updated service bld_web" in changed.stdout
    new_image = cluster.api("GET", "/v1/services/bld_web")["spec"]["image"]
    assert new_image != first_image and new_image.startswith(f"{cluster.registry}/bld_web:")
    wait_until(lambda: _served(cluster, "bld_web", "/page.txt") == "version 2", 90, 1, what="version 2 served")
