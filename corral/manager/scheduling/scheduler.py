"""The scheduler: assigns unplaced tasks to nodes, one pure function over a snapshot.

`schedule()` works in the style of Nomad's feasibility/rank chain: for each
task the nodes go through the filters (`filters`), the feasible ones are
ranked (`ranking`) and the best takes the task; a task no node can take is
returned with the reason (`reasons`).

Tasks asking for the same thing (same service, reservations, constraints,
host ports: one `Demand`) are placed as one group: the static filters
(state, constraints) are cached per constraint set, the dynamic ones
(resources, ports, replicas per node) run only on the nodes the ranker
examines, and after each placement only the node that took the task is
re-ranked. Tasks pinned to a node (global services) are placed first, then
the groups in the order their first task came in.

Nothing here reads a clock, does I/O or uses global randomness: the same
arguments give the same plan. The one effect is opt-in: a `ClusterIndex`
passed as `index` is brought up to date and records the assignments made
(see `snapshot`).
"""

import random
from collections.abc import Collection, Iterable, Mapping, Sequence

from corral.model import Node, Task, TERMINAL_STATES
from corral.model.constraint import Constraint, parse_constraint
from corral.model.errors import InvalidSpec
from corral.manager.scheduling.demand import Demand, DemandCache
from corral.manager.scheduling.filters import Chain, chain_for
from corral.manager.scheduling.plan import Assignment, Plan, Unplaced
from corral.manager.scheduling.ranking import ExactRanker, Ranker, SampledRanker
from corral.manager.scheduling.preferences import has_preferences, preferring
from corral.manager.scheduling.reasons import explain, explain_pinned
from corral.manager.scheduling.snapshot import ClusterIndex, NodeSlot
from corral.manager.scheduling.volumes import VolumePin, explain_volume, pin_of, sticky_names


def schedule(
    nodes: Iterable[Node],
    placed: Iterable[Task],
    unplaced: Iterable[Task],
    now: float,
    *,
    sample: int | None = None,
    seed: int = 0,
    index: ClusterIndex | None = None,
    volumes: Mapping[str, str] | None = None,
    removing: Collection[str] = (),
) -> Plan:
    """Assign the `unplaced` tasks to `nodes`.

    nodes: every node of the cluster; only ready, active ones take tasks.
    placed: tasks on nodes; those on a node and not ended hold their
        reservations, their replica count and their host ports there.
    unplaced: tasks to place. A task whose `not_before` is after `now`, or
        that already ended, is left out of the plan; a task with `node` set
        (global services) can only go to that node.
    sample: examine at most this many random feasible nodes per placement
        (power of k choices); None examines all of them.
    seed: seeds the sampling, so that a plan can be reproduced.
    index: a `ClusterIndex` kept between calls. It is updated with `nodes`
        and `placed` (which then only needs the tasks that changed since the
        last call) and records the assignments of this plan. Without it, an
        index is built from `nodes` and `placed` and thrown away.
    volumes: sticky volume name -> the node holding it (see `volumes`): a
        task whose slot's volume a node holds can only go to that node, and
        waits with a reason naming the volume while that node cannot take it.
    removing: sticky volume names being removed: their slots' tasks wait.

    Every task of `unplaced` not left out ends up either in
    `plan.assignments` or in `plan.unplaced`.
    """
    if sample is not None and sample < 1:
        raise ValueError(f"sample must be at least 1, not {sample}")
    if index is None:
        index = ClusterIndex(nodes, placed)
    else:
        index.set_nodes(nodes)
        index.record_all(placed)
    bindings = dict(volumes) if volumes is not None else None
    return _Pass(index, sample, random.Random(seed), bindings, frozenset(removing)).run(unplaced, now)


class _Pass:
    """One call of `schedule()`: the state that lives while it runs."""

    def __init__(
        self, index: ClusterIndex, sample: int | None, rng: random.Random, bindings: dict[str, str] | None = None,
        removing: frozenset[str] = frozenset(),
    ) -> None:
        self.index = index
        self.removing = removing
        self._names: dict[str, list[str]] = {}  # task id -> its sticky volume names (tasks that have some)
        self._bound_here: set[str] = set()  # volume names this pass placed for the first time
        self.bindings = bindings  # grows with this pass's placements of tasks whose volumes no node held
        self.sample = sample
        self.rng = rng
        self.assignments: list[Assignment] = []
        self.unplaced: list[Unplaced] = []
        self._chains: dict[Demand, Chain | str] = {}

    def run(self, tasks: Iterable[Task], now: float) -> Plan:
        pinned: list[tuple[Task, Demand]] = []
        by_volume: list[tuple[Task, Demand, VolumePin]] = []
        groups: dict[Demand, list[Task]] = {}
        demands = DemandCache()
        seen: set[str] = set()
        release = self.index.release
        for task in tasks:
            release(task.id)  # a task to place holds nothing, whatever an index kept from an earlier plan
            if task.not_before > now or task.state in TERMINAL_STATES or task.id in seen:
                continue
            seen.add(task.id)
            demand = demands.of(task)
            if task.node is not None:
                pinned.append((task, demand))
            elif self.bindings is not None and (names := sticky_names(task)):
                self._names[task.id] = names
                pin = pin_of(names, self.bindings, self.removing)
                if pin is None:
                    groups.setdefault(demand, []).append(task)
                elif isinstance(pin, str):
                    self.unplaced.append(Unplaced(task.id, pin))
                else:
                    by_volume.append((task, demand, pin))
            elif (group := groups.get(demand)) is not None:
                group.append(task)
            else:
                groups[demand] = [task]
        for task, demand in pinned:
            self._place_pinned(task, demand)
        for task, demand, pin in by_volume:
            self._place_by_volume(task, demand, pin)
        for demand, group in groups.items():
            self._place_group(demand, group)
        return Plan(assignments=self.assignments, unplaced=self.unplaced)

    def _chain(self, demand: Demand) -> Chain | str:
        """The filter chain of `demand`, or why its constraints are invalid."""
        chain = self._chains.get(demand)
        if chain is None:
            try:
                constraints: tuple[Constraint, ...] = tuple(
                    parse_constraint(text, f"placement.constraints[{at}]") for at, text in enumerate(demand.constraints)
                )
            except InvalidSpec as error:
                chain = str(error)
            else:
                chain = chain_for(demand, constraints)
            self._chains[demand] = chain
        return chain

    def _static_candidates(self, demand: Demand, chain: Chain) -> list[NodeSlot]:
        """The nodes passing the static filters (state, constraints), cached until the nodes change."""
        cache = self.index.candidate_cache
        cached = cache.get(demand.constraints)
        if cached is None:
            cached = cache[demand.constraints] = [
                slot for slot in self.index.nodes if all(step.reject(slot) is None for step in chain.static)
            ]
        return cached

    def _place_pinned(self, task: Task, demand: Demand) -> None:
        chain = self._chain(demand)
        if isinstance(chain, str):
            self.unplaced.append(Unplaced(task.id, chain))
            return
        name = task.node
        assert name is not None
        slot = self.index.slot(name)
        if slot is None:
            self.unplaced.append(Unplaced(task.id, explain_pinned(name, demand, None)))
            return
        rejection = chain.reject(slot)
        if rejection is not None:
            self.unplaced.append(Unplaced(task.id, explain_pinned(name, demand, rejection[1])))
            return
        self.index.place(task.id, slot, demand)
        self.assignments.append(Assignment(task.id, name))

    def _place_by_volume(self, task: Task, demand: Demand, pin: VolumePin) -> None:
        """A task whose slot's volume a node holds: that node or nothing, and the reason names the volume."""
        chain = self._chain(demand)
        if isinstance(chain, str):
            self.unplaced.append(Unplaced(task.id, chain))
            return
        slot = self.index.slot(pin.node)
        rejection = chain.reject(slot) if slot is not None else None
        if slot is not None and rejection is None:
            self.index.place(task.id, slot, demand)
            self.assignments.append(Assignment(task.id, pin.node))
            return
        reason = rejection[1] if rejection is not None else None  # None: the node is not in the cluster
        self.unplaced.append(Unplaced(task.id, explain_volume(pin, reason, demand.cpus, demand.memory)))

    def _bind(self, task: Task, node: str) -> None:
        """Remember where this pass put a task's volumes, for a later task of the same slot in the pass."""
        names = self._names.get(task.id)
        if names and self.bindings is not None:
            for name in names:
                if name not in self.bindings:
                    self.bindings[name] = node
                    self._bound_here.add(name)

    def _ranker(self, demand: Demand, chain: Chain) -> Ranker:
        candidates = self._static_candidates(demand, chain)
        fits = chain.fits_now if chain.dynamic else None
        sample = self.sample

        def leaf(nodes: Sequence[NodeSlot]) -> Ranker:
            if sample is None:
                return ExactRanker(nodes, demand, fits)
            return SampledRanker(nodes, demand, sample, self.rng, fits)

        return preferring(candidates, demand, leaf) if has_preferences(demand) else leaf(candidates)

    def _place_group(self, demand: Demand, tasks: list[Task]) -> None:
        chain = self._chain(demand)
        if isinstance(chain, str):
            self.unplaced.extend(Unplaced(task.id, chain) for task in tasks)
            return
        ranker = self._ranker(demand, chain)
        take, put = ranker.take, ranker.put
        place = self.index.place
        assignments = self.assignments
        bindings, bound_here, names_of = self.bindings, self._bound_here, self._names
        for done, task in enumerate(tasks):
            names = names_of.get(task.id) if bound_here else None
            if (
                names and bindings is not None and not bound_here.isdisjoint(names)
                and (pin := pin_of(names, bindings, self.removing)) is not None
            ):
                # its slot's volume was placed earlier in this pass (two tasks of one slot: an update)
                if isinstance(pin, str):
                    self.unplaced.append(Unplaced(task.id, pin))
                else:
                    self._place_by_volume(task, demand, pin)
                continue
            slot = take()
            if slot is None:
                # Placing only ever takes room, so no later task of the group fits either.
                reason = explain(self.index.nodes, chain, demand)
                self.unplaced.extend(Unplaced(rest.id, reason) for rest in tasks[done:])
                return
            place(task.id, slot, demand)
            assignments.append(Assignment(task.id, slot.name))
            if bindings is not None:
                self._bind(task, slot.name)
            put(slot)
