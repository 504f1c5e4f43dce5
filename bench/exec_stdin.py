"""Benchmark of `corral exec -i`: stdin throughput and session start, against `docker exec -i` in the same run.

Starts a local cluster (real Docker), deploys one replica, then, interleaved `--repeat` times:

- throughput: `--megabytes` MB piped into `wc -c` in the container, through
  `corral exec -i SERVICE -- wc -c` (CLI -> manager -> agent node listener (mutual TLS) -> engine, each a
  WebSocket hop but the last) and through `docker exec -i CONTAINER wc -c` (the baseline: the engine alone);
  the count printed must equal what was sent;
- start: the wall time of `exec -i ... true` with empty stdin (the CLI's start, the session's set-up on
  every hop, the engine's exec).

    flock /tmp/corral-e2e.lock .venv/bin/python bench/exec_stdin.py [--megabytes 16 --repeat 3]

Medians are printed with the ratio corral/docker; the last line is one JSON object with the figures.
"""

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.e2e.cluster import CORRAL, Cluster  # noqa: E402

STACK = """
services:
  sink:
    image: corral-demo:latest
    stop_grace_period: 1s
    deploy: {replicas: 1}
"""
SERVICE = "bench_sink"


def timed(command: list[str], data: bytes, env: dict[str, str] | None = None) -> tuple[float, bytes]:
    begin = time.monotonic()
    done = subprocess.run(command, input=data, env=env, capture_output=True, timeout=600)
    took = time.monotonic() - begin
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}): {done.stderr.decode(errors='replace')}")
    return took, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--megabytes", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    data = (b"0123456789abcdef" * 64 + b"\n") * (args.megabytes * 1024 * 1024 // 1025)
    with tempfile.TemporaryDirectory(prefix="corral-bench-exec-") as workdir:
        cluster = Cluster(Path(workdir) / "cluster", nodes=1)
        try:
            cluster.start()
            compose = Path(workdir) / "compose.yaml"
            compose.write_text(STACK)
            cluster.cli("deploy", "-c", str(compose), "--name", "bench")
            cluster.wait_running(SERVICE, 1)
            container = cluster.containers(service=SERVICE)[0].id
            env = cluster.cli_env()
            ways = {
                "docker": (["docker", "exec", "-i", container], None),
                "corral": ([*CORRAL, "exec", "-i", SERVICE, "--"], env),
            }
            mbps: dict[str, list[float]] = {way: [] for way in ways}
            start: dict[str, list[float]] = {way: [] for way in ways}
            for round_ in range(1, args.repeat + 1):
                for way, (prefix, way_env) in ways.items():
                    took, out = timed([*prefix, "wc", "-c"], data, way_env)
                    if int(out.split()[0]) != len(data):
                        raise SystemExit(f"{way}: wc -c counted {out!r}, {len(data)} bytes were sent")
                    mbps[way].append(len(data) / took / 1e6)
                    start[way].append(timed([*prefix, "true"], b"", way_env)[0])
                print(f"round {round_}: " + ", ".join(f"{way} {mbps[way][-1]:.1f} MB/s start {start[way][-1] * 1000:.0f} ms" for way in ways), flush=True)
        finally:
            cluster.cleanup()
    medians = {way: {"mb_per_s": statistics.median(mbps[way]), "start_ms": statistics.median(start[way]) * 1000} for way in ways}
    print(f"{'way':40} {'MB/s':>8} {'ratio':>6} {'start ms':>9} {'ratio':>6}")
    for way, label in (("docker", "docker exec -i (engine alone)"), ("corral", "corral exec -i (CLI, manager, agent)")):
        print(f"{label:40} {medians[way]['mb_per_s']:8.1f} {medians[way]['mb_per_s'] / medians['docker']['mb_per_s']:6.2f} "
              f"{medians[way]['start_ms']:9.0f} {medians[way]['start_ms'] / medians['docker']['start_ms']:6.2f}")
    print(json.dumps({"megabytes": len(data) / 1e6, "repeat": args.repeat, "medians": medians}))


if __name__ == "__main__":
    main()
