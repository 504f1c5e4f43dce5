"""The registry of an HA control plane, with real parts: a real etcd, three `corral manager` processes each serving its
registry, skopeo as the client, real agents and containers. An image pushed through m1 is on m2 when the push is
acknowledged; m1 is SIGKILLed; skopeo pulls it through m2 (same digest), m3 (started after the push, so it fetches
it from m2) serves it too, and a deploy naming the image by m1's registry runs on real nodes after m1 is gone."""

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import docker
import httpx
import pytest

from corral.registry.storage import RegistryStorage
from corral.registry.references import parse_digest
from tests.e2e.cluster import free_port, wait_until
from tests.e2e.control_plane import ControlPlane
from tests.tls import admin_token

pytestmark = pytest.mark.skipif(shutil.which("skopeo") is None or shutil.which("docker") is None, reason="needs skopeo and docker")


def skopeo(*args: str) -> str:
    done = subprocess.run(["skopeo", *args], capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, f"skopeo {' '.join(args)} failed:\n{done.stderr}"
    return done.stdout


def test_an_image_pushed_through_one_manager_is_served_by_the_others_after_its_loss(tmp_path: Path) -> None:
    plane = ControlPlane.create(tmp_path / "plane")
    registries = {name: f"127.0.0.1:{free_port()}" for name in ("m1", "m2", "m3")}
    image = f"{registries['m1']}/ha/web:1"
    local_tags = [f"{registry}/ha/web:1" for registry in registries.values()]
    try:
        m1 = plane.start_manager("m1", registry=registries["m1"])
        m2 = plane.start_manager("m2", seed=m1, registry=registries["m2"])
        creds = f"corral:{admin_token(m1.data_dir)}"

        # Push through m1 with a real client; the acknowledged push is already on m2's disk.
        skopeo("copy", "--dest-tls-verify=false", "--dest-creds", creds, "docker-daemon:corral-demo:latest", f"docker://{image}")
        pushed = json.loads(skopeo("inspect", "--tls-verify=false", "--creds", creds, f"docker://{image}"))["Digest"]
        on_m2 = RegistryStorage(m2.data_dir / "registry")
        assert on_m2.resolve("ha/web", "1") == parse_digest(pushed)
        layers = on_m2.parsed("ha/web", parse_digest(pushed)).blobs
        assert layers and all(on_m2.has_blob("ha/web", blob) for blob in layers)

        # m3 joins after the push: it holds nothing of it. Agents know all three managers.
        m3 = plane.start_manager("m3", seed=m1, registry=registries["m3"])
        assert not (m3.data_dir / "registry" / "repositories" / "ha").exists()
        managers = [m1, m2, m3]
        plane.start_agent(m1, "box-1", "127.0.0.61", managers=managers)
        plane.start_agent(m1, "box-2", "127.0.0.62", managers=managers)
        wait_until(lambda: len(plane.api(m2, "GET", "/v1/nodes")) == 2, 30, what="two agents")

        # The manager that received the push is lost.
        plane.kill(m1)
        assert m1.proc is not None and m1.proc.returncode == -9
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://{registries['m1']}/v2/", timeout=2)

        # A real client pulls it through m2 and through m3 (which fetches it from m2, verified, and keeps it).
        for name in ("m2", "m3"):
            source = f"docker://{registries[name]}/ha/web:1"
            assert json.loads(skopeo("inspect", "--tls-verify=false", "--creds", creds, source))["Digest"] == pushed
            copy = tmp_path / f"pulled-{name}"
            skopeo("copy", "--src-tls-verify=false", "--src-creds", creds, source, f"dir:{copy}")  # skopeo checks every digest
            assert all((copy / blob.hex).exists() for blob in layers)
        on_m3 = RegistryStorage(m3.data_dir / "registry")
        assert on_m3.resolve("ha/web", "1") == parse_digest(pushed) and all(on_m3.has_blob("ha/web", b) for b in layers)

        # A deploy naming the image by the lost manager's registry runs on real nodes: the agents pull from another.
        survivors = [m2, m3]
        wait_until(lambda: all(n["state"] == "ready" for n in plane.api(m2, "GET", "/v1/nodes")), 30, what="nodes ready after the loss")
        compose = tmp_path / "compose.yaml"
        compose.write_text(f"services:\n  web:\n    image: {image}\n    ports: [\"8080\"]\n    stop_grace_period: 1s\n    deploy: {{replicas: 2}}\n")
        plane.cli(survivors, "deploy", "-c", str(compose), "--name", "ha")

        def running() -> list[dict[str, Any]] | None:
            tasks = [t for t in plane.api(m3, "GET", "/v1/services/ha_web/tasks") if t["state"] == "running"]
            return tasks if len(tasks) == 2 else None

        tasks = wait_until(running, 90, 0.5, what="2 running replicas of the image pushed through m1")
        assert {t["node"] for t in tasks} == {"box-1", "box-2"}
        for task in tasks:
            assert httpx.get(f"http://{task['address']}/", timeout=5).status_code == 200
        engine = docker.from_env()
        assert any(pushed in digest for digest in engine.images.get(image).attrs["RepoDigests"])  # pulled via another manager
    finally:
        plane.cleanup()
        for tag in local_tags:
            subprocess.run(["docker", "rmi", "-f", tag], capture_output=True)
