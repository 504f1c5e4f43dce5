"""Ranking: which of the feasible nodes takes the next task of a group.

The score, best first, is:

1. spread: fewest tasks of the same service on the node;
2. least loaded: lowest reserved fraction of the node after placement
   (mean of the CPU and memory fractions), then fewest tasks overall;
3. node name, so that equal scores still give one answer.

A ranker holds the feasible nodes of one group (tasks of one service with one
demand) while that group is placed. `take()` removes and returns the best node;
the caller records the placement and, if the node still fits the demand, hands
it back with `put()`. Placing a task changes the score of that node only, so
each placement costs O(log n) (`ExactRanker`) or O(k) (`SampledRanker`),
whatever the number of nodes and tasks.
"""

import heapq
import random
from collections.abc import Sequence
from typing import Protocol

from corral.manager.scheduling.demand import Demand
from corral.manager.scheduling.snapshot import NodeSlot


def score(slot: NodeSlot, demand: Demand) -> tuple[int, float, int, str]:
    """The rank of `slot` for one more task of `demand`: lower is better."""
    load = 0.5 * ((slot.cpu_used + demand.cpus) * slot.inv_cpu + (slot.mem_used + demand.memory) * slot.inv_mem)
    return slot.replicas.get(demand.service, 0), load, slot.tasks, slot.name


class Ranker(Protocol):
    def take(self) -> NodeSlot | None:
        """Remove and return the best node, None when no node is left."""
        ...

    def put(self, slot: NodeSlot) -> None:
        """Give back a node taken by `take()` that can still take a task of the group."""
        ...


class ExactRanker:
    """Examines every feasible node: a heap ordered by `score`."""

    def __init__(self, candidates: Sequence[NodeSlot], demand: Demand) -> None:
        self._demand = demand
        self._heap = [(*score(slot, demand), slot) for slot in candidates]
        heapq.heapify(self._heap)

    def take(self) -> NodeSlot | None:
        if not self._heap:
            return None
        return heapq.heappop(self._heap)[-1]

    def put(self, slot: NodeSlot) -> None:
        heapq.heappush(self._heap, (*score(slot, self._demand), slot))


class SampledRanker:
    """Examines at most `sample` random feasible nodes per placement (power of k choices).

    Spread comes first in the score, so a node with more replicas of the
    service never beats one with fewer: the sample is drawn from the nodes with
    the fewest replicas only (nodes are kept in buckets by replica count), and
    the least loaded of the sample wins. Spread is thus as even as with the
    exact ranker; only the load balance is approximate.
    """

    def __init__(self, candidates: Sequence[NodeSlot], demand: Demand, sample: int, rng: random.Random) -> None:
        self._service = demand.service
        self._cpus = demand.cpus
        self._memory = demand.memory
        self._sample = sample
        self._random = rng.random
        self._buckets: dict[int, list[NodeSlot]] = {}
        service = demand.service
        for slot in candidates:
            self._buckets.setdefault(slot.replicas.get(service, 0), []).append(slot)
        self._low = min(self._buckets, default=0)
        self._size = len(candidates)

    def take(self) -> NodeSlot | None:
        if not self._size:
            return None
        buckets = self._buckets
        low = self._low
        bucket = buckets.get(low)
        while not bucket:
            low += 1
            bucket = buckets.get(low)
        self._low = low
        n = len(bucket)
        picks: Sequence[int]
        if n <= self._sample:
            picks = range(n)
        else:
            rand = self._random
            picks = [int(rand() * n) for _ in range(self._sample)]
        cpus, memory = self._cpus, self._memory
        chosen = bucket[picks[0]]
        best_at = picks[0]
        best_load = 0.5 * ((chosen.cpu_used + cpus) * chosen.inv_cpu + (chosen.mem_used + memory) * chosen.inv_mem)
        for at in picks:
            slot = bucket[at]
            load = 0.5 * ((slot.cpu_used + cpus) * slot.inv_cpu + (slot.mem_used + memory) * slot.inv_mem)
            if load < best_load or (
                load == best_load and (slot.tasks, slot.name) < (chosen.tasks, chosen.name)
            ):
                chosen, best_at, best_load = slot, at, load
        last = bucket.pop()
        if best_at < len(bucket):
            bucket[best_at] = last
        self._size -= 1
        return chosen

    def put(self, slot: NodeSlot) -> None:
        self._buckets.setdefault(slot.replicas.get(self._service, 0), []).append(slot)
        self._size += 1
