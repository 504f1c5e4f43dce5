"""Bad input changes nothing; pieces run apart as on real servers; restarts keep what was deployed."""

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx

from tests.tls import ca_file, verify
from tests.e2e.cluster import CORRAL, Cluster, free_port, remove_containers, wait_until

ONE = """
services:
  web:
    image: corral-demo:latest
    ports: ["8080"]
    stop_grace_period: 1s
    deploy: {replicas: 2}
"""


def test_invalid_file_is_refused_and_changes_nothing(cluster: Cluster, compose_file) -> None:
    bad = compose_file("services:\n  web:\n    image: corral-demo:latest\n    deploy: {replicas: -2}\n")
    done = cluster.cli("deploy", "-c", str(bad), "--name", "shop", check=False)
    assert done.returncode != 0
    assert "services.web.deploy.replicas" in done.stderr and "non-negative integer" in done.stderr
    assert cluster.cli_json("service", "ls") == []

    missing = cluster.cli("deploy", "-c", "/nonexistent/compose.yaml", "--name", "shop", check=False)
    assert missing.returncode != 0 and "cannot read" in missing.stderr

    odd = compose_file(ONE + "    volumes: [data:/data]\n    healthcheck: {test: [NONE]}\n", "odd.yaml")
    dry = cluster.cli("deploy", "-c", str(odd), "--name", "shop", "--dry-run")
    assert "would create service shop_web" in dry.stdout
    assert "services.web.volumes is ignored:" in dry.stderr
    assert cluster.cli_json("service", "ls") == []

    scale = cluster.cli("service", "scale", "nosuch=3", check=False)
    assert scale.returncode == 1 and "not found" in scale.stderr
    assert cluster.cli("service", "scale", "x=-1", check=False).returncode != 0


def test_restart_of_up_brings_the_stack_back(tmp_path: Path, compose_file) -> None:
    first = Cluster(tmp_path / "data")
    try:
        first.start()
        first.cli("deploy", "-c", str(compose_file(ONE)), "--name", "shop")
        first.wait_running("shop_web", 2)
        first.stop()  # SIGTERM: agents remove their containers, the store keeps the stack
        assert first.containers() == []
        second = Cluster(tmp_path / "data")
        second.port, second.url = first.port, first.url
        second.start()
        assert second.cluster_id == first.cluster_id
        tasks = second.wait_running("shop_web", 2)
        for task in tasks:
            assert httpx.get(f"http://{task['address']}/", timeout=5).status_code == 200
        second.stop()
    finally:
        first.cleanup()


def test_manager_and_agents_run_apart(tmp_path: Path, compose_file) -> None:
    port = free_port()
    url = f"https://127.0.0.1:{port}"
    data = tmp_path / "manager"
    env = {**os.environ, "CORRAL_MANAGER": url, "CORRAL_CA": str(ca_file(data))}
    logs = (tmp_path / "manager.log").open("wb")
    procs: list[subprocess.Popen] = []
    cluster_id = ""
    try:
        manager = subprocess.Popen([*CORRAL, "manager", "--data-dir", str(data), "--listen", f"127.0.0.1:{port}"], stdout=logs, stderr=subprocess.STDOUT)
        procs.append(manager)
        token = wait_until(lambda: (data / "join-token").exists() and (data / "join-token").read_text().strip(), 20, what="join token")
        wait_until(lambda: httpx.get(verify=verify(data), url=url + "/v1/info").status_code == 200, 20, what="manager API")
        cluster_id = httpx.get(verify=verify(data), url=url + "/v1/info").json()["cluster_id"]
        assert httpx.get(verify=verify(data), url=url + "/v1/join-token").status_code == 404  # not served over HTTP
        assert subprocess.run([*CORRAL, "join-token", "--data-dir", str(data)], capture_output=True, text=True).stdout.strip() == token

        refused = subprocess.run(
            [*CORRAL, "agent", "--manager", url, "--name", "intruder", "--address", "127.0.0.22", "--token", token.rsplit("-", 1)[0] + "-" + "0" * 48],
            capture_output=True, text=True, timeout=30,
        )
        assert refused.returncode != 0 and "wrong join token" in refused.stderr
        assert httpx.get(verify=verify(data), url=url + "/v1/nodes").json() == []

        for i, address in enumerate(("127.0.0.22", "127.0.0.23"), start=1):
            procs.append(subprocess.Popen(
                [*CORRAL, "agent", "--manager", url, "--name", f"box-{i}", "--address", address, "--token", token, "--label", f"rack=r{i}"],
                stdout=logs, stderr=subprocess.STDOUT,
            ))
        wait_until(lambda: len(httpx.get(verify=verify(data), url=url + "/v1/nodes").json()) == 2, 20, what="two agents")
        pinned = ONE.replace("deploy: {replicas: 2}", "deploy: {replicas: 2, placement: {constraints: [node.labels.rack == r2]}}")
        subprocess.run([*CORRAL, "deploy", "-c", str(compose_file(pinned)), "--name", "shop"], env=env, check=True, capture_output=True)

        def running() -> list[dict] | None:
            tasks = [t for t in httpx.get(verify=verify(data), url=url + "/v1/services/shop_web/tasks").json() if t["state"] == "running"]
            return tasks if len(tasks) == 2 else None

        tasks = wait_until(running, 45, 0.5, what="2 running tasks")
        assert {t["node"] for t in tasks} == {"box-2"}

        # SIGTERM an agent: its containers keep running and keep serving.
        agent = procs[2]
        agent.send_signal(signal.SIGTERM)
        agent.wait(20)
        time.sleep(1)
        for task in tasks:
            assert httpx.get(f"http://{task['address']}/", timeout=5).status_code == 200
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()
        if cluster_id:
            remove_containers(cluster_id)
