"""Benchmark of the scheduler: placements per second and placement quality.

Builds a cluster of nodes with varied capacities and labels (a few drained,
paused or down) and a workload of several services (no reservations, small
reservations, label constraints, max replicas per node, a host port, a global
service pinned to every node), then schedules every task in batches of
`--batch` tasks, the way the manager's loop would: one `ClusterIndex` kept
between calls, each call passed the tasks placed by the previous one as
`placed` (the index recognises them and does no double counting). Only the
`schedule()` calls are timed; building tasks is not.

The same tasks are then placed by a baseline that puts each task on a random
feasible node, to compare the quality of both: replicas per node of each
service (max/min over the nodes it may run on) and the fraction of CPU
reserved on the fullest and the emptiest node.

    .venv/bin/python bench/scheduler.py --tasks 100000
    .venv/bin/python bench/scheduler.py --nodes 5000 --tasks 1000000 --sample 8
    .venv/bin/python bench/scheduler.py --tasks 100000 --preferences 3

`--preferences N` measures instead the cost of placement preferences and affinity: the same
tasks placed N times each, alternately, by the plain workload and by one whose services add
`spread: node.labels.zone` (web, api, worker), preferred anti-affinity (api away from db),
required anti-affinity (worker away from edge) and preferred affinity (cache beside api);
it prints the median rate of both and their ratio, and how even web's spread over zones is.

The last line printed is one JSON object with the figures.
"""

import argparse
import json
import random
import re
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from corral.manager.scheduling import ClusterIndex, Plan, schedule  # noqa: E402
from corral.model import (  # noqa: E402
    Node,
    NodeAvailability,
    NodeState,
    Placement,
    PortSpec,
    Resources,
    ServiceSpec,
    Task,
    TaskState,
)
from corral.model.affinity import Affinity  # noqa: E402
from corral.model.constraint import parse_constraint  # noqa: E402

MiB = 1 << 20
GiB = 1 << 30
NOW = 1_000_000.0


@dataclass(frozen=True)
class Service:
    spec: ServiceSpec
    share: float  # of all tasks; 0 for the global service (one task per node)
    pinned: bool = False


def make_nodes(count: int, rng: random.Random) -> list[Node]:
    nodes = []
    for i in range(count):
        cpus = rng.choice([4, 8, 8, 16, 16, 32, 64])
        roll = rng.random()
        state, availability = NodeState.ready, NodeAvailability.active
        if roll < 0.005:
            state = NodeState.down
        elif roll < 0.015:
            availability = NodeAvailability.drain
        elif roll < 0.02:
            availability = NodeAvailability.pause
        nodes.append(
            Node(
                name=f"node-{i:05d}",
                address=f"10.{i // 65536}.{i // 256 % 256}.{i % 256}",
                labels={
                    "zone": f"zone-{'abcd'[i % 4]}",
                    "tier": rng.choice(["web", "web", "db", "batch"]),
                    "disk": rng.choice(["ssd", "hdd"]),
                },
                resources=Resources(cpus=cpus, memory=cpus * rng.choice([2, 4, 8]) * GiB),
                state=state,
                availability=availability,
                last_heartbeat=NOW,
                registered_at=0.0,
            )
        )
    return nodes


def make_services(preferences: bool = False) -> list[Service]:
    def spec(name: str, cpus: float = 0, memory: int = 0, constraints: tuple[str, ...] = (), **extra: object) -> ServiceSpec:
        return ServiceSpec(
            name=name,
            image=f"registry.local/{name}:1",
            reservations=Resources(cpus=cpus, memory=memory),
            placement=Placement(constraints=list(constraints), max_replicas_per_node=extra.pop("max_per_node", None)),  # type: ignore[arg-type]
            **extra,  # type: ignore[arg-type]
        )

    zone = ["node.labels.zone"]
    with_prefs: dict[str, dict[str, object]] = {
        "web": {"preferences": zone},
        "api": {"preferences": zone, "affinities": [Affinity(service="db", anti=True, mode="prefer")]},
        "worker": {"preferences": zone, "affinities": [Affinity(service="edge", anti=True)]},
        "cache": {"affinities": [Affinity(service="api", mode="prefer")]},
    } if preferences else {}

    def preferring(service: Service) -> Service:
        extra = with_prefs.get(service.spec.name)
        if not extra:
            return service
        placement = service.spec.placement.model_copy(update={"preferences": extra.get("preferences", [])})
        spec_ = service.spec.model_copy(update={"placement": placement, "affinities": extra.get("affinities", [])})
        return Service(spec_, service.share, service.pinned)

    return [preferring(service) for service in [
        Service(spec("web"), 0.40),  # no reservations, no constraints: the fast path
        Service(spec("api", cpus=0.02, memory=32 * MiB), 0.20),
        Service(spec("worker", cpus=0.05, memory=64 * MiB, constraints=("node.labels.zone != zone-d",)), 0.15),
        Service(spec("cache", memory=64 * MiB, constraints=("node.labels.disk == ssd",)), 0.10),
        Service(spec("batch", cpus=0.02, memory=32 * MiB, constraints=("node.labels.tier == batch",)), 0.12),
        Service(spec("db", cpus=0.5, memory=GiB, constraints=("node.labels.tier == db",), max_per_node=8), 0.005),
        Service(spec("edge", cpus=0.1, memory=64 * MiB, ports=[PortSpec(target=443, published=443, mode="host")]), 0.002),
        Service(spec("agent", cpus=0.05, memory=32 * MiB, mode="global"), 0.0, pinned=True),
    ]]


def task_order(services: list[Service], nodes: list[Node], total: int, rng: random.Random) -> list[tuple[int, str | None]]:
    """(service index, pinned node) for every task, interleaved as replication would create them."""
    pinned = [i for i, s in enumerate(services) if s.pinned]
    order: list[tuple[int, str | None]] = []
    for i in pinned:
        order += [(i, n.name) for n in nodes[: max(0, min(len(nodes), total // 20))]]
    rest = total - len(order)
    shares = [s.share for s in services]
    counts = [int(rest * share / sum(shares)) for share in shares]
    counts[0] += rest - sum(counts)
    for i, count in enumerate(counts):
        order += [(i, None)] * count
    rng.shuffle(order)
    return order


def build_tasks(services: list[Service], chunk: list[tuple[int, str | None]], start: int) -> list[Task]:
    templates = [
        Task(id="template", service=s.spec.name, spec=s.spec, created_at=NOW, updated_at=NOW) for s in services
    ]
    return [
        templates[i].model_copy(update={"id": f"t{start + n}", "slot": None if node else start + n, "node": node})
        for n, (i, node) in enumerate(chunk)
    ]


def run_scheduler(
    services: list[Service], nodes: list[Node], order: list[tuple[int, str | None]], batch: int, sample: int | None
) -> tuple[ClusterIndex, float, int, Counter[str]]:
    index = ClusterIndex()
    elapsed = 0.0
    placed_total = 0
    reasons: Counter[str] = Counter()
    feed_back: list[Task] = []
    for call, start in enumerate(range(0, len(order), batch)):
        todo = build_tasks(services, order[start : start + batch], start)
        began = time.perf_counter()
        plan: Plan = schedule(nodes, feed_back, todo, NOW, sample=sample, seed=call, index=index)
        elapsed += time.perf_counter() - began
        placed_total += len(plan.assignments)
        reasons.update(re.sub(r"^node \S+ ", "node <pinned> ", u.reason.split(" (")[0]) for u in plan.unplaced)
        by_id = {t.id: t for t in todo}
        feed_back = [
            by_id[a.task_id].model_copy(update={"node": a.node, "state": TaskState.assigned}) for a in plan.assignments
        ]
    return index, elapsed, placed_total, reasons


@dataclass
class Usage:
    cpus: float
    memory: int
    cpu_used: float = 0.0
    mem_used: int = 0


def run_baseline(
    services: list[Service], nodes: list[Node], order: list[tuple[int, str | None]], rng: random.Random
) -> tuple[dict[str, Usage], dict[str, Counter[str]], float, int]:
    """Each task on a random feasible node (same filters, no ranking)."""
    active = [n for n in nodes if n.state == NodeState.ready and n.availability == NodeAvailability.active]
    by_name = {n.name: n for n in active}
    usage = {n.name: Usage(n.resources.cpus, n.resources.memory) for n in nodes}
    replicas: dict[str, Counter[str]] = {s.spec.name: Counter() for s in services}
    ports: set[tuple[str, int]] = set()
    eligible = [eligible_nodes(s.spec, active) for s in services]
    placed = 0
    began = time.perf_counter()
    for i, pinned in order:
        s = services[i].spec
        limit = s.placement.max_replicas_per_node
        host = [p.published for p in s.ports if p.mode == "host" and p.published is not None]
        cpus, memory = s.reservations.cpus, s.reservations.memory

        def fits(name: str) -> bool:
            u = usage[name]
            return (
                u.cpu_used + cpus <= u.cpus + 1e-9
                and u.mem_used + memory <= u.memory
                and (limit is None or replicas[s.name][name] < limit)
                and not any((name, p) in ports for p in host)
            )

        choice = None
        if pinned is not None:
            if pinned in by_name and by_name[pinned] in eligible[i] and fits(pinned):
                choice = pinned
        else:
            names = eligible[i]
            for _ in range(30):
                name = names[int(rng.random() * len(names))].name if names else None
                if name is not None and fits(name):
                    choice = name
                    break
            else:
                fitting = [n.name for n in names if fits(n.name)]
                choice = rng.choice(fitting) if fitting else None
        if choice is None:
            continue
        placed += 1
        usage[choice].cpu_used += cpus
        usage[choice].mem_used += memory
        replicas[s.name][choice] += 1
        ports.update((choice, p) for p in host)
    return usage, replicas, time.perf_counter() - began, placed


def eligible_nodes(spec: ServiceSpec, active: list[Node]) -> list[Node]:
    constraints = [parse_constraint(c) for c in spec.placement.constraints]
    return [n for n in active if all(c.matches(n.name, n.labels) for c in constraints)]


def spread(services: list[Service], nodes: list[Node], replicas: dict[str, Counter[str]]) -> dict[str, list[int]]:
    """Per replicated service: [max, min] replicas over the nodes it may run on."""
    active = [n for n in nodes if n.state == NodeState.ready and n.availability == NodeAvailability.active]
    result = {}
    for s in services:
        if s.pinned:
            continue
        counts = [replicas[s.spec.name].get(n.name, 0) for n in eligible_nodes(s.spec, active)]
        result[s.spec.name] = [max(counts, default=0), min(counts, default=0)]
    return result


def cpu_fractions(nodes: list[Node], used: dict[str, float]) -> dict[str, float]:
    active = [n for n in nodes if n.state == NodeState.ready and n.availability == NodeAvailability.active]
    fractions = sorted(used.get(n.name, 0.0) / n.resources.cpus for n in active)
    mean = sum(fractions) / len(fractions)
    std = (sum((f - mean) ** 2 for f in fractions) / len(fractions)) ** 0.5
    return {
        "max": round(fractions[-1], 4),
        "min": round(fractions[0], 4),
        "mean": round(mean, 4),
        "std": round(std, 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--sample", type=int, default=8, help="nodes examined per placement; 0: all (exact)")
    parser.add_argument("--batch", type=int, default=10_000, help="tasks per schedule() call")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-baseline", action="store_true", help="skip the random-placement baseline")
    parser.add_argument("--preferences", type=int, default=0, metavar="N",
                        help="compare plain and preference/affinity workloads, N runs each, interleaved")
    args = parser.parse_args()
    sample = args.sample or None
    if args.preferences:
        compare_preferences(args, sample)
        return

    rng = random.Random(args.seed)
    nodes = make_nodes(args.nodes, rng)
    services = make_services()
    order = task_order(services, nodes, args.tasks, rng)
    print(f"{len(nodes)} nodes, {len(order)} tasks, {len(services)} services, batches of {args.batch}, "
          f"sample={sample or 'all'}")

    index, elapsed, placed, reasons = run_scheduler(services, nodes, order, args.batch, sample)
    rate = len(order) / elapsed
    usage = {u.name: u for u in index.usage()}
    ours_replicas = {s.spec.name: Counter({n: u.replicas.get(s.spec.name, 0) for n, u in usage.items()}) for s in services}
    ours_spread = spread(services, nodes, ours_replicas)
    ours_cpu = cpu_fractions(nodes, {n: u.cpus_reserved for n, u in usage.items()})
    print(f"scheduler: {placed} placed, {len(order) - placed} unplaced in {elapsed:.2f}s: {rate:,.0f} placements/s")
    for reason, count in reasons.most_common(5):
        print(f"  unplaced: {count} x {reason}")
    figures: dict[str, object] = {
        "placements_per_s": round(rate),
        "nodes": len(nodes),
        "tasks": len(order),
        "sample": sample,
        "batch": args.batch,
        "schedule_seconds": round(elapsed, 3),
        "scheduler": {"spread": ours_spread, "cpu_reserved": ours_cpu, "placed": placed, "unplaced": len(order) - placed},
    }

    base_spread: dict[str, list[int]] = {}
    cpu_rows = [("scheduler", ours_cpu)]
    if not args.no_baseline:
        b_usage, b_replicas, b_elapsed, b_placed = run_baseline(services, nodes, order, random.Random(args.seed))
        base_spread = spread(services, nodes, b_replicas)
        base_cpu = cpu_fractions(nodes, {n: u.cpu_used for n, u in b_usage.items()})
        cpu_rows.append(("random", base_cpu))
        figures["random_baseline"] = {
            "spread": base_spread,
            "cpu_reserved": base_cpu,
            "placed": b_placed,
            "unplaced": len(order) - b_placed,
            "placements_per_s": round(len(order) / b_elapsed),
        }
        print(f"random baseline: {b_placed} placed, {len(order) - b_placed} unplaced")

    print(f"{'service':<8} {'scheduler max/min':>18} {'random max/min':>16}   (replicas per eligible node)")
    for name, (high, low) in ours_spread.items():
        other = base_spread.get(name)
        print(f"{name:<8} {f'{high}/{low}':>18} {f'{other[0]}/{other[1]}' if other else '-':>16}")
    for label, cpu in cpu_rows:
        print(f"{label:<10} CPU reserved: fullest node {cpu['max']:.1%}, emptiest {cpu['min']:.1%}, "
              f"mean {cpu['mean']:.1%}, std {cpu['std']:.1%}")
    print(json.dumps(figures))

def compare_preferences(args: argparse.Namespace, sample: int | None) -> None:
    """The same tasks placed by the plain workload and by the one with preferences and affinity, interleaved."""
    rng = random.Random(args.seed)
    nodes = make_nodes(args.nodes, rng)
    plain, preferring = make_services(), make_services(preferences=True)
    order = task_order(plain, nodes, args.tasks, rng)
    zone_of = {n.name: n.labels["zone"] for n in nodes}
    rates: dict[str, list[float]] = {"plain": [], "preferences": []}
    zones: dict[str, dict[str, int]] = {}
    print(f"{len(nodes)} nodes, {len(order)} tasks, batches of {args.batch}, sample={sample or 'all'}, {args.preferences} runs each")
    for _ in range(args.preferences):
        for label, services in (("plain", plain), ("preferences", preferring)):
            index, elapsed, placed, _reasons = run_scheduler(services, nodes, order, args.batch, sample)
            rates[label].append(len(order) / elapsed)
            per_zone: Counter[str] = Counter()
            for usage in index.usage():
                per_zone[zone_of[usage.name]] += usage.replicas.get("web", 0)
            zones[label] = dict(sorted(per_zone.items()))
    medians = {label: sorted(values)[len(values) // 2] for label, values in rates.items()}
    ratio = medians["preferences"] / medians["plain"]
    for label in rates:
        runs = ", ".join(f"{rate:,.0f}" for rate in rates[label])
        print(f"{label:<12} median {medians[label]:>10,.0f} placements/s  (runs: {runs})  web per zone: {zones[label]}")
    print(f"ratio preferences/plain: {ratio:.2f}")
    print(json.dumps({"plain_per_s": round(medians["plain"]), "preferences_per_s": round(medians["preferences"]),
                      "ratio": round(ratio, 3), "web_per_zone": zones, "nodes": len(nodes), "tasks": len(order)}))


if __name__ == "__main__":
    main()
