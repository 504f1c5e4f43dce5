"""Deploy to serving: how long a user waits from a deploy until the service answers through the routing mesh.

Starts a local cluster of 3 real nodes on 127.0.0.90-92 (free API port, no
registry, a temporary data dir; the image corral-demo:latest is present), in
one of two shapes (`--shape`):

- `split` (the default): a `corral manager` and one `corral agent` per node,
  each its own process, as a production cluster runs them (each node's agent
  on its own server, with its own event loop and core time);
- `up`: `corral up`, which runs the manager, the three agents and their
  meshes in ONE process and on one event loop (rounds one and two measured
  this shape: every fork, TLS record and JSON reply of one delays the others).

Then:

(a) one by one: deploys `--services` single-replica services, each its own
    stack publishing its own port on the mesh, through the API
    (`POST /v1/stacks/NAME/deploy`). For each, the time from the deploy's
    answer (`answer_s`), and from the request (`request_s`), until the service
    answers HTTP through the mesh on *every* node's address.
    Baseline, in the same run, alternating with corral's deploys so that both
    see the same machine: `docker run -d -p 127.0.0.1:PORT:8080` of the same
    image and command, from the command's start until it answers HTTP
    (`docker_run`: the docker CLI, as a user types it), the same through
    the Engine API (`docker_api`: create + start, no CLI start-up), and
    `docker network create` + `docker run --network` on it
    (`docker_network_run`: what each corral stack's own network costs the
    engine alone, as a compose project's first `up`).
(b) burst: one compose file of `--services` services at once; the time from
    the deploy's request until every service answers on every node.
    Baseline, in the same run: `--services` `docker run -d -p` started at
    once (one process each), until every container answers.

HTTP checks are plain sockets (GET /, an answer starting `HTTP/1.`) every
`--poll` seconds, so the poll adds at most that much to each figure.

`--trace` also follows `GET /v1/events` and splits each one-by-one deploy of
(a) into the steps a user waits on, from the manager's times of the task's
events (`updated_at`, the manager's clock, which is this machine's): the
deploy's answer -> task created and assigned (the controller's pass) ->
`starting` (the agent's watch woke it and its first report arrived) ->
`running` (the engine's start and the report) -> serving on the first node
and on the last (the mesh's routes reaching every node's proxy).

    .venv/bin/python bench/startup.py
    .venv/bin/python bench/startup.py --services 20     # a quick run
    .venv/bin/python bench/startup.py --services 30 --no-burst --trace   # where the time goes
    .venv/bin/python bench/startup.py --shape up   # the manager and the agents in one `corral up` process
    .venv/bin/python bench/startup.py --burst-only   # (b) alone

The last line printed is one JSON object with the figures.
"""

import argparse
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import docker
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.e2e.cluster import Cluster, free_port, wait_until  # noqa: E402
from tests.e2e.split import SplitCluster  # noqa: E402
from tests.tls import admin_headers, verify  # noqa: E402

IMAGE = "corral-demo:latest"
COMMAND = ["httpd", "-f", "-p", "8080", "-h", "/www"]
LABEL = "corral.bench.startup"
NETWORK_POOL = "10.220"  # the /24s of the docker network baseline (corral's own pool is 10.218.0.0/16)


def service_yaml(name: str, port: int) -> str:
    return (
        f"  {name}:\n"
        f"    image: {IMAGE}\n"
        f"    command: {json.dumps(COMMAND)}\n"
        f"    ports: [\"{port}:8080\"]\n"
        f"    stop_grace_period: 1s\n"
        f"    deploy: {{replicas: 1}}\n"
    )


def answers(address: str, port: int) -> bool:
    """True when address:port answers an HTTP request (any status)."""
    try:
        with socket.create_connection((address, port), timeout=1) as conn:
            conn.settimeout(1)
            conn.sendall(b"GET / HTTP/1.0\r\nHost: bench\r\n\r\n")
            return conn.recv(16).startswith(b"HTTP/1.")
    except OSError:
        return False


def wait_serving(
    targets: list[tuple[str, int]], poll: float, timeout: float = 60.0, first: list[float] | None = None
) -> float:
    """Poll until every (address, port) answers; the monotonic time at which the last one did (and, into `first`,
    the wall time at which the first one did)."""
    pending = list(targets)
    deadline = time.monotonic() + timeout
    while pending:
        before = len(pending)
        pending = [t for t in pending if not answers(*t)]
        if first is not None and not first and len(pending) < before:
            first.append(time.time())
        if not pending:
            break
        if time.monotonic() > deadline:
            raise SystemExit(f"not serving after {timeout}s: {pending[:5]}")
        time.sleep(poll)
    return time.monotonic()


class TaskEvents:
    """Follows `GET /v1/events` in a thread: per service, the manager's time of each of its tasks' events."""

    def __init__(self, url: str, home: Path) -> None:
        self.times: dict[str, dict[str, float]] = {}  # service -> action (create, starting, running) -> first time
        self.lock = threading.Lock()
        self.client = httpx.Client(base_url=url, verify=verify(home), headers=admin_headers(home), timeout=None)
        threading.Thread(target=self._follow, daemon=True).start()

    def _follow(self) -> None:
        try:
            with self.client.stream("GET", "/v1/events") as stream:
                for line in stream.iter_lines():
                    self._take(json.loads(line) if line.strip() else {})
        except httpx.HTTPError:  # the cluster stopped
            pass

    def _take(self, event: dict[str, object]) -> None:
        if event.get("type") != "task":
            return
        service = str(event["message"]).split(" ")[1].rsplit(".", 1)[0]  # "task SERVICE.SLOT (id) ..."
        with self.lock:
            self.times.setdefault(service, {}).setdefault(str(event["action"]), float(str(event["time"])))

    def of(self, service: str) -> dict[str, float]:
        with self.lock:
            return dict(self.times.get(service, {}))


STEPS = (  # (label, from, to): the marks of one deploy (see trace_marks)
    ("answer -> task assigned (controller)", "answer", "create"),
    ("assigned -> starting (agent wake-up)", "create", "starting"),
    ("starting -> running (engine start)", "starting", "running"),
    ("running -> serving, first node", "running", "first"),
    ("running -> serving, every node", "running", "served"),
)


def quantile(ordered: list[float], q: float) -> float:
    """The nearest-rank quantile of sorted values (p99 of 100 values: the 99th)."""
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


TAIL_STEPS = (  # the steps that add up to a deploy's whole wait, for the slowest deploys' breakdown
    ("controller", "answer", "create"), ("wake-up", "create", "starting"), ("engine", "starting", "running"),
    ("mesh", "running", "served"),
)


def trace_summary(marks: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    """Per step: p50, p90, p99 and max of its spans over the deploys (seconds)."""
    summary = {}
    for label, start, end in STEPS:
        spans = sorted(m[end] - m[start] for m in marks if start in m and end in m)
        if spans:
            summary[label] = {
                "p50": statistics.median(spans), "p90": quantile(spans, 0.9), "p99": quantile(spans, 0.99), "max": spans[-1],
            }
    return summary


def slowest(marks: list[dict[str, float]], count: int = 5) -> list[tuple[int, float, dict[str, float]]]:
    """The `count` deploys that waited longest from the answer to serving everywhere: (index, wait, step -> span)."""
    rows = [
        (i, m["served"] - m["answer"], {name: m[end] - m[start] for name, start, end in TAIL_STEPS if start in m and end in m})
        for i, m in enumerate(marks)
    ]
    return sorted(rows, key=lambda row: row[1], reverse=True)[:count]


def print_trace(marks: list[dict[str, float]]) -> None:
    print(f"trace of (a): {len(marks)} deploys, manager's event times")
    print(f"{'':40} {'p50 s':>7} {'p90 s':>7} {'p99 s':>7} {'max s':>7}")
    for label, row in trace_summary(marks).items():
        print(f"{label:40} {row['p50']:7.3f} {row['p90']:7.3f} {row['p99']:7.3f} {row['max']:7.3f}")
    print("the slowest deploys (answer -> serving on every node), by step:")
    for i, wait, spans in slowest(marks):
        steps = ", ".join(f"{name} {span:.3f}" for name, span in spans.items())
        print(f"  s{i}: {wait:.3f} s = {steps}")


def p99(values: list[float]) -> float:
    return quantile(sorted(values), 0.99)


def figures(values: list[float]) -> dict[str, float]:
    return {"p50_s": round(statistics.median(values), 3), "p99_s": round(p99(values), 3), "max_s": round(max(values), 3)}


class Deployer:
    """Deploys through the API with one kept-alive client, as a CLI or CI job would."""

    def __init__(self, url: str, home: Path) -> None:
        self.client = httpx.Client(base_url=url, verify=verify(home), headers=admin_headers(home), timeout=60)

    def deploy(self, stack: str, compose: str) -> None:
        response = self.client.post(f"/v1/stacks/{stack}/deploy", json={"compose": compose})
        if response.status_code != 200:
            raise SystemExit(f"deploy {stack}: {response.status_code} {response.text}")

    def remove(self, stack: str) -> None:
        self.client.delete(f"/v1/stacks/{stack}")


def docker_cli_run(name: str, port: int, poll: float) -> float:
    began = time.monotonic()
    subprocess.run(
        ["docker", "run", "-d", "--name", name, "--label", LABEL, "-p", f"127.0.0.1:{port}:8080", IMAGE, *COMMAND],
        check=True, capture_output=True,
    )
    return wait_serving([("127.0.0.1", port)], poll) - began


def docker_network_run(name: str, subnet: str, port: int, poll: float) -> float:
    """`docker network create` and `docker run --network` on it: what corral's per-stack network costs Docker alone
    (a compose project's first `up` does the same). Both are removed after: each network adds to the host's
    iptables rules, which every later start of corral and of the other baselines would pay for."""
    began = time.monotonic()
    subprocess.run(["docker", "network", "create", "--label", LABEL, "--subnet", subnet, name], check=True, capture_output=True)
    subprocess.run(
        ["docker", "run", "-d", "--name", name, "--label", LABEL, "--network", name, "-p", f"127.0.0.1:{port}:8080", IMAGE, *COMMAND],
        check=True, capture_output=True,
    )
    took = wait_serving([("127.0.0.1", port)], poll) - began
    subprocess.run(["docker", "rm", "-f", name], check=True, capture_output=True)
    subprocess.run(["docker", "network", "rm", name], check=True, capture_output=True)
    return took


def docker_api_run(engine: docker.DockerClient, name: str, port: int, poll: float) -> float:
    began = time.monotonic()
    engine.containers.run(IMAGE, COMMAND, name=name, labels=[LABEL], ports={"8080/tcp": ("127.0.0.1", port)}, detach=True)
    return wait_serving([("127.0.0.1", port)], poll) - began


def docker_burst(run_id: str, count: int, poll: float) -> float:
    """`count` docker runs at once, as a script would start them; seconds until all answer."""
    ports = [PORTS.new() for _ in range(count)]
    began = time.monotonic()
    runs = [
        subprocess.Popen(
            ["docker", "run", "-d", "--name", f"bench-startup-{run_id}-burst-{i}", "--label", LABEL,
             "-p", f"127.0.0.1:{port}:8080", IMAGE, *COMMAND],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        for i, port in enumerate(ports)
    ]
    for run in runs:
        if run.wait() != 0:
            raise SystemExit(f"docker run failed: {run.stderr.read().decode() if run.stderr else ''}")
    return wait_serving([("127.0.0.1", port) for port in ports], poll, timeout=300) - began


class Ports:
    """Free ports never handed out twice in a run: bind(0) on 127.0.0.1 says nothing of the ports the meshes listen
    on at the node addresses, and gave a port already published by an earlier service (a 422 at the 81st deploy)."""

    def __init__(self) -> None:
        self.given: set[int] = set()

    def new(self) -> int:
        while (port := free_port()) in self.given:
            pass
        self.given.add(port)
        return port


PORTS = Ports()


def start_cluster(data_dir: Path, shape: str, first_address: str) -> Cluster | SplitCluster:
    """The cluster of `--shape` (not started): `corral up` in one process, or a manager and an agent per node apart."""
    if shape == "up":
        return Cluster(data_dir, nodes=3, first_address=first_address)
    network, last = first_address.rsplit(".", 1)
    if network != "127.0.0":
        raise SystemExit(f"--first-address: the split shape takes 127.0.0.N, not {first_address}")
    return SplitCluster(data_dir, nodes=3, first_address=int(last), verbose=False)


def credentials(cluster: Cluster | SplitCluster) -> Path:
    """The data dir holding the cluster's CA and admin token."""
    return cluster.data_dir / "manager" if isinstance(cluster, SplitCluster) else cluster.data_dir


def remove_bench_containers(engine: docker.DockerClient) -> None:
    for container in engine.containers.list(all=True, filters={"label": LABEL}):
        container.remove(force=True)
    for network in engine.networks.list(filters={"label": LABEL}):
        network.remove()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=100)
    parser.add_argument("--poll", type=float, default=0.005, help="seconds between HTTP checks")
    parser.add_argument("--first-address", default="127.0.0.90")
    parser.add_argument("--trace", action="store_true", help="split each one-by-one deploy into its steps (GET /v1/events)")
    parser.add_argument("--no-burst", action="store_true", help="skip (b)")
    parser.add_argument(
        "--shape", choices=("split", "up"), default="split",
        help="split: a manager and an agent per node, each its own process (production); up: `corral up`, all in one process",
    )
    parser.add_argument("--burst-only", action="store_true", help="skip (a)")
    args = parser.parse_args()
    one_by_one = 0 if args.burst_only else args.services

    engine = docker.from_env()
    first = args.first_address.rsplit(".", 1)
    addresses = [f"{first[0]}.{int(first[1]) + i}" for i in range(3)]
    run_id = uuid.uuid4().hex[:6]
    answer_s: list[float] = []
    request_s: list[float] = []
    docker_run_s: list[float] = []
    docker_api_s: list[float] = []
    docker_net_s: list[float] = []
    marks: list[dict[str, float]] = []
    events: TaskEvents | None = None
    with tempfile.TemporaryDirectory(prefix="corral-bench-startup-") as workdir:
        cluster = start_cluster(Path(workdir) / "cluster", args.shape, args.first_address)
        try:
            cluster.start()
            home = credentials(cluster)
            deployer = Deployer(cluster.url, home)
            wait_until(lambda: all(n["state"] == "ready" for n in cluster.api("GET", "/v1/nodes")), 30, what="ready nodes")
            events = TaskEvents(cluster.url, home) if args.trace else None
            # (a) one by one, alternating with docker's baseline
            for i in range(one_by_one):
                port = PORTS.new()
                stack = f"s{i}"
                compose = "services:\n" + service_yaml("web", port)
                began = time.monotonic()
                deployer.deploy(stack, compose)
                answered, answered_wall = time.monotonic(), time.time()
                reached: list[float] = []
                served = wait_serving([(a, port) for a in addresses], args.poll, first=reached)
                answer_s.append(served - answered)
                request_s.append(served - began)
                marks.append({"answer": answered_wall, "first": reached[0], "served": answered_wall + (served - answered)})
                docker_run_s.append(docker_cli_run(f"bench-startup-{run_id}-cli-{i}", PORTS.new(), args.poll))
                docker_api_s.append(docker_api_run(engine, f"bench-startup-{run_id}-api-{i}", PORTS.new(), args.poll))
                docker_net_s.append(
                    docker_network_run(f"bench-startup-{run_id}-net-{i}", f"{NETWORK_POOL}.{i % 256}.0/24", PORTS.new(), args.poll)
                )
                if (i + 1) % 10 == 0:
                    print(
                        f"{i + 1} services: corral from answer p50 {statistics.median(answer_s):.3f}s, "
                        f"docker run p50 {statistics.median(docker_run_s):.3f}s", file=sys.stderr,
                    )
            if events is not None:  # the events have arrived by now (the last deploy served after its `running`)
                for i, mark in enumerate(marks):
                    mark |= events.of(f"s{i}_web")
            for i in range(one_by_one):
                deployer.remove(f"s{i}")
            remove_bench_containers(engine)
            wait_until(lambda: not [c for c in cluster.containers() if c.status == "running"], 120, 0.5, what="one-by-one stacks gone")
            burst = None if args.no_burst else run_burst(deployer, addresses, run_id, args)
        finally:
            remove_bench_containers(engine)
            cluster.cleanup()
    if events is None:
        marks.clear()
    report(args, answer_s, request_s, docker_run_s, docker_api_s, docker_net_s, marks, burst)


def run_burst(deployer: Deployer, addresses: list[str], run_id: str, args: argparse.Namespace) -> tuple[float, float, float]:
    """(b) one file of N services at once, then N docker runs at once: (deploy answered, all serving, docker's)."""
    ports = [PORTS.new() for _ in range(args.services)]
    compose = "services:\n" + "".join(service_yaml(f"web{i}", port) for i, port in enumerate(ports))
    began = time.monotonic()
    deployer.deploy("burst", compose)
    burst_answer = time.monotonic() - began
    served = wait_serving([(a, port) for port in ports for a in addresses], args.poll, timeout=300)
    return burst_answer, served - began, docker_burst(run_id, args.services, args.poll)


def report(
    args: argparse.Namespace, answer_s: list[float], request_s: list[float], docker_run_s: list[float],
    docker_api_s: list[float], docker_net_s: list[float], marks: list[dict[str, float]], burst: tuple[float, float, float] | None,
) -> None:
    if not answer_s:  # --burst-only
        report_burst(args, {"benchmark": "startup", "services": args.services, "nodes": 3, "shape": args.shape}, burst)
        return
    corral_a = figures(answer_s)
    corral_r = figures(request_s)
    run_f = figures(docker_run_s)
    api_f = figures(docker_api_s)
    net_f = figures(docker_net_s)
    print(f"(a) {args.services} single-replica services deployed one by one on 3 nodes ({args.shape} shape), until serving through the mesh on every node")
    print(f"{'':34} {'p50 s':>7} {'p99 s':>7} {'max s':>7}")
    for label, f in (
        ("corral, from the deploy's answer", corral_a), ("corral, from the deploy request", corral_r),
        ("docker run -d -p (CLI)", run_f), ("docker create+start (Engine API)", api_f),
        ("docker network create + run (CLI)", net_f),
    ):
        print(f"{label:34} {f['p50_s']:7.3f} {f['p99_s']:7.3f} {f['max_s']:7.3f}")
    if marks:
        print_trace(marks)
    summary: dict[str, object] = {
        "benchmark": "startup", "services": args.services, "nodes": 3, "shape": args.shape,
        "p50_s": corral_a["p50_s"], "p99_s": corral_a["p99_s"], "max_s": corral_a["max_s"],
        "from_request_p50_s": corral_r["p50_s"], "from_request_p99_s": corral_r["p99_s"],
        "docker_run_p50_s": run_f["p50_s"], "docker_run_p99_s": run_f["p99_s"],
        "docker_api_p50_s": api_f["p50_s"], "docker_api_p99_s": api_f["p99_s"],
        "docker_network_run_p50_s": net_f["p50_s"], "docker_network_run_p99_s": net_f["p99_s"],
        "p99_minus_docker_run_p99_s": round(corral_a["p99_s"] - run_f["p99_s"], 3),
        "p99_minus_docker_network_run_p99_s": round(corral_a["p99_s"] - net_f["p99_s"], 3),
    }
    if marks:
        summary["trace"] = {label: {k: round(v, 3) for k, v in row.items()} for label, row in trace_summary(marks).items()}
    report_burst(args, summary, burst)


def report_burst(args: argparse.Namespace, summary: dict[str, object], burst: tuple[float, float, float] | None) -> None:
    if burst is not None:
        burst_answer, burst_s, docker_burst_s = burst
        print(f"(b) one file of {args.services} services: deploy answered in {burst_answer:.2f}s, all serving on every node after {burst_s:.2f}s")
        print(f"    {args.services} docker runs at once: all serving after {docker_burst_s:.2f}s ({burst_s / docker_burst_s:.2f}x)")
        summary |= {
            "burst_answer_s": round(burst_answer, 3), "burst_all_serving_s": round(burst_s, 3),
            "docker_burst_all_serving_s": round(docker_burst_s, 3), "burst_ratio": round(burst_s / docker_burst_s, 2),
        }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
