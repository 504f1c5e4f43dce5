"""Rolling update and rollback under load through the routing mesh: how long they take, what they cost.

Starts a local cluster (`corral up`, 3 nodes on 127.0.0.80-82, free API port,
no registry, a temporary data dir), deploys a service of `--replicas`
corral-demo replicas publishing a free port on the mesh, with an HTTP health
check and `update_config` (parallelism 2, start-first). Then, each round:

- update:   `wrk` (a separate process, loopback, one node's mesh address)
            sends steady load while `corral service update --image V2 --watch`
            runs; the window lasts until the old containers are gone;
- rollback: the same with `corral service rollback --watch`;
- baseline: the same load for the same duration with no rollout.

Figures per phase: the rollout's duration (command start to the watch's exit:
converged), the time until only new containers run (`settled`), requests
sent and failed (wrk's socket errors plus non-2xx answers), req/s and p99,
and ratios of req/s and p99 to the baseline of the same run. Durations, req/s
and p99 are medians over `--rounds`; requests and failures are totals.

The replicas run busybox httpd under a shell that exits at once on SIGTERM,
as most servers do (httpd as PID 1 ignores SIGTERM and would be SIGKILLed
only after the grace period, which would hide a missing drain).
busybox httpd closes every connection, so each request is a new connection
through the mesh: the case in which a backend leaving or joining is felt most.

    .venv/bin/python bench/rollout.py
    .venv/bin/python bench/rollout.py --rounds 3 --replicas 6 --parallelism 2

The last line printed is one JSON object with the figures.
"""

import argparse
import io
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

import docker
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.e2e.cluster import CORRAL, Cluster, free_port, wait_until  # noqa: E402

V1 = "corral-demo:latest"
STACK = """
services:
  web:
    image: {image}
    command: ["sh", "-c", "trap 'exit 0' TERM; httpd -f -p 8080 -h /www & wait"]
    ports: ["{port}:8080"]
    stop_grace_period: 2s
    x-corral-healthcheck:
      http: {{port: 8080, path: /}}
      interval: 1s
      timeout: 1s
    deploy:
      replicas: {replicas}
      update_config: {{parallelism: {parallelism}, order: {order}, monitor: 2s, failure_action: pause}}
      rollback_config: {{parallelism: {parallelism}, order: {order}, monitor: 2s}}
"""
SERVICE = "bench_web"


@dataclass(frozen=True)
class Load:
    """What one wrk run measured."""

    seconds: float
    requests: int
    failed: int
    rps: float
    p99_ms: float
    max_ms: float
    errors: str  # wrk's own words for the failures, empty when none


@dataclass(frozen=True)
class Rollout:
    rollout_s: float  # command start until `--watch` exits: converged
    settled_s: float  # command start until only the new containers run
    load: Load


def build_v2(tag: str) -> None:
    """corral-demo with another page, so that the update is a real change of image."""
    files = {"Dockerfile": f"FROM {V1}\nCOPY index.html /www/index.html\n".encode(), "index.html": b"<h1>hello from v2</h1>\n"}
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    buffer.seek(0)
    docker.from_env().images.build(fileobj=buffer, custom_context=True, tag=tag, rm=True)


def start_wrk(url: str, threads: int, connections: int, seconds: int = 600) -> subprocess.Popen[str]:
    return subprocess.Popen(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", url],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def stop_wrk(proc: subprocess.Popen[str]) -> Load:
    """SIGINT makes wrk stop and print its summary."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=30)
    return parse_wrk(out)


def parse_wrk(out: str) -> Load:
    totals = re.search(r"(\d+) requests in ([\d.]+)(ms|s|m)\b", out)
    if totals is None:
        raise SystemExit(f"wrk printed no summary:\n{out}")
    seconds = float(totals.group(2)) * {"ms": 0.001, "s": 1.0, "m": 60.0}[totals.group(3)]
    socket_errors = re.search(r"Socket errors: (.*)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    failed = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", socket_errors.group(1))) if socket_errors else 0
    failed += int(non2xx.group(1)) if non2xx else 0
    errors = "; ".join(m.group(0) for m in (socket_errors, non2xx) if m)
    return Load(
        seconds=seconds,
        requests=int(totals.group(1)),
        failed=failed,
        rps=float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        p99_ms=latency_ms(out, r"99%\s+"),
        max_ms=latency_ms(out, r"Latency\s+\S+\s+\S+\s+"),
        errors=errors,
    )


def latency_ms(out: str, before: str) -> float:
    value, unit = re.search(before + r"([\d.]+)(us|ms|s|m)\b", out).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def corral(cluster: Cluster, *args: str) -> None:
    env = cluster.cli_env()
    done = subprocess.run([*CORRAL, *args], env=env, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise SystemExit(f"corral {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")


def only(cluster: Cluster, image: str, replicas: int) -> bool:
    """True when the service runs exactly `replicas` tasks and containers, all of `image`."""
    tasks = [t for t in cluster.api("GET", f"/v1/services/{SERVICE}/tasks") if t["desired_state"] == "running"]
    containers = [c for c in cluster.containers(service=SERVICE) if c.status == "running"]
    return (
        len(tasks) == replicas and all(t["state"] == "running" and t["image"] == image for t in tasks)
        and len(containers) == replicas and {c.labels["corral.task"] for c in containers} == {t["id"] for t in tasks}
    )


def serves(url: str, text: str) -> bool:
    return all(text in httpx.get(url, timeout=5).text for _ in range(6))


def roll(cluster: Cluster, command: list[str], image: str, replicas: int, url: str, args: argparse.Namespace) -> Rollout:
    wrk = start_wrk(url, args.threads, args.connections)
    try:
        time.sleep(args.margin)  # load is steady before the rollout begins
        began = time.monotonic()
        corral(cluster, "service", *command, SERVICE, "--watch")
        rollout_s = time.monotonic() - began
        wait_until(lambda: only(cluster, image, replicas), 120, 0.1, what=f"only {image} containers")
        settled_s = time.monotonic() - began
        time.sleep(args.margin)  # and after the last old container went away
    finally:
        load = stop_wrk(wrk)
    return Rollout(round(rollout_s, 2), round(settled_s, 2), load)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicas", type=int, default=6)
    parser.add_argument("--parallelism", type=int, default=2)
    parser.add_argument("--order", choices=["start-first", "stop-first"], default="start-first")
    parser.add_argument("--rounds", type=int, default=3, help="update + rollback + baseline, this many times")
    parser.add_argument("--threads", type=int, default=2)
    # busybox httpd's listen backlog is small: more connections measure SYN retries (see bench/mesh.py)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--margin", type=float, default=1.0, help="seconds of load before and after each rollout")
    parser.add_argument("--first-address", default="127.0.0.80")
    args = parser.parse_args()

    v2 = f"corral-demo:bench-rollout-{uuid.uuid4().hex[:8]}"
    port = free_port()
    url = f"http://{args.first_address}:{port}/"
    updates: list[Rollout] = []
    rollbacks: list[Rollout] = []
    baselines: list[Load] = []
    with tempfile.TemporaryDirectory(prefix="corral-bench-rollout-") as workdir:
        cluster = Cluster(Path(workdir) / "cluster", nodes=3, first_address=args.first_address)
        try:
            build_v2(v2)
            cluster.start()
            compose = Path(workdir) / "compose.yaml"
            compose.write_text(STACK.format(image=V1, port=port, replicas=args.replicas, parallelism=args.parallelism, order=args.order))
            corral(cluster, "deploy", "-c", str(compose), "--name", "bench", "--detach")
            wait_until(lambda: only(cluster, V1, args.replicas), 120, 0.5, what=f"{args.replicas} running replicas")
            wait_until(lambda: len(cluster.api("GET", f"/v1/services/{SERVICE}/endpoints")) == args.replicas, 30, what="endpoints")
            wait_until(lambda: serves(url, "hello from corral"), 30, what="the mesh to serve v1")
            for round_ in range(1, args.rounds + 1):
                updates.append(roll(cluster, ["update", "--image", v2], v2, args.replicas, url, args))
                if not serves(url, "hello from v2"):
                    raise SystemExit("after the update the mesh does not serve v2")
                print(f"round {round_} update   {updates[-1]}", file=sys.stderr)
                rollbacks.append(roll(cluster, ["rollback"], V1, args.replicas, url, args))
                if not serves(url, "hello from corral"):
                    raise SystemExit("after the rollback the mesh does not serve v1")
                print(f"round {round_} rollback {rollbacks[-1]}", file=sys.stderr)
                seconds = max(1, round(statistics.mean([updates[-1].load.seconds, rollbacks[-1].load.seconds])))
                wrk = start_wrk(url, args.threads, args.connections, seconds)
                wrk.wait(seconds + 30)
                baselines.append(stop_wrk(wrk))
                print(f"round {round_} baseline {baselines[-1]}", file=sys.stderr)
        finally:
            cluster.cleanup()
            try:
                docker.from_env().images.remove(v2, force=True)
            except docker.errors.APIError:
                pass
    report(args, summarize(updates, rollbacks, baselines))


def phase_figures(runs: list[Rollout], base: dict) -> dict:
    rps = statistics.median(r.load.rps for r in runs)
    p99 = statistics.median(r.load.p99_ms for r in runs)
    return {
        "rollout_s": statistics.median(r.rollout_s for r in runs),
        "settled_s": statistics.median(r.settled_s for r in runs),
        "requests": sum(r.load.requests for r in runs),
        "failed": sum(r.load.failed for r in runs),
        "rps": rps,
        "p99_ms": p99,
        "max_ms": max(r.load.max_ms for r in runs),
        "rps_ratio": round(rps / base["rps"], 3) if base["rps"] else 0.0,
        "p99_ratio": round(p99 / base["p99_ms"], 3) if base["p99_ms"] else 0.0,
        "errors": [r.load.errors for r in runs if r.load.errors],
        "runs": [asdict(r) for r in runs],
    }


def summarize(updates: list[Rollout], rollbacks: list[Rollout], baselines: list[Load]) -> dict:
    base = {
        "seconds": statistics.median(b.seconds for b in baselines),
        "requests": sum(b.requests for b in baselines),
        "failed": sum(b.failed for b in baselines),
        "rps": statistics.median(b.rps for b in baselines),
        "p99_ms": statistics.median(b.p99_ms for b in baselines),
        "max_ms": max(b.max_ms for b in baselines),
        "errors": [b.errors for b in baselines if b.errors],
    }
    return {"update": phase_figures(updates, base), "rollback": phase_figures(rollbacks, base), "baseline": base}


def report(args: argparse.Namespace, figures: dict) -> None:
    print(
        f"{args.replicas} replicas on 3 nodes behind the mesh, update_config parallelism {args.parallelism} {args.order}, "
        f"http health check every 1s; wrk -t{args.threads} -c{args.connections} on {args.first_address}; "
        f"medians of {args.rounds} rounds (requests and failures: totals)"
    )
    print(f"{'phase':9} {'rollout s':>9} {'settled s':>9} {'requests':>9} {'failed':>6} {'req/s':>7} {'ratio':>6} {'p99 ms':>7} {'max ms':>7}")
    for phase in ("update", "rollback"):
        f = figures[phase]
        print(
            f"{phase:9} {f['rollout_s']:9.2f} {f['settled_s']:9.2f} {f['requests']:9d} {f['failed']:6d} {f['rps']:7.0f} "
            f"{f['rps_ratio']:6.2f} {f['p99_ms']:7.1f} {f['max_ms']:7.1f}"
        )
    b = figures["baseline"]
    print(f"{'baseline':9} {'-':>9} {'-':>9} {b['requests']:9d} {b['failed']:6d} {b['rps']:7.0f} {1.0:6.2f} {b['p99_ms']:7.1f} {b['max_ms']:7.1f}")
    for phase in ("update", "rollback", "baseline"):
        for errors in figures[phase]["errors"]:
            print(f"{phase} failures: {errors}")
    summary = {
        "benchmark": "rollout", "replicas": args.replicas, "parallelism": args.parallelism, "order": args.order,
        "rounds": args.rounds, "threads": args.threads, "connections": args.connections,
        "update_s": figures["update"]["rollout_s"], "update_settled_s": figures["update"]["settled_s"],
        "update_requests": figures["update"]["requests"], "update_failed": figures["update"]["failed"],
        "update_rps": figures["update"]["rps"], "update_rps_ratio": figures["update"]["rps_ratio"],
        "update_p99_ms": figures["update"]["p99_ms"],
        "rollback_s": figures["rollback"]["rollout_s"], "rollback_settled_s": figures["rollback"]["settled_s"],
        "rollback_requests": figures["rollback"]["requests"], "rollback_failed": figures["rollback"]["failed"],
        "rollback_rps": figures["rollback"]["rps"], "rollback_rps_ratio": figures["rollback"]["rps_ratio"],
        "rollback_p99_ms": figures["rollback"]["p99_ms"],
        "baseline_s": figures["baseline"]["seconds"], "baseline_requests": figures["baseline"]["requests"],
        "baseline_failed": figures["baseline"]["failed"], "baseline_rps": figures["baseline"]["rps"],
        "baseline_p99_ms": figures["baseline"]["p99_ms"],
        "runs": {phase: figures[phase]["runs"] for phase in ("update", "rollback")},
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
