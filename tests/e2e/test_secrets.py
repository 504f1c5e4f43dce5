"""Secrets and configs end to end on real containers: a service reads its secret at /run/secrets/NAME, and the
secret's bytes are nowhere else: not in the store file (nor its WAL), the data dir, the logs, `docker inspect`,
the events or the API."""

import json
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import docker
import httpx
import pytest

from corral.agent.engines.files import filesystem_type
from tests.tls import admin_headers, verify
from tests.e2e.cluster import Cluster, wait_until

COMPOSE = """
services:
  web:
    image: corral-demo:latest
    secrets: [db, {source: api, target: api_key, mode: 0400}]
    configs: [{source: site, target: /etc/site.conf}]
secrets:
  db: {file: ./db.txt}
  api: {environment: SEC_API_KEY}
configs:
  site: {content: "listen 8080;"}
"""


@pytest.fixture
def secure(tmp_path: Path) -> Iterator[Cluster]:
    files = tmp_path / "secrets"
    running = Cluster(tmp_path / "cluster", nodes=2, first_address="127.0.0.60", extra=["--secrets-dir", str(files)])
    running.secrets_dir = files  # type: ignore[attr-defined]
    try:
        yield running.start()
    finally:
        running.cleanup()
        while files.exists() and filesystem_type(files) == "tmpfs" and str(files) in Path("/proc/self/mounts").read_text():
            if subprocess.run(["umount", str(files)], capture_output=True).returncode != 0:
                break


def _exec(container: object, *command: str) -> str:
    done = subprocess.run(["docker", "exec", container.id, *command], capture_output=True, timeout=30)  # type: ignore[attr-defined]
    assert done.returncode == 0, done.stderr
    return done.stdout.decode()


def _events(cluster: Cluster) -> str:
    """Every event since the start, as the API streams them (read until the service's creation is in)."""
    seen: list[str] = []
    with httpx.stream("GET", cluster.url + "/v1/events", params={"since": 0}, timeout=10, verify=verify(cluster.data_dir), headers=admin_headers(cluster.data_dir)) as response:
        for line in response.iter_lines():
            seen.append(line)
            if "service sec_web created" in line:
                break
    return "\n".join(seen)


def test_a_secret_reaches_the_container_as_a_file_and_nowhere_else(secure: Cluster, tmp_path: Path) -> None:
    value, api_key = f"db-pw-{secrets.token_hex(16)}", f"api-{secrets.token_hex(16)}"
    (tmp_path / "db.txt").write_text(value)
    compose = tmp_path / "compose.yaml"
    compose.write_text(COMPOSE)
    unset = secure.cli("deploy", "-c", str(compose), "-n", "sec", "--detach", check=False)
    assert unset.returncode == 1 and "SEC_API_KEY is not set" in unset.stderr  # read on this machine, or nothing is sent
    done = secure.cli("deploy", "-c", str(compose), "-n", "sec", "--detach", env={"SEC_API_KEY": api_key})
    assert "Created secret sec_db" in done.stdout and "warning" not in done.stderr
    secure.wait_running("sec_web", 1)
    [container] = [c for c in secure.containers(service="sec_web") if c.status == "running"]

    # the container reads them as files, with the reference's mode
    assert _exec(container, "cat", "/run/secrets/db") == value
    assert _exec(container, "cat", "/run/secrets/api_key") == api_key
    assert _exec(container, "cat", "/etc/site.conf") == "listen 8080;"
    assert _exec(container, "stat", "-c", "%a", "/run/secrets/api_key").strip() == "400"
    assert value not in _exec(container, "env")

    # on the host: a tmpfs, one 0700 directory per task
    task_id = container.labels["corral.task"]
    host_dirs = list(secure.secrets_dir.glob(f"*/*/{task_id}"))  # type: ignore[attr-defined]
    assert len(host_dirs) == 1 and filesystem_type(host_dirs[0]) == "tmpfs"
    assert host_dirs[0].stat().st_mode & 0o777 == 0o700

    # nowhere else: docker inspect, the store and the data dir (logs included), the events, the API
    inspected = json.dumps(docker.from_env().api.inspect_container(container.id))
    mounts = {m["Destination"]: m for m in docker.from_env().api.inspect_container(container.id)["Mounts"]}
    assert mounts["/run/secrets/db"]["RW"] is False and mounts["/run/secrets/db"]["Type"] == "bind"
    places = {"docker inspect": inspected, "events": _events(secure)}
    for path in secure.data_dir.rglob("*"):
        if path.is_file():
            places[str(path)] = path.read_bytes().decode(errors="replace")
    assert any(name.endswith("store.db") for name in places) and any(name.endswith("cluster.log") for name in places)
    for route in ("/v1/secrets", "/v1/secrets/sec_db", "/v1/configs", "/v1/services", "/v1/services/sec_web",
                  "/v1/services/sec_web/tasks", "/v1/stacks", "/v1/nodes"):
        places[route] = httpx.get(secure.url + route, timeout=10, verify=verify(secure.data_dir), headers=admin_headers(secure.data_dir)).text
    for where, text in places.items():
        assert value not in text and api_key not in text, f"a secret's bytes are in {where}"
    assert "secret sec_db created" in places["events"]

    # in use: not removable; when the stack goes, its files go with its container, and its values with it
    refused = secure.cli("secret", "rm", "sec_db", check=False)
    assert refused.returncode == 1 and "used by sec_web" in refused.stderr
    secure.cli("stack", "rm", "sec")
    wait_until(lambda: not secure.containers(service="sec_web"), 30, what="the container to go")
    wait_until(lambda: not host_dirs[0].exists(), 10, what="the task's secret files to go")
    assert secure.cli_json("secret", "ls") == [] and secure.cli_json("config", "ls") == []
