"""Benchmark of the CLI's start: `corral --help` and `corral service ls` as whole processes, against `docker version`.

Starts a manager (subprocess, free loopback port, temporary data dir, no registry), deploys a stack of
`--services` services (no agent: they list with 0 running, which is all `service ls` needs), then runs, in turn,
`--runs` times each (after one warm-up run each):

- `corral --help`                       (what the `corral` script runs: `from corral.cli.main import run; run()`)
- `corral service ls`                   (CORRAL_MANAGER, CORRAL_TOKEN = the admin token, CORRAL_CA = the cluster CA)
- `docker version`                      (the baseline: a Go client that asks its daemon, as `service ls` asks the manager)
- `python -c pass`                      (the floor: this Python's own start, site and .pth files included)

and prints, for each, the median and the range of wall time, and the median CPU (user + system of the child, from
getrusage), then the ratios of the medians to docker's. Goal (issue 21, item 4): both corral commands under 150 ms of
wall time at the median.

    .venv/bin/python bench/cli.py
    .venv/bin/python bench/cli.py --runs 20
    PYTHONPATH=/tmp/old-checkout .venv/bin/python bench/cli.py --entry app   # an older corral (its CLI's entry was `app`)
    git archive main | tar -x -C /tmp/main-tree && .venv/bin/python bench/cli.py --baseline /tmp/main-tree

The CLI runs in a temporary directory, so PYTHONPATH (not this checkout) decides which corral it imports.
`--baseline DIR` adds DIR's `corral --help` and `corral service ls` (PYTHONPATH=DIR) to the same rounds, so a
change is compared with the code before it on the same loaded machine, turn by turn.

The last line printed is one JSON object with the figures.
"""

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from agent import wait_for  # bench/agent.py: the same wait for the same manager
from cluster import free_port, stop  # bench/cluster.py: the same manager, stopped the same way
from corral.pki import client_context

ROOT = Path(__file__).resolve().parent.parent
GOAL_S = 0.150


def compose(services: int) -> str:
    lines = ["services:"]
    for n in range(services):
        lines += [f"  web{n}:", "    image: corral-demo:latest", "    deploy:", "      replicas: 2"]
    return "\n".join(lines) + "\n"


def run_once(command: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds, exit code) of one whole process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}): {done.stderr.decode()[-500:]}")
    return wall, cpu, done.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="counted runs of each command (median of these)")
    parser.add_argument("--services", type=int, default=10, help="services `service ls` lists")
    parser.add_argument("--entry", default="run", help="the function of corral.cli.main the `corral` script calls")
    parser.add_argument("--baseline", type=Path, help="a checkout of other corral code whose CLI runs in the same rounds")
    args = parser.parse_args()
    if shutil.which("docker") is None:
        raise SystemExit("docker is needed for the baseline (`docker version`)")
    work = Path(tempfile.mkdtemp(prefix="corral-bench-cli-"))
    manager = None
    try:
        port = free_port()
        url = f"https://127.0.0.1:{port}"
        data = work / "data"
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        manager = subprocess.Popen(
            [sys.executable, "-m", "corral.cli.main", "manager", "--data-dir", str(data), "--listen", f"127.0.0.1:{port}",
             "--no-registry"],
            env=env, stdout=open(work / "manager.log", "w"), stderr=subprocess.STDOUT,
        )
        wait_for(lambda: (data / "ca.pem").exists() and (data / "admin-token").exists(), 60, "the manager")
        token = (data / "admin-token").read_text().strip()
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=url, verify=client_context((data / "ca.pem").read_bytes()), headers=headers, timeout=30) as api:
            wait_for(lambda: api.get("/v1/info").status_code == 200, 60, "the manager's API")
            api.post("/v1/stacks/bench/deploy", json={"compose": compose(args.services)}).raise_for_status()
        cli_env = {**os.environ, "CORRAL_MANAGER": url, "CORRAL_TOKEN": token, "CORRAL_CA": str(data / "ca.pem"),
                   "CORRAL_CONFIG": str(work / "no-profile.json")}
        cli_env.pop("PYTHONDONTWRITEBYTECODE", None)  # as a user runs it: bytecode cached (by the warm-up run), not compiled each time
        corral = [sys.executable, "-c", f"import sys; sys.argv[0] = 'corral'; from corral.cli.main import {args.entry}; sys.exit({args.entry}())"]
        listed = subprocess.run([*corral, "service", "ls"], env=cli_env, cwd=work, capture_output=True, text=True, check=True).stdout
        if listed.count("bench_web") != args.services:
            raise SystemExit(f"`corral service ls` did not list the {args.services} services:\n{listed}")
        commands = {
            "corral --help": [*corral, "--help"],
            "corral service ls": [*corral, "service", "ls"],
            "docker version": ["docker", "version"],
            "python -c pass": [sys.executable, "-c", "pass"],
        }
        envs = {name: cli_env for name in commands}
        if args.baseline is not None:
            baseline_env = {**cli_env, "PYTHONPATH": str(args.baseline.resolve())}
            for name in ("corral --help", "corral service ls"):
                commands[f"baseline {name[7:]}"] = commands[name]
                envs[f"baseline {name[7:]}"] = baseline_env
        walls: dict[str, list[float]] = {name: [] for name in commands}
        cpus: dict[str, list[float]] = {name: [] for name in commands}
        for round_ in range(args.runs + 1):  # round 0: the warm-up, not counted
            for name, command in commands.items():
                wall, cpu, _ = run_once(command, envs[name], work)
                if round_:
                    walls[name].append(wall)
                    cpus[name].append(cpu)
        figures: dict[str, dict[str, float]] = {}
        docker = statistics.median(walls["docker version"])
        print(f"{args.runs} runs each, in turn; {args.services} services listed; goal: corral commands under {GOAL_S * 1000:.0f} ms; "
              f"load average {os.getloadavg()[0]:.2f}")
        print(f"{'command':<20} {'wall median':>12} {'wall min-max':>16} {'cpu median':>11} {'x docker':>9}")
        for name in commands:
            wall = statistics.median(walls[name])
            figures[name] = {
                "wall_median_s": round(wall, 4), "wall_min_s": round(min(walls[name]), 4), "wall_max_s": round(max(walls[name]), 4),
                "cpu_median_s": round(statistics.median(cpus[name]), 4), "ratio_to_docker": round(wall / docker, 2),
            }
            print(f"{name:<20} {wall * 1000:>9.1f} ms {min(walls[name]) * 1000:>7.1f}-{max(walls[name]) * 1000:<6.1f}ms "
                  f"{figures[name]['cpu_median_s'] * 1000:>8.1f} ms {wall / docker:>8.2f}x")
        result = {
            "runs": args.runs, "services": args.services, "goal_s": GOAL_S,
            "help_s": figures["corral --help"]["wall_median_s"], "service_ls_s": figures["corral service ls"]["wall_median_s"],
            "docker_version_s": figures["docker version"]["wall_median_s"], "python_floor_s": figures["python -c pass"]["wall_median_s"],
            "commands": figures, "loadavg": os.getloadavg()[0],
        }
        if args.baseline is not None:
            result["baseline"] = str(args.baseline)
        print(json.dumps(result))
    finally:
        if manager is not None:
            stop(manager)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
