"""The manager's memory per task and per node, and a big deploy's peak, against a baseline in the same run.

1. **Held**: the manager's cache (the real StateCache, fed as the store's watch feeds it) with
   `--nodes` nodes and `--tasks` running tasks in 10 services, measured with tracemalloc: bytes
   per node, then bytes per task, with tasks compacted (`corral/model/compact.py`) and, the
   baseline, as pydantic validates them (`SharedSpecs(compact=False)`).
2. **Peak of a deploy**: in a fresh process each, a real SQLite store, cache and controller place a
   deploy of `--tasks` replicas on `--nodes` nodes, pass by pass as the manager does (no API, no
   agents); the process's peak RSS (VmHWM) and its RSS after, with the manager's
   `new_slots_per_pass` and, the baseline, with every replica created in the first pass (as before).

    .venv/bin/python bench/memory.py                        # 5,000 nodes, 100,000 tasks
    .venv/bin/python bench/memory.py --tasks 20000 --skip-deploy

The last line printed is one JSON object with the figures.
"""

import argparse
import asyncio
import gc
import json
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from corral.manager import keys  # noqa: E402
from corral.manager.cache import StateCache  # noqa: E402
from corral.manager.writes import dump  # noqa: E402
from corral.model import Node, Resources, Service, ServiceSpec, Task, TaskState  # noqa: E402
from corral.model.task import SharedSpecs  # noqa: E402

SERVICES = 10


def node_value(i: int, now: float) -> dict[str, Any]:
    return dump(Node(name=f"node-{i:05d}", address="127.0.0.2", resources=Resources(cpus=16, memory=64 << 30),
                     last_heartbeat=now, registered_at=now))


def held(nodes: int, tasks: int, compact: bool) -> dict[str, float]:
    """Bytes the cache holds per node and per task (tracemalloc), tasks fed as store values."""
    cache = StateCache(store=None, _specs=SharedSpecs(compact=compact))  # type: ignore[arg-type]  # fed by hand
    now = time.time()
    specs = [ServiceSpec(name=f"s{i}", image="corral-demo:latest", replicas=tasks // SERVICES) for i in range(SERVICES)]
    for spec in specs:
        cache._put(keys.service_key(spec.name), dump(Service(spec=spec, created_at=now, updated_at=now)), 1)
    shapes = [spec.task_shape() for spec in specs]
    # the store's values, as its watch decodes them (each its own strings), made before measuring
    values = [dump(Task(id=f"{i:016x}", service=shapes[i % SERVICES].name, slot=i // SERVICES + 1, spec=shapes[i % SERVICES],
                        node=f"node-{i * 7919 % nodes:05d}", state=TaskState.running, created_at=now, updated_at=now))
              for i in range(tasks)]
    values = [json.loads(json.dumps(value)) for value in values]
    gc.collect()
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        for i in range(nodes):
            cache._put(keys.node_key(f"node-{i:05d}"), node_value(i, now), 2 + i)
        with_nodes = tracemalloc.get_traced_memory()[0]
        for revision, value in enumerate(values, start=2 + nodes):
            cache._put(keys.task_key(str(value["id"])), value, revision)
        del values
        gc.collect()
        with_tasks = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    return {"bytes_per_node": round((with_nodes - start) / nodes), "bytes_per_task": round((with_tasks - with_nodes) / tasks)}


async def deploy(nodes: int, tasks: int, new_slots: int) -> dict[str, float]:
    """A real store, cache and controller placing `tasks` replicas; this process's RSS figures."""
    from corral.manager.cluster import Leases
    from corral.manager.controller import Controller
    from corral.manager.queue import WorkQueue
    from corral.manager.settings import ManagerSettings
    from corral.store import Op
    from corral.store.sqlite import SqliteStore

    with tempfile.TemporaryDirectory(prefix="corral-bench-memory-") as tmp:
        store = await SqliteStore(Path(tmp) / "store.db").open()
        cache, leases, now = StateCache(store), Leases(), time.time()
        settings = ManagerSettings(data_dir=Path(tmp), new_slots_per_pass=new_slots)
        controller = Controller(store, cache, leases, settings, queue=WorkQueue(time.time))
        following = asyncio.create_task(cache.run())
        try:
            await cache.synced.wait()
            for first in range(0, nodes, 1000):
                await store.txn([Op.put(keys.node_key(f"node-{i:05d}"), node_value(i, now), expect=0)
                                 for i in range(first, min(nodes, first + 1000))])
            await cache.wait_for(await store.revision(), 60)
            before = rss()
            per_service = tasks // SERVICES
            await store.txn([Op.put(keys.service_key(f"s{i}"), dump(Service(
                spec=ServiceSpec(name=f"s{i}", image="corral-demo:latest", replicas=per_service), created_at=now, updated_at=now)),
                expect=0) for i in range(SERVICES)])
            began, passes = time.monotonic(), 0
            while sum(1 for v in cache.tasks.values() if v.obj.node) < per_service * SERVICES:
                for name in cache.nodes:
                    leases.renew(name, time.time())
                await cache.wait_for(await store.revision(), 120)
                await controller.pass_once()
                passes += 1
            placed_s = time.monotonic() - began
            gc.collect()
            after = rss()
        finally:
            following.cancel()
            await store.close()
    return {"placed_s": round(placed_s, 1), "passes": passes, "rss_before_deploy_mib": before["VmRSS"],
            "peak_rss_mib": after["VmHWM"], "rss_after_mib": after["VmRSS"]}


def rss() -> dict[str, int]:
    """This process's RSS and peak RSS, MiB."""
    found = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            found[name] = int(value.split()[0]) // 1024
    return found


def deploy_in_child(nodes: int, tasks: int, new_slots: int) -> dict[str, float]:
    """`deploy` in a process of its own (peak RSS is per process)."""
    out = subprocess.run([sys.executable, __file__, "--nodes", str(nodes), "--tasks", str(tasks), "--deploy-child", str(new_slots)],
                         check=True, capture_output=True, text=True)
    figures: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--skip-deploy", action="store_true", help="only the memory held, not a deploy's peak")
    parser.add_argument("--deploy-child", type=int, metavar="NEW_SLOTS", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.nodes < 1 or args.tasks < SERVICES:
        parser.error(f"--nodes at least 1, --tasks at least {SERVICES}")
    if args.deploy_child is not None:
        print(json.dumps(asyncio.run(deploy(args.nodes, args.tasks, args.deploy_child))))
        return
    from corral.manager.settings import ManagerSettings

    figures: dict[str, Any] = {"nodes": args.nodes, "tasks": args.tasks}
    figures["held_baseline"] = held(args.nodes, args.tasks, compact=False)
    figures["held"] = held(args.nodes, args.tasks, compact=True)
    ratio = figures["held_baseline"]["bytes_per_task"] / figures["held"]["bytes_per_task"]
    print(f"cache, per node: {figures['held']['bytes_per_node']:,} bytes; per task: {figures['held']['bytes_per_task']:,} bytes "
          f"compacted, {figures['held_baseline']['bytes_per_task']:,} as validated (baseline), {ratio:.1f}x smaller")
    figures["held_task_ratio"] = round(ratio, 2)
    if not args.skip_deploy:
        per_pass = ManagerSettings.new_slots_per_pass
        for name, new_slots in (("deploy_baseline", args.tasks), ("deploy", per_pass)):
            figures[name] = deploy_in_child(args.nodes, args.tasks, new_slots)
            shown = "every replica in the first pass (baseline)" if name == "deploy_baseline" else f"{per_pass:,} new replicas a pass"
            d = figures[name]
            print(f"deploy of {args.tasks:,} on {args.nodes:,} nodes, {shown}: placed in {d['placed_s']}s over {d['passes']} passes, "
                  f"peak RSS {d['peak_rss_mib']} MiB, RSS after {d['rss_after_mib']} MiB (before the deploy {d['rss_before_deploy_mib']} MiB)")
        figures["peak_rss_ratio"] = round(figures["deploy_baseline"]["peak_rss_mib"] / figures["deploy"]["peak_rss_mib"], 2)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
