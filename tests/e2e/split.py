"""A cluster whose pieces run as separate processes, so that each can fail alone.

One `corral manager` and one `corral agent` per node, each a subprocess
known by its PID, so a test (or bench/recovery.py) can SIGKILL the manager,
an agent, or a whole "node" (its agent and its containers) and start them
again. Every container is removed by the cluster-id label at the end.
"""

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import docker
import httpx

from tests.e2e.cluster import CORRAL, free_port, private_service_network, remove_containers, wait_until
from tests.tls import admin_headers, ca_file, cli_env, verify


class SplitCluster:
    def __init__(
        self, data_dir: Path, nodes: int = 3, first_address: int = 40, manager_args: list[str] | None = None, verbose: bool = True
    ) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        self.names = [f"node-{i + 1}" for i in range(nodes)]
        self.addresses = {name: f"127.0.0.{first_address + i}" for i, name in enumerate(self.names)}
        self.manager_args = manager_args or []
        self.verbose = verbose  # the manager's INFO log (a benchmark leaves it off, as `corral up` does)
        self.service_network = private_service_network()
        self.manager: subprocess.Popen | None = None
        self.agents: dict[str, subprocess.Popen] = {}
        self.cluster_id = ""
        self.token = ""
        self._log = None

    # -- processes

    def start(self) -> "SplitCluster":
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._log = (self.data_dir / "cluster.log").open("ab")
        self.start_manager()
        self.token = (self.data_dir / "manager" / "join-token").read_text().strip()
        self.cluster_id = self.api("GET", "/v1/info")["cluster_id"]
        for name in self.names:
            self.start_agent(name)
        wait_until(lambda: sum(n["state"] == "ready" for n in self.api("GET", "/v1/nodes")) == len(self.names), 30, what="agents to register")
        return self

    def start_manager(self) -> None:
        self.manager = self._spawn(
            "manager", "--data-dir", str(self.data_dir / "manager"), "--listen", f"127.0.0.1:{self.port}", "--no-registry",
            "--service-network", self.service_network, *(["-v"] if self.verbose else []), *self.manager_args
        )
        wait_until(lambda: self.api("GET", "/v1/info"), 30, 0.1, what="manager API")

    def start_agent(self, name: str) -> None:
        self.agents[name] = self._spawn(
            "agent", "--manager", self.url, "--name", name, "--address", self.addresses[name], "--token", self.token
        )

    def _spawn(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen([*CORRAL, *args], stdout=self._log, stderr=subprocess.STDOUT)

    def kill_manager(self) -> None:
        _kill(self.manager)
        self.manager = None

    def kill_agent(self, name: str) -> None:
        _kill(self.agents.pop(name, None))

    def kill_node(self, name: str) -> None:
        """A server dies: its agent and every container on it, at once."""
        self.kill_agent(name)
        for container in self.containers(node=name):
            try:
                container.kill()
            except docker.errors.APIError:
                pass

    def cleanup(self) -> None:
        for proc in [*self.agents.values(), self.manager]:
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    _kill(proc)
        self.agents.clear()
        self.manager = None
        if self.cluster_id:
            remove_containers(self.cluster_id)
        if self._log:
            self._log.close()

    # -- looking

    def request(self, method: str, path: str, body: Any = None, timeout: float = 10) -> httpx.Response:
        """One API call over HTTPS, trusting the cluster CA of the manager's data dir."""
        return httpx.request(method, self.url + path, json=body, timeout=timeout, verify=verify(self.data_dir / "manager"), headers=admin_headers(self.data_dir / "manager"))

    def api(self, method: str, path: str, body: Any = None) -> Any:
        response = self.request(method, path, body)
        response.raise_for_status()
        return response.json()

    def cli(self, *args: str) -> str:
        """Run `corral ARGS` against this cluster; its stdout (fails the test on a non-zero exit)."""
        env = cli_env(self.url, self.data_dir / "manager")
        done = subprocess.run([*CORRAL, *args], env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, f"corral {' '.join(args)} failed ({done.returncode}): {done.stderr}"
        return done.stdout

    def deploy(self, compose: Path, stack: str) -> None:
        self.cli("deploy", "-c", str(compose), "--name", stack)

    def tasks(self, service: str) -> list[dict]:
        return self.api("GET", f"/v1/services/{service}/tasks")  # type: ignore[no-any-return]

    def live_tasks(self, service: str) -> list[dict]:
        return [t for t in self.tasks(service) if t["desired_state"] == "running" and t["state"] == "running"]

    def containers(self, **labels: str) -> list:
        filters = [f"corral.cluster={self.cluster_id}", *(f"corral.{k}={v}" for k, v in labels.items())]
        # ignore_removed: a container the agent removes between the listing and its inspect is gone, not an error
        return docker.from_env().containers.list(all=True, filters={"label": filters}, ignore_removed=True)

    def running_containers(self, **labels: str) -> list:
        return [c for c in self.containers(**labels) if c.status == "running"]

    def converged(self, service: str, count: int) -> list[dict] | None:
        """The running tasks, when exactly `count` run and exactly `count` containers of the service run."""
        tasks = self.live_tasks(service)
        containers = self.running_containers(service=service)
        if len(tasks) == count and len(containers) == count and {t["container_id"] for t in tasks} == {c.id for c in containers}:
            return tasks
        return None

    def wait_converged(self, service: str, count: int, timeout: float = 60) -> list[dict]:
        return wait_until(lambda: self.converged(service, count), timeout, 0.2, what=f"{count} running tasks of {service}")  # type: ignore[no-any-return]


def _kill(proc: subprocess.Popen | None) -> None:
    if proc is not None and proc.poll() is None:
        proc.kill()
        proc.wait(10)


def now() -> float:
    return time.monotonic()
