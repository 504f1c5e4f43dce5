"""Benchmark of log streaming: lines per second through `corral service logs -f`, and memory while a reader is paused.

Starts a local cluster (3 nodes, real Docker), deploys a service of 3
replicas that print as fast as they can (busybox `yes`), then, interleaved
`--repeat` times for `--duration` seconds each:

- docker:  `docker logs -f --tail 0` of one of the containers (the baseline: what one engine stream gives);
- corral:  `corral service logs -f --tail 0 --raw` of the service: the 3 replicas' streams, each engine ->
           agent node listener (mutual TLS) -> manager -> CLI, merged;

counting the lines each prints (read from its stdout as fast as possible).
Then a paused reader: `corral service logs -f` whose stdout nobody reads
(the pipe fills, the CLI stops reading, the manager's queue fills, its
agents' streams stop being read), while the RSS of the cluster process
(manager and agents: `corral up` is one process) and of the CLI are
sampled every second for `--pause` seconds. Flat means back-pressure holds;
growing means something buffers.

    .venv/bin/python bench/logs.py
    .venv/bin/python bench/logs.py --duration 5 --repeat 3 --pause 15

The replicas' log files grow at the engine's rate (tens of MB per second):
the service is removed, with its containers and their logs, at the end.
The last line printed is one JSON object with the figures.
"""

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.e2e.cluster import CORRAL, Cluster, wait_until  # noqa: E402

STACK = """
services:
  flood:
    image: corral-demo:latest
    command: ["yes", "a log line of about sixty characters, printed as fast as it can"]
    stop_grace_period: 1s
    deploy: {replicas: 3}
"""
SERVICE = "logs_flood"


def count_lines(command: list[str], env: dict[str, str] | None, seconds: float) -> float:
    """Lines per second the command prints in `seconds` (after its first line)."""
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, bufsize=0)
    assert proc.stdout is not None
    counted = [0]
    started = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        while chunk := proc.stdout.read(1 << 16):
            if not started.is_set():
                started.set()
            counted[0] += chunk.count(b"\n")

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        if not started.wait(20):
            raise SystemExit(f"{' '.join(command)} printed nothing in 20 s")
        first, begin = counted[0], time.monotonic()
        time.sleep(seconds)
        return (counted[0] - first) / (time.monotonic() - begin)
    finally:
        proc.terminate()
        proc.wait(10)


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def paused_reader(cluster: Cluster, seconds: int) -> dict[str, list[float]]:
    """RSS samples (MiB) of the cluster process and of a CLI whose stdout nobody reads."""
    assert cluster.proc is not None
    reader = subprocess.Popen([*CORRAL, "service", "logs", SERVICE, "-f", "--tail", "0"], env=cluster.cli_env(),
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        time.sleep(3)  # the pipe fills, every buffer on the way fills: from here on nothing may grow
        samples: dict[str, list[float]] = {"cluster": [], "cli": []}
        for _ in range(seconds):
            samples["cluster"].append(rss_mib(cluster.proc.pid))
            samples["cli"].append(rss_mib(reader.pid))
            time.sleep(1)
        return samples
    finally:
        reader.kill()
        reader.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=3.0, help="seconds each measurement counts lines")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--pause", type=int, default=10, help="seconds the paused reader is watched")
    parser.add_argument("--first-address", default="127.0.0.90")
    args = parser.parse_args()
    rates: dict[str, list[float]] = {"docker": [], "corral": []}
    with tempfile.TemporaryDirectory(prefix="corral-bench-logs-") as workdir:
        cluster = Cluster(Path(workdir) / "cluster", nodes=3, first_address=args.first_address)
        try:
            cluster.start()
            compose = Path(workdir) / "compose.yaml"
            compose.write_text(STACK)
            cluster.cli("deploy", "-c", str(compose), "--name", "logs", "--detach")
            cluster.wait_running(SERVICE, 3, timeout=60)
            container = cluster.containers(service=SERVICE)[0].id
            env = cluster.cli_env()
            for round_ in range(1, args.repeat + 1):
                rates["docker"].append(count_lines(["docker", "logs", "-f", "--tail", "0", container], None, args.duration))
                rates["corral"].append(count_lines([*CORRAL, "service", "logs", SERVICE, "-f", "--tail", "0", "--raw"], env, args.duration))
                print(f"round {round_}: docker {rates['docker'][-1]:,.0f} lines/s, corral {rates['corral'][-1]:,.0f} lines/s", file=sys.stderr)
            memory = paused_reader(cluster, args.pause)
            cluster.cli("service", "rm", SERVICE)
            wait_until(lambda: not cluster.containers(service=SERVICE), 30, what="the flood's containers to go")
        finally:
            cluster.cleanup()
    report(args, rates, memory)


def report(args: argparse.Namespace, rates: dict[str, list[float]], memory: dict[str, list[float]]) -> None:
    docker, corral = statistics.median(rates["docker"]), statistics.median(rates["corral"])
    growth = {name: round(samples[-1] - samples[0], 1) for name, samples in memory.items()}
    print(f"\nlines/s, median of {args.repeat} interleaved runs of {args.duration:g} s (3 replicas printing with `yes`)")
    print(f"{'stream':<44}{'lines/s':>12}{'ratio':>8}")
    print(f"{'docker logs -f (one container)':<44}{docker:>12,.0f}{1.0:>8.2f}")
    print(f"{'corral service logs -f (3 replicas, merged)':<44}{corral:>12,.0f}{corral / docker:>8.2f}")
    print(f"\npaused reader, RSS MiB sampled every 1 s for {args.pause} s")
    for name, samples in memory.items():
        print(f"{name:<10} first {samples[0]:7.1f}  last {samples[-1]:7.1f}  max {max(samples):7.1f}  growth {growth[name]:+.1f}")
    print(json.dumps({
        "docker_lines_per_s": round(docker), "corral_lines_per_s": round(corral), "ratio": round(corral / docker, 2),
        "runs": rates, "paused_rss_mib": memory, "paused_growth_mib": growth,
    }))


if __name__ == "__main__":
    main()
