"""How fast corral puts replicas back after a node or a container dies.

Starts a manager and three agents as separate processes (default settings:
lease 3 s + grace 2 s), deploys 6 replicas, and measures the seconds from the
fault to 6 running replicas again (6 tasks running and 6 containers up):

- node kill: SIGKILL of one agent and `docker kill` of all its containers;
- container kill: `docker kill` of one container, with the default restart
  delay (5 s, as Swarm) and with `delay: 0s`.

Baseline, measured in the same run: `docker run` of the same image until it
serves HTTP, the floor of any replacement. Prints medians of --runs runs; the
last line is JSON.

    .venv/bin/python bench/recovery.py [--runs 5]
"""

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.e2e.cluster import free_port, wait_until  # noqa: E402
from tests.e2e.split import SplitCluster  # noqa: E402

REPLICAS = 6
COMPOSE = """
services:
  web:
    image: corral-demo:latest
    ports: ["8080"]
    stop_grace_period: 1s
    deploy:
      replicas: {replicas}
{policy}
"""


def write_compose(directory: Path, delay: str | None) -> Path:
    policy = f"      restart_policy: {{condition: any, delay: {delay}}}" if delay is not None else ""
    path = directory / f"compose-{delay}.yaml"
    path.write_text(COMPOSE.format(replicas=REPLICAS, policy=policy))
    return path


def time_to_converge(cluster: SplitCluster, service: str, gone: set[str], start: float) -> float:
    def done() -> bool:
        tasks = cluster.converged(service, REPLICAS)
        return bool(tasks) and not gone & {t["id"] for t in tasks}

    wait_until(done, 60, 0.05, what="recovery")
    return time.monotonic() - start


def node_kill(cluster: SplitCluster, compose: Path, run: int) -> float:
    stack = f"n{run}"
    service = f"{stack}_web"
    cluster.deploy(compose, stack)
    tasks = cluster.wait_converged(service, REPLICAS)
    victim, _ = Counter(t["node"] for t in tasks).most_common(1)[0]
    gone = {t["id"] for t in tasks if t["node"] == victim}
    start = time.monotonic()
    cluster.kill_node(victim)
    took = time_to_converge(cluster, service, gone, start)
    cluster.start_agent(victim)
    wait_until(lambda: cluster.api("GET", f"/v1/nodes/{victim}")["state"] == "ready", 60, what=f"{victim} back")
    cluster.api("DELETE", f"/v1/stacks/{stack}")
    wait_until(lambda: not cluster.containers(stack=stack), 30, what="stack removed")
    return took


def container_kill(cluster: SplitCluster, stack: str, run: int) -> float:
    """Kill the container of slot `run`: each run hits another slot, so no slot looks like a crash loop."""
    import docker

    service = f"{stack}_web"
    tasks = sorted(cluster.wait_converged(service, REPLICAS), key=lambda t: t["slot"])
    victim = tasks[run % len(tasks)]
    start = time.monotonic()
    docker.from_env().containers.get(victim["container_id"]).kill()
    return time_to_converge(cluster, service, {victim["id"]}, start)


def docker_run_baseline(address: str) -> float:
    port = free_port()
    start = time.monotonic()
    container = subprocess.run(
        ["docker", "run", "-d", "--rm", "--label", "corral.bench=recovery", "-p", f"{address}:{port}:8080", "corral-demo:latest"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()
    try:
        wait_until(lambda: httpx.get(f"http://{address}:{port}/", timeout=1).status_code == 200, 30, 0.02, what="baseline")
        return time.monotonic() - start
    finally:
        subprocess.run(["docker", "rm", "-f", container], capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="corral-recovery-") as tmp:
        directory = Path(tmp)
        cluster = SplitCluster(directory / "cluster", nodes=3, first_address=60)
        try:
            cluster.start()
            baseline = [docker_run_baseline("127.0.0.60") for _ in range(args.runs)]
            nodes = []
            for run in range(args.runs):
                nodes.append(node_kill(cluster, write_compose(directory, None), run))
                print(f"node kill {run + 1}: {nodes[-1]:.2f}s", flush=True)
            containers: dict[str, list[float]] = {}
            for delay in ("5s", "0s"):
                stack = f"c{delay[:-1]}"
                cluster.deploy(write_compose(directory, delay), stack)
                containers[delay] = [container_kill(cluster, stack, run) for run in range(args.runs)]
                print(f"container kill (restart delay {delay}): {', '.join(f'{t:.2f}s' for t in containers[delay])}", flush=True)
        except BaseException:
            log = directory / "cluster" / "cluster.log"
            print(log.read_text()[-3000:] if log.exists() else "(no log)", file=sys.stderr)
            raise
        finally:
            cluster.cleanup()

    figures = {
        "replicas": REPLICAS,
        "runs": args.runs,
        "node_kill_s": round(statistics.median(nodes), 2),
        "node_kill_max_s": round(max(nodes), 2),
        "container_kill_default_delay_s": round(statistics.median(containers["5s"]), 2),
        "container_kill_zero_delay_s": round(statistics.median(containers["0s"]), 2),
        "baseline_docker_run_s": round(statistics.median(baseline), 2),
        "detection_s": 5.0,
    }
    print()
    print(f"node killed (agent + containers) -> {REPLICAS} running again: median {figures['node_kill_s']}s, max {figures['node_kill_max_s']}s "
          f"(of which the lease + grace before a node is declared down: 5.0s)")
    print(f"container killed -> replaced: median {figures['container_kill_default_delay_s']}s with the default 5s restart delay, "
          f"{figures['container_kill_zero_delay_s']}s with delay 0s")
    print(f"baseline: docker run until it serves HTTP: median {figures['baseline_docker_run_s']}s")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
