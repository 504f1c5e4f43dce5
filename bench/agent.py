"""Benchmark of an idle agent: resident memory and CPU of `corral agent` running 20 tasks, against a bare Python.

Starts a manager (subprocess, free loopback port, temporary data dir, no
registry) and one real agent process (`corral agent --engine hollow --name
...`: the hollow engine starts no containers, everything else is the real
agent: join over mTLS, lease, task watch, reconcile, status reports, mesh),
deploys one service of `--tasks` replicas (20; with `--engine docker`, real
busybox containers, optionally probed over HTTP), waits until all run, lets
the agent settle, then samples for `--seconds`:

- the agent's resident memory (VmRSS, median of samples once a second) and
  its peak (VmHWM), with its child processes' RSS if it has any;
- its CPU (user + system ticks over the window) as a share of one core.

With `--engine docker --proxy-seconds S`, the service also publishes a port
on the routing mesh, and after the idle window `wrk` sends HTTP requests to
it on loopback for S seconds (`--proxy-connections`, default 8): every one
goes through the agent's mesh proxy to one of the 20 busybox replicas. The
agent's RSS and CPU are sampled the same way while it proxies (goal: RSS
under 60 MB).

The baseline is measured in the same run over the same window: a bare
`python -c "import asyncio; asyncio.run(...sleep...)"` process (what any
asyncio daemon pays before its own code). Then what imports alone cost:
the RSS of a Python that only imports `corral.cli.main` (what `corral agent`
loads) and one that only imports `corral.agent.daemon`.

    .venv/bin/python bench/agent.py                       # 20 tasks, 30 s window
    .venv/bin/python bench/agent.py --tasks 20 --seconds 60
    flock /tmp/corral-e2e.lock .venv/bin/python bench/agent.py --engine docker --probe-interval 5   # 20 busybox containers
    flock /tmp/corral-e2e.lock .venv/bin/python bench/agent.py --engine docker --probe-interval 5 --proxy-seconds 20

The last line printed is one JSON object with the figures. Goals (issue 21):
RSS under 40 MB (10^6 bytes) and CPU under 1% of a core idle, RSS under 60 MB
while proxying.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from cluster import free_port, stop  # bench/cluster.py: the same manager, stopped the same way
from mesh import wrk  # bench/mesh.py: the same load, parsed the same way
from corral.pki import client_context

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
CORRAL = [PYTHON, "-m", "corral.cli.main"]
TICKS = os.sysconf("SC_CLK_TCK")


def status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def cpu_ticks(pid: int) -> int:
    """User + system ticks of the process (fields 14 and 15 of /proc/PID/stat)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[11]) + int(fields[12])


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        path = task / "children"
        if path.exists():
            found += [int(child) for child in path.read_text().split()]
    return found


def wait_for(check, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (httpx.TransportError, OSError, ValueError, KeyError):
            pass
        time.sleep(0.2)
    raise SystemExit(f"timed out after {timeout:.0f}s waiting for {what}")


def watch(pids: dict[str, int], seconds: float) -> dict[str, dict[str, float]]:
    """RSS (median of samples once a second, MB) and CPU (% of a core) of each process over the same window."""
    start_ticks = {name: cpu_ticks(pid) for name, pid in pids.items()}
    samples: dict[str, list[int]] = {name: [] for name in pids}
    extra: dict[str, list[int]] = {name: [] for name in pids}
    began = time.monotonic()
    while time.monotonic() - began < seconds:
        for name, pid in pids.items():
            samples[name].append(status_kib(pid, "VmRSS"))
            extra[name].append(sum(status_kib(child, "VmRSS") for child in children(pid)))
        time.sleep(1.0)
    elapsed = time.monotonic() - began
    return {
        name: {
            "rss_mb": statistics.median(samples[name]) * 1024 / 1e6,
            "peak_rss_mb": status_kib(pid, "VmHWM") * 1024 / 1e6,
            "children_rss_mb": statistics.median(extra[name]) * 1024 / 1e6,
            "cpu_pct": (cpu_ticks(pid) - start_ticks[name]) / TICKS / elapsed * 100,
        }
        for name, pid in pids.items()
    }


def proxying(pid: int, url: str, seconds: int, connections: int) -> dict[str, float]:
    """The agent's RSS and CPU while wrk sends requests to `url` (a port on its mesh) for `seconds`."""
    wait_for(lambda: httpx.get(url, timeout=2).status_code == 200, 60, f"{url} to answer through the mesh")
    with ThreadPoolExecutor(1) as pool:
        load = pool.submit(wrk, [], url, 1, connections, seconds)  # [] : wrk on this host (no namespace)
        time.sleep(1.0)  # wrk's connections open
        figures = watch({"agent": pid}, seconds - 2)["agent"]
        run = load.result()
    return {**figures, "rps": run.rps, "p50_ms": run.p50_ms, "p99_ms": run.p99_ms, "errors": float(run.errors)}


def import_rss(module: str) -> float:
    """RSS (MB) of a Python process that imports `module` and nothing else."""
    code = f"import {module}; print([l for l in open('/proc/self/status') if l.startswith('VmRSS')][0].split()[1])"
    done = subprocess.run([PYTHON, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    return int(done.stdout.strip()) * 1024 / 1e6


def compose(tasks: int, probe_interval: float, published: int | None = None) -> str:
    text = f"services:\n  idle:\n    image: corral-demo:latest\n    deploy: {{replicas: {tasks}}}\n"
    if published is not None:  # on the routing mesh: the agent proxies this port to the replicas
        text += f"    ports: [\"{published}:8080\"]\n"
    if probe_interval > 0:  # the agent probes each replica over HTTP from outside (busybox httpd serves :8080)
        text += f"    x-corral-healthcheck: {{http: {{port: 8080, path: /}}, interval: {probe_interval}s}}\n"
    return text


def remove_containers(cluster_id: str) -> None:
    """The containers the agent left running (SIGTERM keeps them), then its stack's network (a bridge left on the
    host slows every later start), by this cluster's label only."""
    for kind, listing in (("container", ["ps", "-aq"]), ("network", ["network", "ls", "-q"])):
        listed = subprocess.run(["docker", *listing, "--filter", f"label=corral.cluster={cluster_id}"], capture_output=True, text=True)
        ids = listed.stdout.split()
        if ids:
            subprocess.run(["docker", kind, "rm", *(["-f"] if kind == "container" else []), *ids], capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=30.0, help="the sampling window")
    parser.add_argument("--engine", choices=("hollow", "docker"), default="hollow",
                        help="docker: real busybox containers (run under flock /tmp/corral-e2e.lock)")
    parser.add_argument("--probe-interval", type=float, default=0.0,
                        help="with --engine docker: an HTTP health check on every replica every this many seconds (0: none)")
    parser.add_argument("--py-spy", metavar="FILE", help="record the agent with py-spy (raw format) over the sampling window")
    parser.add_argument("--settle", type=float, default=5.0, help="seconds to wait after every task runs, before sampling")
    parser.add_argument("--proxy-seconds", type=int, default=0,
                        help="with --engine docker: then sample while wrk sends requests through the mesh for this long (0: not)")
    parser.add_argument("--proxy-connections", type=int, default=8, help="wrk's connections while proxying")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="corral-bench-agent-"))
    procs: list[subprocess.Popen] = []
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cluster_id = None
    if args.probe_interval > 0 and args.engine != "docker":
        raise SystemExit("--probe-interval needs --engine docker (hollow containers serve nothing)")
    if args.proxy_seconds > 0 and (args.engine != "docker" or shutil.which("wrk") is None):
        raise SystemExit("--proxy-seconds needs --engine docker (a hollow agent runs no mesh) and wrk")
    published = free_port() if args.proxy_seconds > 0 else None
    proxy: dict[str, float] = {}
    try:
        port = free_port()
        url = f"https://127.0.0.1:{port}"
        data = work / "data"
        procs.append(subprocess.Popen(
            [*CORRAL, "manager", "--data-dir", str(data), "--listen", f"127.0.0.1:{port}", "--no-registry"],
            env=env, stdout=open(work / "manager.log", "w"), stderr=subprocess.STDOUT,
        ))
        wait_for(lambda: (data / "join-token").exists() and (data / "ca.pem").exists() and (data / "admin-token").exists(), 60, "the manager")
        headers = {"Authorization": f"Bearer {(data / 'admin-token').read_text().strip()}"}
        with httpx.Client(base_url=url, verify=client_context((data / "ca.pem").read_bytes()), headers=headers, timeout=30) as api:
            wait_for(lambda: api.get("/v1/info").status_code == 200, 60, "the manager's API")
            cluster_id = api.get("/v1/info").json()["cluster_id"]
            agent = subprocess.Popen(
                [*CORRAL, "agent", "--manager", url, "--token-file", str(data / "join-token"), "--engine", args.engine,
                 "--name", "idle-1", "--address", "127.0.0.1", "--state-dir", str(work / "agent")],
                env=env, stdout=open(work / "agent.log", "w"), stderr=subprocess.STDOUT,
            )
            procs.append(agent)
            wait_for(lambda: api.get("/v1/info").json()["nodes"] >= 1, 60, "the agent to join")
            api.post("/v1/stacks/bench/deploy", json={"compose": compose(args.tasks, args.probe_interval, published)}).raise_for_status()

            def all_running() -> bool:
                if agent.poll() is not None:
                    raise SystemExit(f"the agent exited with {agent.returncode}; see {work / 'agent.log'}")
                return sum(s["running"] for s in api.get("/v1/services").json()) >= args.tasks

            wait_for(all_running, 120, f"{args.tasks} running tasks")
            print(f"{args.tasks} tasks running on one {args.engine} agent"
                  f"{f', HTTP probe every {args.probe_interval:g}s' if args.probe_interval else ''}; settling {args.settle:.0f}s, then sampling {args.seconds:.0f}s")
            time.sleep(args.settle)
            baseline = subprocess.Popen(
                [PYTHON, "-c", f"import asyncio; asyncio.run(asyncio.sleep({args.seconds + 30}))"], cwd=ROOT
            )
            procs.append(baseline)
            time.sleep(1.0)
            if args.py_spy:
                procs.append(subprocess.Popen(
                    ["py-spy", "record", "--pid", str(agent.pid), "--rate", "100", "--duration", str(int(args.seconds)),
                     "--format", "raw", "-o", args.py_spy], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                ))
            figures = watch({"agent": agent.pid, "baseline": baseline.pid}, args.seconds)
            if published is not None:
                proxy = proxying(agent.pid, f"http://127.0.0.1:{published}/", args.proxy_seconds, args.proxy_connections)
        imports = {"import_cli_mb": import_rss("corral.cli.main"), "import_agent_mb": import_rss("corral.agent.daemon"),
                   "import_asyncio_mb": import_rss("asyncio")}
        a, b = figures["agent"], figures["baseline"]
        print(f"agent:    RSS {a['rss_mb']:.1f} MB (peak {a['peak_rss_mb']:.1f}, children {a['children_rss_mb']:.1f}), CPU {a['cpu_pct']:.2f}% of a core")
        print(f"baseline: RSS {b['rss_mb']:.1f} MB (bare python + asyncio), CPU {b['cpu_pct']:.2f}%")
        if proxy:
            print(f"proxying: RSS {proxy['rss_mb']:.1f} MB (peak {proxy['peak_rss_mb']:.1f}), CPU {proxy['cpu_pct']:.1f}% of a core, "
                  f"{proxy['rps']:.0f} requests/s through the mesh (wrk -c{args.proxy_connections}, p99 {proxy['p99_ms']:.1f} ms, "
                  f"{proxy['errors']:.0f} errors)")
        print(f"imports alone: corral.cli.main {imports['import_cli_mb']:.1f} MB, corral.agent.daemon {imports['import_agent_mb']:.1f} MB, "
              f"asyncio {imports['import_asyncio_mb']:.1f} MB")
        result = {
            "engine": args.engine, "tasks": args.tasks, "probe_interval_s": args.probe_interval, "seconds": args.seconds,
            "agent_rss_mb": a["rss_mb"], "agent_peak_rss_mb": a["peak_rss_mb"], "agent_children_rss_mb": a["children_rss_mb"],
            "agent_cpu_pct": a["cpu_pct"], "baseline_rss_mb": b["rss_mb"], "baseline_cpu_pct": b["cpu_pct"],
            "rss_ratio": a["rss_mb"] / b["rss_mb"], **imports,
            "rss_goal_met": a["rss_mb"] < 40, "cpu_goal_met": a["cpu_pct"] < 1,
        }
        if proxy:
            result.update({f"proxy_{key}": value for key, value in proxy.items()})
            result["proxy_rss_goal_met"] = proxy["rss_mb"] < 60
        print(json.dumps({k: round(v, 2) if isinstance(v, float) else v for k, v in result.items()}))
    finally:
        for proc in reversed(procs):
            stop(proc)
        if args.engine == "docker" and cluster_id is not None:
            remove_containers(cluster_id)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
