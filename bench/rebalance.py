"""Benchmark of rebalancing: nodes added to a full cluster, passes until the spread is even again.

A pure simulation of the controller's loop (replication with `rebalance.moves`, then the
scheduler with a kept `ClusterIndex`), with agents that start and stop containers at once:
what it measures is the control plane's decisions (passes, moves, compute time), not
container start times. `--nodes` nodes run `--services` services of `--tasks` replicas in
all; `--added` empty nodes join; each pass moves at most `--parallelism` replicas per
service. Moves are compared with the minimum that makes every service even (no eligible
node two replicas short of another): the replicas each new node must receive.

    .venv/bin/python bench/rebalance.py --nodes 1000 --tasks 20000 --added 200

The last line printed is one JSON object with the figures.
"""

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from corral.manager import replication  # noqa: E402
from corral.manager.scheduling import ClusterIndex, schedule  # noqa: E402
from corral.model import Node, NodeAvailability, NodeState, Resources, Service, ServiceSpec, Task, TaskState  # noqa: E402
from corral.model.service import UpdateConfig  # noqa: E402
from corral.model.task import DesiredState  # noqa: E402

GiB = 1 << 30


def node(i: int) -> Node:
    return Node(
        name=f"node-{i:05d}", address=f"10.1.{i // 256}.{i % 256}", resources=Resources(cpus=32, memory=64 * GiB),
        state=NodeState.ready, availability=NodeAvailability.active, last_heartbeat=0.0, registered_at=0.0,
    )


class Sim:
    def __init__(self, nodes: list[Node], services: dict[str, Service]) -> None:
        self.nodes = {n.name: n for n in nodes}
        self.services = services
        self.tasks: dict[str, Task] = {}
        self.index = ClusterIndex()
        self.counter = 0
        self.moves = 0
        self.compute = 0.0

    def new_id(self) -> str:
        self.counter += 1
        return f"t{self.counter}"

    def step(self, now: float) -> bool:
        """One pass: replication, scheduling, agents. Returns whether it changed anything."""
        began = time.perf_counter()
        plan = replication.reconcile(self.services, list(self.tasks.values()), self.nodes, now, self.new_id)
        changed: list[Task] = []
        for task in plan.update:
            if task.desired_state == DesiredState.shutdown and not task.terminal:
                task = task.model_copy(update={"state": TaskState.shutdown})  # the agent stops it at once
            self.tasks[task.id] = task
            changed.append(task)
        for task_id in plan.delete:
            self.index.release(task_id)
            self.tasks.pop(task_id, None)
        placed = schedule(self.nodes.values(), changed, plan.create, now, sample=8, index=self.index)
        where = {a.task_id: a.node for a in placed.assignments}
        for task in plan.create:
            node_name = where.get(task.id)
            state = TaskState.running if node_name else TaskState.pending
            self.tasks[task.id] = task.model_copy(update={"node": node_name, "state": state, "started_at": now if node_name else None})
        self.moves += sum(1 for t in plan.create if t.moved_from)
        self.compute += time.perf_counter() - began
        return not plan.empty

    def per_node(self, service: str) -> Counter[str]:
        counts: Counter[str] = Counter({name: 0 for name in self.nodes})
        for t in self.tasks.values():
            if t.service == service and t.desired_state == DesiredState.running and t.node:
                counts[t.node] += 1
        return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--tasks", type=int, default=20_000)
    parser.add_argument("--services", type=int, default=4)
    parser.add_argument("--added", type=int, default=200)
    parser.add_argument("--parallelism", type=int, default=100)
    args = parser.parse_args()
    per_service = args.tasks // args.services
    services = {
        f"s{i}": Service(
            spec=ServiceSpec(name=f"s{i}", image="app:1", replicas=per_service, update_config=UpdateConfig(parallelism=args.parallelism)),
            created_at=0.0, updated_at=0.0,
        )
        for i in range(args.services)
    }
    sim = Sim([node(i) for i in range(args.nodes)], services)
    now = 0.0
    while sim.step(now):
        now += 1.0
    sim.step(now)
    before = {name: sim.per_node(name) for name in services}
    sim.moves = 0
    sim.compute = 0.0
    for i in range(args.nodes, args.nodes + args.added):
        sim.nodes[f"node-{i:05d}"] = node(i)
    total = args.nodes + args.added
    minimum = sum(max(0, per_service // total - counts.get(name, 0)) for counts in before.values() for name in sim.nodes)
    now += 120.0  # past the cool-down
    passes = 0
    while True:
        passes += 1
        now += 1.0
        if not sim.step(now):
            break
    spreads = {name: (max(c.values()), min(c.values())) for name in services if (c := sim.per_node(name))}
    even = all(high - low <= 1 for high, low in spreads.values())
    print(f"{args.nodes} nodes + {args.added} added, {args.tasks} tasks in {args.services} services, parallelism {args.parallelism}")
    print(f"balanced: {even} after {passes} passes, {sim.compute:.2f}s of compute; moves {sim.moves} (minimum {minimum}, "
          f"ratio {sim.moves / max(1, minimum):.2f}); spread max/min per service: {sorted(set(spreads.values()))}")
    print(json.dumps({"nodes": args.nodes, "added": args.added, "tasks": args.tasks, "passes": passes, "compute_s": round(sim.compute, 3),
                      "moves": sim.moves, "minimum_moves": minimum, "balanced": even}))


if __name__ == "__main__":
    main()
