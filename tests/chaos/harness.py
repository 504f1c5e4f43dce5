"""The chaos suite's cluster: a split cluster (tests/e2e/split.py) whose pieces a test can stop, cut off and starve.

- Each agent reaches the manager through a door of its own: a port on
  127.0.0.1 that an iptables DNAT rule sends to the manager's port. A
  partition of one agent is a DROP rule on its door (both directions, by
  the connection's original port), so the others still talk.
- A process is stalled with SIGSTOP and resumed with SIGCONT, by its PID.
- A `Sampler` thread counts the service's running containers all along:
  the replicas above and below the wanted count at worst.

Every iptables rule carries a comment naming this cluster and is removed in
`cleanup`, whatever happened.
"""

import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import docker
import httpx

from tests.e2e.cluster import CORRAL, free_port, wait_until
from tests.e2e.split import SplitCluster

TERMINAL = ("complete", "failed", "shutdown", "rejected", "lost", "orphaned")
LEASE, GRACE = 3.0, 2.0  # the defaults: a node is down 5 s after its last heartbeat
MANAGER_ARGS = ["--node-lease", str(LEASE), "--node-grace", str(GRACE)]
HOLD = LEASE + GRACE + 4.0  # how long a fault lasts: past lease and grace, long enough for replacements to run
STACK = """
services:
  web:
    image: corral-demo:latest
    stop_grace_period: 1s
    deploy:
      replicas: {web}
      restart_policy: {{condition: any, delay: 0s}}
  api:
    image: corral-demo:latest
    stop_grace_period: 1s
    deploy:
      replicas: {api}
      restart_policy: {{condition: any, delay: 0s}}
"""


def docker_ready() -> bool:
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "image", "inspect", "corral-demo:latest"], capture_output=True).returncode == 0


def _iptables(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["iptables", "-w", *args], capture_output=True, text=True)
    if check and done.returncode != 0:
        raise AssertionError(f"iptables {' '.join(args)}: {done.stderr.strip()}")
    return done


class ChaosCluster(SplitCluster):
    def __init__(self, data_dir: Path, nodes: int = 3, first_address: int = 44, docker_host: str | None = None) -> None:
        """`docker_host`: the agents' engine (DOCKER_HOST), when not the machine's own."""
        super().__init__(data_dir, nodes=nodes, first_address=first_address, manager_args=MANAGER_ARGS)
        self.doors = {name: free_port() for name in self.names}
        self.tag = f"corral-chaos-{self.port}"
        self.agent_env = {**os.environ, **({"DOCKER_HOST": docker_host} if docker_host else {})}
        self.docker = docker.DockerClient(base_url=docker_host) if docker_host else docker.from_env()

    def start(self) -> "ChaosCluster":
        for door in self.doors.values():
            _iptables("-t", "nat", "-A", "OUTPUT", *self._door_rule(door))
        super().start()
        return self

    def _door_rule(self, door: int) -> list[str]:
        return ["-o", "lo", "-p", "tcp", "-d", "127.0.0.1", "--dport", str(door), "-m", "comment", "--comment", self.tag,
                "-j", "DNAT", "--to-destination", f"127.0.0.1:{self.port}"]

    def start_agent(self, name: str) -> None:
        self.agents[name] = subprocess.Popen(
            [*CORRAL, "agent", "--manager", f"https://127.0.0.1:{self.doors[name]}", "--name", name,
             "--address", self.addresses[name], "--token", self.token],
            stdout=self._log, stderr=subprocess.STDOUT, env=self.agent_env,
        )

    def cleanup(self) -> None:
        for proc in [*self.agents.values(), self.manager]:  # a stopped process cannot take its SIGTERM
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGCONT)
        try:
            super().cleanup()
            self.remove_containers()  # those of a private engine (super() removes the machine engine's)
        finally:
            self.remove_rules()

    def remove_rules(self) -> None:
        for table in ("filter", "nat"):
            for line in _iptables("-t", table, "-S", "OUTPUT").stdout.splitlines():
                if self.tag in line and line.startswith("-A "):
                    rule = subprocess.run(["sh", "-c", f"iptables -w -t {table} -D {line[3:]}"], capture_output=True, text=True)
                    assert rule.returncode == 0, rule.stderr

    def containers(self, **labels: str) -> list[Any]:
        filters = [f"corral.cluster={self.cluster_id}", *(f"corral.{k}={v}" for k, v in labels.items())]
        return self.docker.containers.list(all=True, filters={"label": filters}, ignore_removed=True)  # type: ignore[no-any-return]

    def remove_containers(self) -> None:
        for container in self.containers():
            try:
                container.remove(force=True)
            except docker.errors.APIError:
                pass

    # -- faults

    def pause(self, proc: subprocess.Popen[bytes] | None) -> None:
        assert proc is not None and proc.poll() is None
        os.kill(proc.pid, signal.SIGSTOP)

    def resume(self, proc: subprocess.Popen[bytes] | None) -> None:
        assert proc is not None
        os.kill(proc.pid, signal.SIGCONT)

    @contextmanager
    def partition(self, name: str) -> Iterator[None]:
        """`name`'s agent and the manager cannot reach each other (packets dropped both ways) until the block ends."""
        rule = ["OUTPUT", "-p", "tcp", "-m", "conntrack", "--ctorigdstport", str(self.doors[name]),
                "-m", "comment", "--comment", self.tag, "-j", "DROP"]
        _iptables("-I", *rule)
        try:
            yield
        finally:
            _iptables("-D", *rule)

    # -- acting

    def deploy_stack(self, web: int, api: int) -> Path:
        """Deploy STACK as `app` (services app_web, app_api) and wait until it runs; returns the compose file."""
        compose = self.data_dir / "compose.yaml"
        compose.write_text(STACK.format(web=web, api=api))
        self.deploy(compose, "app")
        self.wait_settled({"app_web": web, "app_api": api})
        return compose

    def scale(self, service: str, replicas: int) -> None:
        """Scale, and check the write was acknowledged."""
        assert self.api("POST", f"/v1/services/{service}/scale", {"replicas": replicas})["replicas"] == replicas

    # -- looking

    def states_for(self, seconds: float) -> set[str]:
        """Every node state seen over the next `seconds`."""
        seen: set[str] = set()
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                seen |= set(self.node_states().values())
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        return seen

    def ready_again(self, name: str) -> float:
        """Seconds until `name` is ready."""
        began = time.monotonic()
        wait_until(lambda: self.node_states()[name] == "ready", 30, 0.1, what=f"{name} ready again")
        return time.monotonic() - began

    def node_states(self) -> dict[str, str]:
        return {n["name"]: n["state"] for n in self.api("GET", "/v1/nodes")}

    def all_ready(self) -> bool:
        return set(self.node_states().values()) == {"ready"} and len(self.node_states()) == len(self.names)

    def settled(self, services: dict[str, int]) -> bool:
        """Every service at exactly its count (tasks and containers), every node ready, one live task per slot."""
        return self.all_ready() and all(self.converged(s, n) is not None for s, n in services.items()) and all(
            max(live_slots(self.tasks(s)).values(), default=1) == 1 for s in services
        )

    def wait_settled(self, services: dict[str, int], timeout: float = 60) -> float:
        began = time.monotonic()
        try:
            wait_until(lambda: self.settled(services), timeout, 0.2, what=f"{services} converged with every node ready")
        except AssertionError as err:
            raise AssertionError(f"{err}\n{self.describe(services)}") from None
        return time.monotonic() - began

    def describe(self, services: dict[str, int]) -> str:
        """What the cluster looks like, for a failure's message: nodes, tasks, containers, the log's end."""
        lines = [f"nodes: {self.node_states()}"]
        for service in services:
            tasks = Counter((t["node"], t["state"], t["desired_state"]) for t in self.tasks(service))
            running = Counter(c.labels.get("corral.node") for c in self.containers(service=service) if c.status == "running")
            lines.append(f"{service}: tasks {dict(tasks)}; running containers by node {dict(running)}")
        log = (self.data_dir / "cluster.log").read_text(errors="replace").splitlines()
        lines += ["cluster.log (end):", *[line for line in log if " INFO " not in line][-25:]]
        return "\n".join(lines)


def live_slots(tasks: list[dict[str, Any]]) -> Counter[Any]:
    return Counter(t["slot"] for t in tasks if t["desired_state"] == "running" and t["state"] not in TERMINAL)


class Sampler:
    """Counts a service's running containers every `every` seconds (from Docker: the truth, whatever the manager says)."""

    def __init__(self, cluster: ChaosCluster, service: str, every: float = 0.2) -> None:
        self.cluster = cluster
        self.service = service
        self.every = every
        self.wanted = 0
        self.above = 0
        self.below = 0
        self._client = cluster.docker
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def count(self) -> int:
        filters = [f"corral.cluster={self.cluster.cluster_id}", f"corral.service={self.service}"]
        return len(self._client.containers.list(filters={"label": filters, "status": "running"}))

    def expect(self, wanted: int) -> None:
        """From now on `wanted` replicas are wanted; the worst seen is counted from here."""
        self.wanted, self.above, self.below = wanted, 0, 0

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                running = self.count()
            except Exception:  # noqa: BLE001 - a private engine being restarted; look again
                running = -1
            if running >= 0 and self.wanted:
                self.above = max(self.above, running - self.wanted)
                self.below = max(self.below, self.wanted - running)
            self._stop.wait(self.every)

    def __enter__(self) -> "Sampler":
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(5)


@dataclass
class Figure:
    """What one fault cost, as docs/reliability.md reports it."""

    fault: str
    held_s: float  # how long the fault lasted
    node_ready_s: float | None = None  # from its end until the node was ready again
    converged_s: float = 0.0  # from its end until every replica ran exactly once and every node was ready
    above: int = 0  # running containers above the wanted count, at worst
    below: int = 0  # and below it
    notes: dict[str, Any] = field(default_factory=dict)


class Figures:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows: list[Figure] = []

    def add(self, figure: Figure) -> None:
        self.rows.append(figure)
        self.path.write_text(json.dumps([asdict(row) for row in self.rows], indent=1))
        print(f"CHAOS {json.dumps(asdict(figure))}", flush=True)


class PrivateDocker:
    """A Docker daemon of the test's own (never the machine's: other work shares that one), to restart under the agents.

    Its own data root, exec root, pid file and socket under a temp dir, and a bridge of its own
    (created here, removed in cleanup), no iptables. Never `--bridge=none`: a dockerd started so
    deletes the machine's `docker0`, which the machine's own dockerd (and every later test) needs.
    Stopped and started again by the PID this object started."""

    BRIDGE = "corralchaos0"
    BRIDGE_ADDRESS = "172.31.254.1/24"

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="corral-chaos-docker-"))
        self.socket = f"unix://{self.root}/docker.sock"
        self.proc: subprocess.Popen[bytes] | None = None
        self._log = (self.root / "dockerd.log").open("ab")

    def _bridge(self) -> None:
        run = lambda *args: subprocess.run(["ip", *args], capture_output=True)  # noqa: E731
        if run("link", "show", self.BRIDGE).returncode != 0:
            assert run("link", "add", self.BRIDGE, "type", "bridge").returncode == 0, "cannot create a bridge"
            run("addr", "add", self.BRIDGE_ADDRESS, "dev", self.BRIDGE)
        run("link", "set", self.BRIDGE, "up")

    def start(self) -> None:
        self._bridge()
        self.proc = subprocess.Popen(
            ["dockerd", "--data-root", str(self.root / "data"), "--exec-root", str(self.root / "exec"),
             "--pidfile", str(self.root / "dockerd.pid"), "-H", self.socket, f"--bridge={self.BRIDGE}", "--iptables=false",
             "--ip-masq=false", "--ip-forward=false", "--userland-proxy=false", "--shutdown-timeout", "1"],
            stdout=self._log, stderr=subprocess.STDOUT,
        )
        wait_until(self.answers, 30, 0.1, what="the private dockerd")

    def answers(self) -> bool:
        return subprocess.run(["docker", "-H", self.socket, "info"], capture_output=True).returncode == 0

    def load_demo_image(self) -> None:
        saved = subprocess.Popen(["docker", "save", "corral-demo:latest"], stdout=subprocess.PIPE)
        loaded = subprocess.run(["docker", "-H", self.socket, "load"], stdin=saved.stdout, capture_output=True)
        assert saved.wait() == 0 and loaded.returncode == 0, loaded.stderr

    def stop(self) -> None:
        """SIGTERM by its PID, as a service manager restarting Docker would; its containers die with it."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None

    def cleanup(self) -> None:
        try:
            if self.proc is not None and self.answers():
                ids = subprocess.run(["docker", "-H", self.socket, "ps", "-aq"], capture_output=True, text=True).stdout.split()
                if ids:
                    subprocess.run(["docker", "-H", self.socket, "rm", "-f", *ids], capture_output=True)
                # its networks' bridges outlive it otherwise, still routing their subnets on the host
                subprocess.run(["docker", "-H", self.socket, "network", "prune", "-f"], capture_output=True)
            self.stop()
        finally:
            self._log.close()
            shutil.rmtree(self.root, ignore_errors=True)
            subprocess.run(["ip", "link", "del", self.BRIDGE], capture_output=True)
