"""Benchmark of the whole control plane: a manager, thousands of hollow nodes, 100,000 tasks.

Starts a real manager (a subprocess on a free port, its store in a temporary
directory) and hollow nodes in a few agent processes
(`corral agent --engine hollow --count N`), deploys one stack whose
services total `--tasks` replicas, and measures:

- the time from the deploy request until every task reports running, and
  the placements per second end to end that makes;
- the manager's peak memory (VmHWM of its process);
- the latency of each listing (LISTINGS: `GET /v1/services` and `GET /v1/nodes` whole, as
  before paging, and the first and second pages of 500 of nodes, services, tasks and one
  service's tasks), sampled in a loop while that happens, against a baseline sampled on the
  same cluster, idle, just before the deploy (medians and ratios); and `GET /v1/tasks` whole,
  timed a few times once every task runs (it is not sampled during the run: at 100,000 tasks
  one answer takes seconds of the manager's time, which would slow what is measured).

    .venv/bin/python bench/cluster.py                             # 5,000 nodes, 100,000 tasks
    .venv/bin/python bench/cluster.py --nodes 200 --tasks 5000    # a quick check

Every process it starts is stopped by PID at the end, and the temporary
directory removed. The last line printed is one JSON object with the figures,
among them `progress`: [seconds since the deploy, tasks running] about every
10 s. If not every task runs within `--timeout`, it still prints what it
measured so far (`"timed_out": true`, `"all_running_s": null`,
`"running_at_timeout"`) and exits with status 1.
"""

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from corral.pki import client_context

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.etcd_server import EtcdCluster, start_etcd  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CORRAL = [sys.executable, "-m", "corral.cli.main"]


PAGE = 500
# Name -> (path, query, whether the sample is the listing's second page: the first page's continue token is followed).
LISTINGS: dict[str, tuple[str, dict[str, str | int], bool]] = {
    "services": ("/v1/services", {}, False),
    "nodes": ("/v1/nodes", {}, False),
    "nodes_page1": ("/v1/nodes", {"limit": PAGE}, False),
    "nodes_page2": ("/v1/nodes", {"limit": PAGE}, True),
    "services_page1": ("/v1/services", {"limit": PAGE}, False),
    "tasks_page1": ("/v1/tasks", {"limit": PAGE}, False),
    "tasks_page2": ("/v1/tasks", {"limit": PAGE}, True),
    "service_tasks_page1": ("/v1/services/bench_s0/tasks", {"limit": PAGE}, False),
    "info": ("/v1/info", {}, False),  # no list at all: the floor, what any answer waits behind the manager's other work
}


@dataclass
class Latencies:
    times: dict[str, list[float]] = field(default_factory=lambda: {name: [] for name in LISTINGS})
    started: float = field(default_factory=time.monotonic)
    slow: list[tuple[float, str, float]] = field(default_factory=list)  # (s since started, path, ms) over 200 ms


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def summary(values: list[float]) -> dict[str, float | None]:
    """Latency figures in ms (None without samples: JSON has no NaN)."""
    if not values:
        return {"p50_ms": None, "p99_ms": None, "max_ms": None, "samples": 0}
    return {
        "p50_ms": round(percentile(values, 0.5) * 1000, 1),
        "p99_ms": round(percentile(values, 0.99) * 1000, 1),
        "max_ms": round(max(values) * 1000, 1),
        "samples": len(values),
    }


def p50_ratio(loaded: list[float], idle: list[float]) -> float | None:
    """The loaded median over the idle one (None when either has no samples)."""
    if not loaded or not idle:
        return None
    return round(statistics.median(loaded) / statistics.median(idle), 2)


def progress_points(progress: list[tuple[float, int]], every: float = 10.0) -> list[list[float]]:
    """[seconds, running] pairs: the first sample of each `every`-second window, and the last one."""
    points: list[list[float]] = []
    windows: set[int] = set()
    for seconds, running in progress:
        if int(seconds // every) not in windows:
            windows.add(int(seconds // every))
            points.append([round(seconds, 1), running])
    if progress and points[-1] != [round(progress[-1][0], 1), progress[-1][1]]:
        points.append([round(progress[-1][0], 1), progress[-1][1]])
    return points


def compose(tasks: int, services: int) -> str:
    """`services` services sharing `tasks` replicas; a few reserve resources, one is constrained, one spreads."""
    lines = ["services:"]
    base, extra = divmod(tasks, services)
    for i in range(services):
        replicas = base + (1 if i < extra else 0)
        deploy = [f"replicas: {replicas}"]
        if i % 3 == 1:
            deploy.append('resources: {reservations: {cpus: "0.05", memory: 32M}}')
        if i % 5 == 2:
            deploy.append('placement: {constraints: ["node.labels.kind == hollow"]}')
        if i % 7 == 3:
            deploy.append("placement: {max_replicas_per_node: 50}")
        lines.append(f"  s{i}:\n    image: corral-demo:latest\n    deploy: {{{', '.join(deploy)}}}")
    return "\n".join(lines) + "\n"


def peak_rss(pid: int) -> int:
    """The process's peak resident set (VmHWM), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT if proc.args[0] == "py-spy" else signal.SIGTERM)  # py-spy writes on SIGINT
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class TimedOut(Exception):
    pass


async def wait_until(check, timeout: float, what: str, every: float = 0.25):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = await check()
        except httpx.HTTPError:
            result = None
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimedOut(f"timed out after {timeout:.0f}s waiting for {what}")
        await asyncio.sleep(every)


async def sample(api: httpx.AsyncClient, into: Latencies, stop_event: asyncio.Event, pause: float) -> None:
    """Each of LISTINGS in turn until stopped, timing each (a second page: only the request for it)."""
    while not stop_event.is_set():
        for name, (path, query, second) in LISTINGS.items():
            if second:
                first = await api.get(path, params=query)
                if first.status_code == 404:  # a service not deployed yet (the idle baseline)
                    continue
                first.raise_for_status()
                token = first.headers.get("X-Corral-Continue")
                if token is None:  # a single page: no second to time
                    continue
                query = {**query, "continue": token}
            began = time.perf_counter()
            response = await api.get(path, params=query)
            took = time.perf_counter() - began
            if response.status_code == 404:
                continue
            into.times[name].append(took)
            if took > 0.2:
                into.slow.append((round(time.monotonic() - into.started - took, 1), name, round(took * 1000)))
            response.raise_for_status()
        try:
            await asyncio.wait_for(stop_event.wait(), pause)
        except TimeoutError:
            pass


async def store_write_figures(api: httpx.AsyncClient) -> dict[str, float] | None:
    """The manager's own count and total time of its store transactions (corral_store_write_duration_seconds), from
    its start: how much of the run the writes took, and their mean, on either backend."""
    try:
        text = (await api.get("/metrics")).text
    except httpx.HTTPError:
        return None
    found = {}
    for line in text.splitlines():
        for name in ("count", "sum"):
            if line.startswith(f"corral_store_write_duration_seconds_{name} "):
                found[name] = float(line.split()[1])
    if len(found) < 2 or not found["count"]:
        return None
    return {"count": int(found["count"]), "seconds": round(found["sum"], 2), "mean_ms": round(found["sum"] / found["count"] * 1000, 1)}


async def run(args: argparse.Namespace, workdir: Path, procs: list[subprocess.Popen], etcds: list[EtcdCluster]) -> dict:
    port = free_port()
    url = f"{'http' if args.insecure else 'https'}://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    logs = workdir / "logs"
    logs.mkdir()
    manager_cmd = [*CORRAL, "manager", "--data-dir", str(workdir / "data"), "--listen", f"127.0.0.1:{port}",
                   "--node-lease", str(args.node_lease), "--no-registry", *(["--insecure"] if args.insecure else []),
                   *(["--log-loop-stalls", str(args.loop_stalls)] if args.loop_stalls else [])]
    if args.store == "etcd":  # a real etcd-server of its own (tests/etcd_server.py), killed by PID at the end
        etcds.append(start_etcd(1, ["--quota-backend-bytes", str(8 * 1024**3)]))
        manager_cmd += ["--store", etcds[0].url]
    procs.append(subprocess.Popen(manager_cmd, env=env, stdout=open(logs / "manager.log", "w"), stderr=subprocess.STDOUT))
    manager_proc = procs[-1]
    token_file = workdir / "data" / "join-token"
    ca = workdir / "data" / "ca.pem"  # the API is HTTPS with the cluster CA unless --insecure
    admin = workdir / "data" / "admin-token"  # every API call carries the admin token the manager wrote
    for _ in range(600):
        if token_file.exists() and ca.exists() and admin.exists():
            break
        await asyncio.sleep(0.1)
    trust = True if args.insecure else client_context(ca.read_bytes())
    headers = {"Authorization": f"Bearer {admin.read_text().strip()}"}
    async with httpx.AsyncClient(base_url=url, timeout=120, verify=trust, headers=headers) as api:
        await wait_until(lambda: api.get("/v1/info") if token_file.exists() else asyncio.sleep(0), 60, "the manager")
        token = token_file.read_text().strip()

        began = time.monotonic()
        per_process, extra = divmod(args.nodes, args.processes)
        for p in range(args.processes):
            count = per_process + (1 if p < extra else 0)
            if not count:
                continue
            procs.append(subprocess.Popen(
                [*CORRAL, "agent", "--manager", url, "--token", token, "--engine", "hollow", "--count", str(count),
                 "--name-prefix", f"hollow-{p}-", "--address", "127.0.0.1", "--cpus", "16", "--memory", "64g",
                 "--label", "kind=hollow", "--label", f"fleet=fleet-{p}", "--hollow-delay", args.hollow_delay],
                env=env, stdout=open(logs / f"agents-{p}.log", "w"), stderr=subprocess.STDOUT,
            ))

        async def all_registered() -> bool:
            for proc in procs:
                if proc.poll() is not None:
                    raise SystemExit(f"a process exited early ({proc.args[3]}); see {logs}")
            return (await api.get("/v1/info")).json()["nodes"] >= args.nodes

        await wait_until(all_registered, 600, f"{args.nodes} nodes to register", every=1.0)
        register_s = time.monotonic() - began
        print(f"{args.nodes} hollow nodes in {args.processes} processes registered in {register_s:.1f}s")

        idle = Latencies()
        stop_event = asyncio.Event()
        sampler = asyncio.create_task(sample(api, idle, stop_event, args.sample_pause))
        await asyncio.sleep(args.idle_seconds)
        stop_event.set()
        await sampler

        loaded = Latencies()
        stop_event = asyncio.Event()
        text = compose(args.tasks, args.services)
        profiler = None
        if args.py_spy:  # from the deploy to the end, stopped with SIGINT so that it writes its file
            profiler = subprocess.Popen(["py-spy", "record", "--rate", "50", "--pid", str(manager_proc.pid), "-o", args.py_spy,
                                         "--format", args.py_spy_format], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            procs.append(profiler)
            await asyncio.sleep(1.0)
        lag_before = await loop_lag_buckets(api)
        deployed_wall = time.time()
        deployed_at = time.monotonic()
        loaded.started = deployed_at
        response = await api.post("/v1/stacks/bench/deploy", json={"compose": text})
        response.raise_for_status()
        deploy_s = time.monotonic() - deployed_at
        sampler = asyncio.create_task(sample(api, loaded, stop_event, args.sample_pause))
        progress: list[tuple[float, int]] = []

        async def all_running() -> bool:
            services = (await api.get("/v1/services")).json()
            running = sum(s["running"] for s in services)
            progress.append((time.monotonic() - deployed_at, running))
            if len(progress) % 20 == 0:
                print(f"  {progress[-1][0]:6.1f}s: {running} running")
            return running >= args.tasks

        try:
            await wait_until(all_running, args.timeout, f"{args.tasks} running tasks", every=0.5)
            timed_out = False
        except TimedOut as err:  # still report what was measured until then
            print(err)
            timed_out = True
        elapsed = time.monotonic() - deployed_at
        stop_event.set()
        await sampler
        lag_during = loop_lag(lag_before, await loop_lag_buckets(api))
        whole_tasks = []
        for _ in range(args.whole_tasks):
            began_whole = time.perf_counter()
            (await api.get("/v1/tasks", timeout=120)).raise_for_status()
            whole_tasks.append(time.perf_counter() - began_whole)
        rss = peak_rss(manager_proc.pid)
        if profiler is not None:
            profiler.send_signal(signal.SIGINT)
            profiler.wait(60)
        try:
            revision = (await api.get("/v1/info")).json()["revision"]
        except httpx.HTTPError:
            revision = None
        store_writes = await store_write_figures(api)

    running = progress[-1][1] if progress else 0
    half = next((t for t, count in progress if count >= args.tasks // 2), None)
    figures = {
        "nodes": args.nodes,
        "tasks": args.tasks,
        "services": args.services,
        "agent_processes": args.processes,
        "register_s": round(register_s, 2),
        "deploy_request_s": round(deploy_s, 3),
        "half_running_s": None if half is None else round(half, 2),
        "all_running_s": None if timed_out else round(elapsed, 2),
        "timed_out": timed_out,
        "running_at_timeout": running if timed_out else None,
        "placements_per_s": round((running if timed_out else args.tasks) / elapsed),  # when timed out: so far
        "manager_peak_rss_mib": round(rss / 2**20, 1),
        "store_revision": revision,
        "store_writes": store_writes,
        "idle": {name: summary(times) for name, times in idle.times.items()},
        "loaded": {name: summary(times) for name, times in loaded.times.items()},
        "whole_tasks_after": summary(whole_tasks),
        "progress": progress_points(progress),
        "slow_samples": [list(sample) for sample in loaded.slow],  # [s after the deploy, path, ms] over 200 ms
        "loop_lag_during_deploy": lag_during,
        "loop_stalls_over_ms": args.loop_stalls,  # the manager's own probe, every 50 ms (corral/manager/loop_watch.py)
        "loop_stalls": loop_stalls(logs / "manager.log", deployed_wall, deployed_wall + elapsed) if args.loop_stalls else None,
    }
    for name in LISTINGS:
        figures[f"{name}_p50_ratio_loaded_vs_idle"] = p50_ratio(loaded.times[name], idle.times[name])
    return figures


def loop_stalls(manager_log: Path, since: float, until: float) -> dict | None:
    """The manager's event-loop stalls (`--log-loop-stalls`) logged between `since` and `until` (epoch s): how
    many, their total and longest, and the code they were sampled in (each line names its 3 most sampled)."""
    stalls: list[int] = []
    sections: dict[str, int] = {}
    for line in manager_log.read_text(errors="replace").splitlines():
        if "event loop stalled" not in line:
            continue
        try:
            at = time.mktime(time.strptime(line[:19], "%Y-%m-%d %H:%M:%S"))
        except ValueError:
            continue
        if not since - 1 <= at <= until:
            continue
        waited, _, where = line.split("event loop stalled ", 1)[1].partition(" ms: ")
        stalls.append(int(waited))
        for part in where.split("; "):
            count, _, section = part.partition("x ")
            if count.isdigit():
                sections[section] = sections.get(section, 0) + int(count)
    if not stalls:
        return None
    top = sorted(sections.items(), key=lambda item: -item[1])[:12]
    return {"stalls": len(stalls), "total_s": round(sum(stalls) / 1000, 1), "longest_ms": max(stalls),
            "sampled_in": [[count, section] for section, count in top]}  # samples every ~5 ms while a callback waited


LAG_METRIC = "corral_manager_loop_lag_seconds"


async def loop_lag_buckets(api: httpx.AsyncClient) -> dict[float, float]:
    """The manager's loop-lag histogram (/metrics): upper bound (s) -> probes at most that late, cumulative."""
    buckets: dict[float, float] = {}
    for line in (await api.get("/metrics")).text.splitlines():
        if line.startswith(LAG_METRIC + "_bucket{"):
            bound = line.split('le="', 1)[1].split('"', 1)[0]
            buckets[float("inf") if bound == "+Inf" else float(bound)] = float(line.rsplit(" ", 1)[1])
    return buckets


def loop_lag(before: dict[float, float], after: dict[float, float]) -> dict[str, float | int | None]:
    """Between two readings: probes, and the bucket bound (ms) under which 50% and 99% of them ran late."""
    counts = {bound: after[bound] - before.get(bound, 0.0) for bound in sorted(after)}
    total = counts.get(float("inf"), 0.0)

    def bound_of(fraction: float) -> float | None:
        bound = next((b for b, count in counts.items() if count >= fraction * total), None)
        return None if bound is None or bound == float("inf") else bound * 1000

    over = {f"over_{int(b * 1000)}_ms": int(total - counts[b]) for b in (0.05, 0.1, 0.25) if b in counts}
    return {"probes": int(total), "p50_under_ms": bound_of(0.5), "p99_under_ms": bound_of(0.99), **over}


def ms(value: float | None) -> str:
    return "      -" if value is None else f"{value:7.1f}"


def report(figures: dict) -> None:
    half = figures["half_running_s"]
    half_text = "half never running" if half is None else f"half running after {half:.1f}s"
    if figures["timed_out"]:
        last = figures["progress"][-1][0] if figures["progress"] else 0.0
        done = (f"TIMED OUT: {figures['running_at_timeout']} of {figures['tasks']} running after {last:.1f}s; "
                f"{figures['placements_per_s']:,} placements/s so far")
    else:
        done = (f"all {figures['tasks']} running after {figures['all_running_s']:.1f}s; "
                f"end to end {figures['placements_per_s']:,} placements/s")
    print(f"deploy request answered in {figures['deploy_request_s']:.2f}s; {half_text}, {done} on {figures['nodes']} nodes")
    print("progress (s, running): " + " ".join(f"{t:.0f}:{running}" for t, running in figures["progress"]))
    if figures["slow_samples"]:
        print("answers over 200 ms (s after the deploy, path, ms): "
              + " ".join(f"{t:.0f}:{path.removeprefix('/v1/')}:{took}" for t, path, took in figures["slow_samples"]))
    lag = figures["loop_lag_during_deploy"]
    print(f"event loop lag during the deploy ({lag['probes']} probes): p50 under {lag['p50_under_ms']} ms, "
          f"p99 under {lag['p99_under_ms']} ms; over 50 / 100 / 250 ms: {lag.get('over_50_ms')} / {lag.get('over_100_ms')} / {lag.get('over_250_ms')}")
    stalls = figures["loop_stalls"]
    if stalls:
        print(f"event loop stalls over {figures['loop_stalls_over_ms']:g} ms during the deploy: {stalls['stalls']}, "
              f"{stalls['total_s']} s in all, longest {stalls['longest_ms']} ms; sampled in (samples, code):")
        for count, section in stalls["sampled_in"]:
            print(f"  {count:5d} {section}")
    print(f"manager peak RSS: {figures['manager_peak_rss_mib']:.0f} MiB (store revision {figures['store_revision']})")
    if figures.get("store_writes"):
        writes = figures["store_writes"]
        print(f"store transactions: {writes['count']}, {writes['seconds']} s in all, {writes['mean_ms']} ms each on average")
    for name in LISTINGS:
        idle, loaded = figures["idle"][name], figures["loaded"][name]
        print(f"{name:<20} idle p50 {ms(idle['p50_ms'])} ms p99 {ms(idle['p99_ms'])} ms | during the run "
              f"p50 {ms(loaded['p50_ms'])} ms p99 {ms(loaded['p99_ms'])} ms max {ms(loaded['max_ms'])} ms "
              f"({loaded['samples']} samples; p50 x{figures[f'{name}_p50_ratio_loaded_vs_idle']} of idle)")
    whole = figures["whole_tasks_after"]
    print(f"GET /v1/tasks whole, after the run: p50 {ms(whole['p50_ms'])} ms max {ms(whole['max_ms'])} ms ({whole['samples']} samples)")
    p99s = [figures["loaded"][n]["p99_ms"] for n in LISTINGS if n != "info" and figures["loaded"][n]["samples"]]
    paged = [figures["loaded"][n]["p99_ms"] for n in LISTINGS if "page" in n and figures["loaded"][n]["samples"]]
    goals = [
        ("all running < 60 s", figures["all_running_s"] is not None and figures["all_running_s"] < 60),
        ("manager memory < 1 GiB", figures["manager_peak_rss_mib"] < 1024),
        ("API p99 < 200 ms, every listing", None not in p99s and max(p99s) < 200),
        ("API p99 < 200 ms, paged listings", bool(paged) and None not in paged and max(paged) < 200),
    ]
    print("goals: " + ", ".join(f"{name}: {'met' if ok else 'MISSED'}" for name, ok in goals))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--services", type=int, default=10)
    parser.add_argument("--processes", type=int, default=0, help="agent processes (default: one per 1,000 nodes)")
    parser.add_argument("--hollow-delay", default="50-200", help="ms per hollow container operation, LOW-HIGH")
    parser.add_argument("--node-lease", type=float, default=30.0, help="seconds a heartbeat renews a node for (long: agent processes share 2 cores)")
    parser.add_argument("--idle-seconds", type=float, default=3.0, help="how long the idle baseline is sampled")
    parser.add_argument("--sample-pause", type=float, default=1.0, help="pause between two rounds of latency samples (a monitor polling once a second)")
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument("--whole-tasks", type=int, default=3, help="times GET /v1/tasks whole is timed after the run (each is minutes at 1,000,000 tasks)")
    parser.add_argument("--py-spy", metavar="FILE", help="record the manager with py-spy into FILE")
    parser.add_argument("--py-spy-format", default="speedscope", choices=["speedscope", "flamegraph", "raw"])
    parser.add_argument("--loop-stalls", type=float, default=0.0, metavar="MS",
                        help="have the manager log the code behind each event-loop stall over MS ms, and print its summary")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (logs, store)")
    parser.add_argument("--insecure", action="store_true", help="the API over plain HTTP (loopback): the baseline to measure TLS against")
    parser.add_argument("--store", choices=["sqlite", "etcd"], default="sqlite", help="the manager's store (etcd: one member started here)")
    args = parser.parse_args()
    if args.nodes < 1 or args.tasks < 1 or args.services < 1:
        parser.error("--nodes, --tasks and --services must be at least 1")
    args.processes = args.processes or max(1, (args.nodes + 999) // 1000)
    if args.py_spy and not shutil.which("py-spy"):
        parser.error("--py-spy: py-spy is not installed (.venv/bin/pip install py-spy)")

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so that `finally` stops what was started
    workdir = Path(tempfile.mkdtemp(prefix="corral-bench-cluster-"))
    procs: list[subprocess.Popen] = []
    etcds: list[EtcdCluster] = []
    try:
        figures = asyncio.run(run(args, workdir, procs, etcds))
    except TimedOut as err:  # before the deploy: nothing to report
        raise SystemExit(str(err)) from None
    finally:
        for proc in reversed(procs):  # agents first, then the manager
            stop(proc)
        for etcd in etcds:
            etcd.stop()
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    report(figures)
    print(json.dumps(figures))
    if figures["timed_out"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
