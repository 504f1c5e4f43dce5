"""A real local cluster for end-to-end tests: `corral up` in a subprocess.

Each cluster gets its own data dir, API port and node addresses, and is torn
down by its PID; every container it may have left is removed by its
cluster-id label, even when the test failed.
"""

import contextlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import docker
import httpx

from tests.processes import stop_process as stop_process  # re-exported: the harnesses import it from here
from tests.tls import admin_headers, ca_file, cli_env, verify

CORRAL = [sys.executable, "-m", "corral.cli.main"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_port_run(count: int) -> int:
    """The first of `count` consecutive free ports (`corral up --managers N` listens on N ports in a row). Taken below
    the kernel's ephemeral range (32768-60999), where no outgoing connection of a parallel test can take one of them
    between this check and the managers' bind, as it could the port after one that bind(0) gave."""
    while True:
        first = random.randrange(20000, 32000 - count)
        try:
            with contextlib.ExitStack() as held:
                for port in range(first, first + count):
                    sock = held.enter_context(socket.socket())
                    sock.bind(("127.0.0.1", port))
            return first
        except OSError:
            continue


def wait_until(check: Callable[[], Any], timeout: float = 30.0, interval: float = 0.25, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except Exception as err:  # noqa: BLE001 - retried until the deadline
            last_error = err
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}" + (f" (last error: {last_error})" if last_error else ""))


class Cluster:
    def __init__(
        self, data_dir: Path, nodes: int = 3, first_address: str = "127.0.0.12", extra: list[str] | None = None, registry: bool = False,
        managers: int = 1,
    ) -> None:
        self.data_dir = data_dir
        self.nodes = nodes
        self.first_address = first_address
        self.port = free_port() if managers == 1 else free_port_run(managers)
        self.url = f"https://127.0.0.1:{self.port}"
        self.extra = extra or []
        # The image registry on a free port when asked for, else none (never the default 5000, which a demo may hold).
        self.registry = f"127.0.0.1:{free_port()}" if registry else None
        self.extra += ["--registry-listen", self.registry] if self.registry else ["--no-registry"]
        self.service_network = private_service_network()  # VIPs and the nodes' DNS responder (its first address)
        self.extra += ["--service-network", self.service_network]
        self.managers = managers  # more than 1: a local etcd and managers on self.port and the ports after it
        self.extra += ["--managers", str(managers)] if managers > 1 else []
        self.proc: subprocess.Popen | None = None
        self.cluster_id = ""
        self.log = data_dir / "cluster.log"

    def start(self) -> "Cluster":
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = self.log.open("ab")
        self.proc = subprocess.Popen(
            [*CORRAL, "up", "--nodes", str(self.nodes), "--data-dir", str(self.data_dir), "--listen", f"127.0.0.1:{self.port}",
             "--first-address", self.first_address, *self.extra],
            stdout=log, stderr=subprocess.STDOUT,
        )
        wait_until(lambda: len(self.api("GET", "/v1/nodes")) == self.nodes, 30 * self.managers, what="nodes to register")
        self.cluster_id = self.api("GET", "/v1/info")["cluster_id"]
        return self

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(30 * self.managers)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def cleanup(self) -> None:
        self.stop()
        if self.cluster_id:
            remove_containers(self.cluster_id)

    def api(self, method: str, path: str, body: Any = None) -> Any:
        response = httpx.request(method, self.url + path, json=body, timeout=10, verify=verify(self.data_dir), headers=admin_headers(self.data_dir))
        response.raise_for_status()
        return response.json()

    def cli_env(self) -> dict[str, str]:
        """The environment of a `corral` command for this cluster: its URL, its CA, its admin token."""
        return cli_env(self.url, self.data_dir)

    def cli(
        self, *args: str, check: bool = True, stdin: str | None = None, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess:
        env = {**self.cli_env(), **(env or {})}
        done = subprocess.run([*CORRAL, *args], env=env, capture_output=True, text=True, timeout=60, input=stdin)
        if check and done.returncode != 0:
            raise AssertionError(f"corral {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
        return done

    def cli_json(self, *args: str) -> Any:
        return json.loads(self.cli(*args, "--output", "json").stdout)

    def containers(self, **labels: str) -> list:
        filters = [f"corral.cluster={self.cluster_id}", *(f"corral.{k}={v}" for k, v in labels.items())]
        return docker.from_env().containers.list(all=True, filters={"label": filters}, ignore_removed=True)

    def running_tasks(self, service: str) -> list[dict]:
        return [t for t in self.cli_json("service", "ps", service) if t["state"] == "running" and t["desired_state"] == "running"]

    def wait_running(self, service: str, count: int, timeout: float = 45) -> list[dict]:
        def check() -> list[dict] | None:
            tasks = self.running_tasks(service)
            live = [c for c in self.containers(service=service) if c.status == "running"]
            return tasks if len(tasks) == count and len(live) == count else None

        return wait_until(check, timeout, 0.5, what=f"{count} running tasks of {service}")  # type: ignore[no-any-return]


def private_service_network() -> str:
    """A /24 of its own for a test cluster's service VIPs, so clusters running at once never share one."""
    return f"10.217.{random.randint(1, 254)}.0/24"


def remove_containers(cluster_id: str) -> None:
    client = docker.from_env()
    for container in client.containers.list(all=True, filters={"label": f"corral.cluster={cluster_id}"}, ignore_removed=True):
        try:
            container.remove(force=True)
        except docker.errors.NotFound:
            pass
    # its named volumes, which outlive containers and stacks by design
    for volume in client.volumes.list(filters={"label": f"corral.cluster={cluster_id}"}):
        try:
            volume.remove(force=True)
        except docker.errors.APIError:
            pass
    # the service VIPs its agents put on `lo` (left behind when an agent was killed)
    subprocess.run(["ip", "addr", "flush", "dev", "lo", "label", f"lo:crl{cluster_id[:8]}"], capture_output=True)
    remove_networks(cluster_id)


def remove_networks(cluster_id: str) -> None:
    """The per-stack networks and the isolation chain a cluster's agents made (left behind by a killed agent)."""
    client = docker.from_env()
    for network in client.networks.list(filters={"label": f"corral.cluster={cluster_id}"}):
        try:
            network.remove()
        except docker.errors.APIError:
            pass
    for parent, chain in (("INPUT", f"CORRAL-NET-{cluster_id[:8]}"), ("FORWARD", f"CORRAL-NETFWD-{cluster_id[:8]}")):
        rules = subprocess.run(["iptables", "-w", "-S", parent], capture_output=True, text=True).stdout
        for rule in rules.splitlines():
            if rule.startswith(f"-A {parent} ") and rule.endswith(f"-j {chain}"):
                subprocess.run(["iptables", "-w", "-D", *rule.split()[1:]], capture_output=True)
        subprocess.run(["iptables", "-w", "-F", chain], capture_output=True)
        subprocess.run(["iptables", "-w", "-X", chain], capture_output=True)
