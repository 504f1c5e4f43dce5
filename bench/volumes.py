"""Benchmark: what volume stickiness costs the scheduler.

Places the tasks of one replicated service (one slot each) on a cluster, in
one `schedule()` call, three ways in the same run: without volumes (the
baseline), with a sticky volume no node holds yet (first deploy: placed as
usual, the pass remembers each slot's node), and with every slot's volume
held by a node (every task a replacement that must go back to its node).
Also times `bindings_of` over the records. Medians of `--runs` runs.

    .venv/bin/python bench/volumes.py --nodes 1000 --tasks 10000

The last line printed is one JSON object with the figures.
"""

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from corral.manager.scheduling import schedule  # noqa: E402
from corral.manager.scheduling.volumes import bindings_of  # noqa: E402
from corral.model import Node, Resources, ServiceSpec, Task, TaskState  # noqa: E402
from corral.model.volume import Mount, Volume  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--tasks", type=int, default=10000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    nodes = [
        Node(name=f"n{i:05d}", address="10.0.0.1", resources=Resources(cpus=64, memory=1 << 40), last_heartbeat=0, registered_at=0)
        for i in range(args.nodes)
    ]
    plain = ServiceSpec(name="shop_db", stack="shop", image="img", replicas=args.tasks)
    sticky = plain.model_copy(update={"volumes": [Mount(type="volume", source="shop_data", target="/data")]})

    def tasks(spec: ServiceSpec) -> list[Task]:
        return [
            Task(id=f"t{slot}", service=spec.name, stack="shop", slot=slot, state=TaskState.new, spec=spec, created_at=0, updated_at=0)
            for slot in range(1, args.tasks + 1)
        ]

    records = [
        Volume(name=f"shop_data.{slot}", node=nodes[slot % len(nodes)].name, source="shop_data", service="shop_db", slot=slot, created_at=0)
        for slot in range(1, args.tasks + 1)
    ]
    bound = bindings_of(records)
    cases = {
        "no volumes": (tasks(plain), None),
        "volumes, none held yet": (tasks(sticky), {}),
        "volumes, every slot held": (tasks(sticky), bound),
    }
    timings: dict[str, list[float]] = {name: [] for name in [*cases, "bindings_of"]}
    for _ in range(args.runs):  # interleaved, so that machine load hits every case alike
        for name, (batch, volumes) in cases.items():
            began = time.perf_counter()
            plan = schedule(nodes, (), batch, 0.0, volumes=volumes)
            timings[name].append(time.perf_counter() - began)
            assert len(plan.assignments) == args.tasks, (name, len(plan.unplaced))
        began = time.perf_counter()
        bindings_of(records)
        timings["bindings_of"].append(time.perf_counter() - began)
    base = statistics.median(timings["no volumes"])
    print(f"{args.nodes} nodes, {args.tasks} tasks of one service, one schedule() call; median of {args.runs} runs")
    figures = {}
    for name, values in timings.items():
        median = statistics.median(values)
        figures[name] = {"median_ms": round(median * 1000, 2), "ratio": round(median / base, 2)}
        print(f"{name:28s} {median * 1000:9.2f} ms   x{median / base:5.2f}")
    print(json.dumps({"nodes": args.nodes, "tasks": args.tasks, "runs": args.runs, "figures": figures}))


if __name__ == "__main__":
    main()
