"""Ranking by placement preferences: spread over node label values (Swarm), preferred (anti-)affinity.

Both split the feasible nodes into groups and take the next node from the best group
that still has one, with the ordinary ranker (`ranking`) inside each group:

- `spread: node.labels.zone`: a group per value of the label (nodes without it form
  one more group, as in Swarm); the best group is the one running the fewest tasks of
  the service, so 4 replicas over zones a, a, b go 2 and 2. Several spreads nest, the
  first outermost.
- preferred affinity and anti-affinity (`mode: prefer`): a group per number of
  preferences a node breaks; the best group breaks the fewest. Inside the spread
  groups: an even spread comes first, then the preference.

Placing a task changes only its own group's weight, so a placement costs the group
count (a few zones) on top of the inner ranker's cost; nodes are never rescanned.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from corral.manager.scheduling.demand import Demand
from corral.manager.scheduling.ranking import Ranker
from corral.manager.scheduling.snapshot import NodeSlot

Leaf = Callable[[Sequence[NodeSlot]], Ranker]


@dataclass(frozen=True)
class _Level:
    key: Callable[[NodeSlot], str]  # the node's group
    weight: Callable[[Sequence[NodeSlot]], int]  # a group's weight at the start: lower is taken first
    counts: bool  # True: each placement in a group adds 1 to its weight (spread)


class GroupedRanker:
    """Takes from the group of lowest weight (then name) that still has a node that fits."""

    def __init__(self, groups: dict[str, Ranker], weights: dict[str, int], group_of: dict[NodeSlot, str], counts: bool) -> None:
        self._groups = groups
        self._weights = weights
        self._group_of = group_of
        self._counts = counts
        self._open = set(groups)

    def take(self) -> NodeSlot | None:
        weights = self._weights
        while self._open:
            key = min(self._open, key=lambda k: (weights[k], k))
            slot = self._groups[key].take()
            if slot is not None:
                return slot
            self._open.discard(key)  # placements only take room: nothing in it fits for the rest of the group
        return None

    def put(self, slot: NodeSlot) -> None:
        key = self._group_of[slot]
        if self._counts:
            self._weights[key] += 1
        self._groups[key].put(slot)
        self._open.add(key)


def has_preferences(demand: Demand) -> bool:
    return bool(demand.spread) or any(rule.mode == "prefer" for rule in demand.affinities)


def preferring(candidates: Sequence[NodeSlot], demand: Demand, leaf: Leaf) -> Ranker:
    """A ranker over `candidates` that honours `demand`'s spread and preferred affinities, `leaf` inside the groups."""
    return _build(candidates, _levels(demand), leaf)


def _levels(demand: Demand) -> list[_Level]:
    service = demand.service
    levels = [
        _Level(
            key=_label_of(label),
            weight=lambda group: sum(slot.replicas.get(service, 0) for slot in group),
            counts=True,
        )
        for label in demand.spread
    ]
    preferred = [rule for rule in demand.affinities if rule.mode == "prefer"]
    if preferred:

        def broken(slot: NodeSlot) -> int:
            return sum(1 for rule in preferred if (slot.replicas.get(rule.service, 0) > 0) == rule.anti)

        levels.append(_Level(key=lambda slot: str(broken(slot)), weight=lambda group: broken(group[0]), counts=False))
    return levels


def _label_of(label: str) -> Callable[[NodeSlot], str]:
    return lambda slot: slot.labels.get(label, "")


def _build(candidates: Sequence[NodeSlot], levels: list[_Level], leaf: Leaf) -> Ranker:
    if not levels:
        return leaf(candidates)
    level, inner = levels[0], levels[1:]
    members: dict[str, list[NodeSlot]] = {}
    group_of: dict[NodeSlot, str] = {}
    for slot in candidates:
        key = level.key(slot)
        members.setdefault(key, []).append(slot)
        group_of[slot] = key
    return GroupedRanker(
        {key: _build(group, inner, leaf) for key, group in members.items()},
        {key: level.weight(group) for key, group in members.items()},
        group_of,
        level.counts,
    )
