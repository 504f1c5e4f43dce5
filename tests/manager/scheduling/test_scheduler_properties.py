"""Properties of schedule() over random clusters and workloads (hypothesis)."""

from collections import Counter, defaultdict
from dataclasses import dataclass, field

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from corral.manager.scheduling import ClusterIndex, Plan, schedule
from corral.model import Node, NodeAvailability, NodeState, PortSpec, Resources, ServiceSpec, Task, TaskState, TERMINAL_STATES
from corral.model.constraint import parse_constraint

from sched_helpers import GiB, MiB, node, spec, task

NOW = 100.0
CONSTRAINTS = [
    "node.labels.zone == east",
    "node.labels.zone != east",
    "node.labels.disk == ssd",
    "node.name != n0",
    "node.name == n1",
]
PORTS = [
    [],
    [PortSpec(target=80, published=8080, mode="host")],
    [PortSpec(target=80, published=8080, protocol="udp", mode="host")],
    [PortSpec(target=80, published=9090, mode="host"), PortSpec(target=81, published=8080, mode="host")],
    [PortSpec(target=80, published=8080)],  # ingress: holds nothing on the node
]

nodes_st = st.lists(
    st.builds(
        lambda cpus, memory, zone, disk, state, availability: (cpus, memory, zone, disk, state, availability),
        st.sampled_from([0, 1, 2, 4, 1.5]),
        st.sampled_from([0, GiB, 2 * GiB, 4 * GiB]),
        st.sampled_from([None, "east", "west"]),
        st.sampled_from([None, "ssd"]),
        st.sampled_from([NodeState.ready] * 4 + [NodeState.down]),
        st.sampled_from([NodeAvailability.active] * 4 + [NodeAvailability.drain, NodeAvailability.pause]),
    ),
    max_size=8,
).map(
    lambda rows: [
        node(
            f"n{i}",
            cpus=cpus,
            memory=memory,
            labels={k: v for k, v in (("zone", zone), ("disk", disk)) if v is not None},
            state=state,
            availability=availability,
        )
        for i, (cpus, memory, zone, disk, state, availability) in enumerate(rows)
    ]
)

specs_st = st.lists(
    st.builds(
        lambda cpus, memory, constraints, max_per_node, ports: (cpus, memory, constraints, max_per_node, ports),
        st.sampled_from([0, 0, 0.5, 1, 1.5]),
        st.sampled_from([0, 0, 512 * MiB, GiB]),
        st.lists(st.sampled_from(CONSTRAINTS), max_size=2, unique=True),
        st.sampled_from([None, None, 1, 2, 3]),
        st.sampled_from(PORTS),
    ),
    min_size=1,
    max_size=4,
).map(
    lambda rows: [
        spec(f"s{i}", cpus=cpus, memory=memory, constraints=constraints, max_per_node=mpn, ports=ports)
        for i, (cpus, memory, constraints, mpn, ports) in enumerate(rows)
    ]
)


@dataclass
class Workload:
    nodes: list[Node]
    placed: list[Task]
    unplaced: list[Task]


@st.composite
def workloads(draw: st.DrawFn) -> Workload:
    nodes = draw(nodes_st)
    specs = draw(specs_st)
    names = [n.name for n in nodes] + ["ghost"]
    placed = []
    for i in range(draw(st.integers(0, 10))):
        placed.append(
            task(
                f"p{i}",
                draw(st.sampled_from(specs)),
                draw(st.sampled_from(names + [None])),  # type: ignore[arg-type]
                draw(st.sampled_from([TaskState.running, TaskState.assigned, TaskState.failed, TaskState.shutdown])),
            )
        )
    unplaced = []
    for i in range(draw(st.integers(0, 25))):
        pinned = draw(st.booleans()) and draw(st.booleans())
        unplaced.append(
            task(
                f"u{i}",
                draw(st.sampled_from(specs)),
                draw(st.sampled_from(names)) if pinned else None,
                draw(st.sampled_from([TaskState.new, TaskState.pending])),
                not_before=draw(st.sampled_from([0.0, 0.0, 0.0, NOW, NOW + 1])),
                slot=None if pinned else i,
            )
        )
    return Workload(nodes, placed, unplaced)


@dataclass
class Load:
    """What a node holds once a plan is applied, worked out independently of the scheduler."""

    cpus: float = 0.0
    memory: int = 0
    replicas: Counter[str] = field(default_factory=Counter)
    ports: Counter[tuple[int, str]] = field(default_factory=Counter)

    def add(self, t: Task) -> None:
        self.cpus += t.spec.reservations.cpus
        self.memory += t.spec.reservations.memory
        self.replicas[t.service] += 1
        for port in host_ports(t.spec):
            self.ports[port] += 1


def host_ports(s: ServiceSpec) -> set[tuple[int, str]]:
    return {(p.published, p.protocol) for p in s.ports if p.mode == "host" and p.published is not None}


def loads(w: Workload, plan: Plan) -> dict[str, Load]:
    result: dict[str, Load] = defaultdict(Load)
    for t in w.placed:
        if t.node is not None and t.state not in TERMINAL_STATES:
            result[t.node].add(t)
    by_id = {t.id: t for t in w.unplaced}
    for a in plan.assignments:
        result[a.node].add(by_id[a.task_id])
    return result


def fits(n: Node, t: Task, load: Load) -> bool:
    """The scheduler's rules, written out plainly."""
    s = t.spec
    return (
        n.state == NodeState.ready
        and n.availability == NodeAvailability.active
        and all(parse_constraint(c).matches(n.name, n.labels) for c in s.placement.constraints)
        and (s.placement.max_replicas_per_node is None or load.replicas[t.service] < s.placement.max_replicas_per_node)
        and s.reservations.fits_in(n.resources.minus(Resources(cpus=load.cpus, memory=load.memory)))
        and not (host_ports(s) & set(load.ports))
    )


def check_plan(w: Workload, plan: Plan) -> None:
    nodes = {n.name: n for n in w.nodes}
    by_id = {t.id: t for t in w.unplaced}
    before = loads(w, Plan([], []))
    after = loads(w, plan)

    # every task due is either assigned or unplaced, once; the others are left out
    due = {t.id for t in w.unplaced if t.not_before <= NOW}
    decided = [a.task_id for a in plan.assignments] + [u.task_id for u in plan.unplaced]
    assert sorted(decided) == sorted(due)

    new_on: dict[str, list[Task]] = defaultdict(list)
    for a in plan.assignments:
        t = by_id[a.task_id]
        n = nodes[a.node]
        new_on[a.node].append(t)
        assert n.state == NodeState.ready and n.availability == NodeAvailability.active
        assert all(parse_constraint(c).matches(n.name, n.labels) for c in t.spec.placement.constraints)
        if t.node is not None:
            assert a.node == t.node

    for name, added in new_on.items():
        n, load = nodes[name], after[name]
        # no over-commit: whatever a node took, its reservations fit in it
        if any(t.spec.reservations.cpus for t in added):
            assert load.cpus <= n.resources.cpus + 1e-6
        if any(t.spec.reservations.memory for t in added):
            assert load.memory <= n.resources.memory
        # max replicas per node and host ports hold for what was added
        for t in added:
            limit = t.spec.placement.max_replicas_per_node
            if limit is not None:
                assert load.replicas[t.service] <= max(limit, before[name].replicas[t.service])
            for port in host_ports(t.spec):
                assert before[name].ports[port] == 0 and load.ports[port] == 1

    # nothing is left unplaced that some node could still take
    for u in plan.unplaced:
        t = by_id[u.task_id]
        assert u.reason
        if any(not c.startswith("node.") for c in t.spec.placement.constraints):
            continue
        candidates = [nodes[t.node]] if t.node is not None and t.node in nodes else [] if t.node else w.nodes
        assert not any(fits(n, t, after[n.name]) for n in candidates), u


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(workloads(), st.sampled_from([None, 1, 3]), st.integers(0, 3))
def test_plans_respect_every_rule(w: Workload, sample: int | None, seed: int) -> None:
    plan = schedule(w.nodes, w.placed, w.unplaced, NOW, sample=sample, seed=seed)
    check_plan(w, plan)


@settings(max_examples=100, deadline=None)
@given(workloads(), st.sampled_from([None, 2]))
def test_plans_are_deterministic(w: Workload, sample: int | None) -> None:
    first = schedule(w.nodes, w.placed, w.unplaced, NOW, sample=sample, seed=5)
    assert schedule(list(reversed(w.nodes)), w.placed, w.unplaced, NOW, sample=sample, seed=5) == first


@settings(max_examples=100, deadline=None)
@given(workloads(), workloads(), st.sampled_from([None, 2]))
def test_kept_index_plans_like_a_rebuilt_one(w1: Workload, w2: Workload, sample: int | None) -> None:
    """Two calls through one ClusterIndex plan what two calls from scratch would."""
    second = [t.model_copy(update={"id": "2-" + t.id}) for t in w2.unplaced]
    index = ClusterIndex()
    kept1 = schedule(w1.nodes, w1.placed, w1.unplaced, NOW, sample=sample, index=index)
    kept2 = schedule(w1.nodes, [], second, NOW, sample=sample, index=index)

    fresh1 = schedule(w1.nodes, w1.placed, w1.unplaced, NOW, sample=sample)
    by_id = {t.id: t for t in w1.unplaced}
    now_placed = [t for t in w1.placed if t.id not in by_id] + [
        by_id[a.task_id].model_copy(update={"node": a.node, "state": TaskState.assigned}) for a in fresh1.assignments
    ]
    fresh2 = schedule(w1.nodes, now_placed, second, NOW, sample=sample)
    assert (kept1, kept2) == (fresh1, fresh2)


@settings(max_examples=200, deadline=None)
@given(
    nodes=st.integers(1, 12),
    per_node=st.integers(1, 6),
    tasks=st.integers(0, 80),
    cpus=st.sampled_from([0, 0.25, 1]),
    sample=st.sampled_from([None, 1, 2, 8]),
    seed=st.integers(0, 5),
    other=st.integers(0, 10),
)
def test_spread_is_even_on_equal_nodes(
    nodes: int, per_node: int, tasks: int, cpus: float, sample: int | None, seed: int, other: int
) -> None:
    """Unconstrained equal tasks on equal nodes with room: replica counts differ by at most one."""
    tasks = min(tasks, nodes * per_node)
    cluster = [node(f"n{i:02}", cpus=per_node * 1.0, memory=8 * GiB) for i in range(nodes)]
    # tasks of another service, without reservations, make some nodes busier without changing the rule
    busy = spec("busy")
    placed = [task(f"b{i}", busy, f"n{(i * 7) % nodes:02}", TaskState.running) for i in range(other)]
    web = spec("web", cpus=cpus)
    todo = [task(f"w{i}", web, slot=i) for i in range(tasks)]
    plan = schedule(cluster, placed, todo, NOW, sample=sample, seed=seed)
    assert plan.unplaced == []
    counts = Counter(a.node for a in plan.assignments)
    spread = [counts.get(n.name, 0) for n in cluster]
    assert max(spread) - min(spread) <= 1


def reference_plan(w: Workload) -> list[tuple[str, str]]:
    """The exact scheduler written naively: every node scored for every task.

    Same order as `schedule`: pinned tasks first, then tasks grouped by what
    they ask for, groups in the order their first task came.
    """
    nodes = sorted(w.nodes, key=lambda n: n.name)
    state = loads(w, Plan([], []))
    count = Counter(t.node for t in w.placed if t.node is not None and t.state not in TERMINAL_STATES)
    seen: set[str] = set()
    due = []
    for t in w.unplaced:
        if t.not_before <= NOW and t.id not in seen:
            seen.add(t.id)
            due.append(t)

    def shape(t: Task) -> tuple:  # type: ignore[type-arg]
        s = t.spec
        return (t.service, s.reservations, tuple(s.placement.constraints), s.placement.max_replicas_per_node,
                tuple(sorted(host_ports(s))))

    groups: dict[tuple, list[Task]] = {}  # type: ignore[type-arg]
    for t in due:
        if t.node is None:
            groups.setdefault(shape(t), []).append(t)
    order = [t for t in due if t.node is not None] + [t for group in groups.values() for t in group]

    result = []
    for t in order:
        candidates = [n for n in nodes if (t.node is None or n.name == t.node) and fits(n, t, state[n.name])]
        if not candidates:
            continue
        r = t.spec.reservations

        def score(n: Node) -> tuple:  # type: ignore[type-arg]
            load = state[n.name]
            inv_cpu = 1.0 / n.resources.cpus if n.resources.cpus > 0 else 0.0
            inv_mem = 1.0 / n.resources.memory if n.resources.memory > 0 else 0.0
            after = 0.5 * ((load.cpus + r.cpus) * inv_cpu + (load.memory + r.memory) * inv_mem)
            return load.replicas[t.service], after, count[n.name], n.name

        best = min(candidates, key=score)
        state[best.name].add(t)
        count[best.name] += 1
        result.append((t.id, best.name))
    return result


@settings(max_examples=300, deadline=None)
@given(workloads())
def test_exact_plan_matches_a_naive_rescan(w: Workload) -> None:
    plan = schedule(w.nodes, w.placed, w.unplaced, NOW)
    assert [(a.task_id, a.node) for a in plan.assignments] == reference_plan(w)
