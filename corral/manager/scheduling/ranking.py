"""Ranking: which of the feasible nodes takes the next task of a group.

The score, best first, is:

1. spread: fewest tasks of the same service on the node;
2. least loaded: lowest reserved fraction of the node after placement
   (mean of the CPU and memory fractions), then fewest tasks overall;
3. node name, so that equal scores still give one answer.

A ranker holds the nodes passing the static filters for one group (tasks of
one service with one demand) while that group is placed. `take()` removes and
returns the best node that passes the dynamic filters; the caller records the
placement and hands the node back with `put()`. Placing a task changes the
score of that node only, and within a group placements only ever take room,
so a node found not to fit is dropped for good: the dynamic filters run
lazily, on the nodes the ranker looks at, never over all nodes per task. Each
placement costs O(log n) (`ExactRanker`) or O(k) (`SampledRanker`) amortised,
whatever the number of nodes and tasks.
"""

import heapq
import random
from collections.abc import Callable, Sequence
from typing import Protocol

from corral.manager.scheduling.demand import Demand
from corral.manager.scheduling.snapshot import NodeSlot


def score(slot: NodeSlot, demand: Demand) -> tuple[int, float, int, str]:
    """The rank of `slot` for one more task of `demand`: lower is better."""
    load = 0.5 * ((slot.cpu_used + demand.cpus) * slot.inv_cpu + (slot.mem_used + demand.memory) * slot.inv_mem)
    return slot.replicas.get(demand.service, 0), load, slot.tasks, slot.name


Fits = Callable[[NodeSlot], bool]
"""Whether a node passes the group's dynamic filters now (None: no dynamic filter, every node does)."""


class Ranker(Protocol):
    def take(self) -> NodeSlot | None:
        """Remove and return the best node that fits, None when no node is left."""
        ...

    def put(self, slot: NodeSlot) -> None:
        """Give back a node taken by `take()` after a task was placed on it."""
        ...


class ExactRanker:
    """Examines every feasible node: a heap ordered by `score`."""

    def __init__(self, candidates: Sequence[NodeSlot], demand: Demand, fits: Fits | None = None) -> None:
        self._demand = demand
        self._fits = fits
        self._heap = [(*score(slot, demand), slot) for slot in candidates]
        heapq.heapify(self._heap)

    def take(self) -> NodeSlot | None:
        heap, fits = self._heap, self._fits
        while heap:
            slot = heapq.heappop(heap)[-1]
            if fits is None or fits(slot):
                return slot
            # It does not fit now, so it will not for the rest of the group: drop it.
        return None

    def put(self, slot: NodeSlot) -> None:
        heapq.heappush(self._heap, (*score(slot, self._demand), slot))


class SampledRanker:
    """Examines at most `sample` random feasible nodes per placement (power of k choices).

    Spread comes first in the score, so a node with more replicas of the
    service never beats one with fewer: the sample is drawn from the nodes with
    the fewest replicas only (nodes are kept in buckets by replica count), and
    the least loaded of the sample wins. Spread is thus as even as with the
    exact ranker; only the load balance is approximate. When a bucket holds
    `sample` nodes or fewer, all of them are examined.

    The dynamic filters run on the winner of the sample only: a winner that
    does not fit is dropped from its bucket (for the rest of the group) and
    replaced by another draw, so the node chosen is the best of `sample` nodes
    that fit, as with Nomad's limit iterator, for one filter run per placement
    in the common case.
    """

    def __init__(
        self, candidates: Sequence[NodeSlot], demand: Demand, sample: int, rng: random.Random, fits: Fits | None = None
    ) -> None:
        self._service = demand.service
        self._cpus = demand.cpus
        self._memory = demand.memory
        self._sample = sample
        self._random = rng.random
        self._fits = fits
        self._buckets: dict[int, list[NodeSlot]] = {}
        self._at: dict[NodeSlot, int] = {}  # where each node is in its bucket, for O(1) removal
        self._size = 0
        for slot in candidates:
            self.put(slot)
        self._low = min(self._buckets, default=0)

    def _remove(self, bucket: list[NodeSlot], slot: NodeSlot) -> None:
        at = self._at.pop(slot)
        last = bucket.pop()
        if last is not slot:
            bucket[at] = last
            self._at[last] = at
        self._size -= 1

    def _draw(self, bucket: list[NodeSlot], count: int) -> list[NodeSlot]:
        """`count` random nodes of `bucket` (all of it when it holds no more than `sample`)."""
        if len(bucket) <= self._sample:
            return list(bucket)
        rand = self._random
        size = len(bucket)
        return [bucket[int(rand() * size)] for _ in range(count)]

    def _best(self, picks: list[NodeSlot]) -> NodeSlot:
        cpus, memory = self._cpus, self._memory
        chosen = picks[0]
        best = 0.5 * ((chosen.cpu_used + cpus) * chosen.inv_cpu + (chosen.mem_used + memory) * chosen.inv_mem)
        for slot in picks:
            load = 0.5 * ((slot.cpu_used + cpus) * slot.inv_cpu + (slot.mem_used + memory) * slot.inv_mem)
            if load < best or (load == best and (slot.tasks, slot.name) < (chosen.tasks, chosen.name)):
                chosen, best = slot, load
        return chosen

    def take(self) -> NodeSlot | None:
        buckets, fits = self._buckets, self._fits
        while self._size:
            bucket = buckets.get(self._low)
            while not bucket:
                self._low += 1
                bucket = buckets.get(self._low)
            picks = self._draw(bucket, self._sample)
            while picks:
                chosen = self._best(picks)
                self._remove(bucket, chosen)
                if fits is None or fits(chosen):
                    return chosen
                if len(bucket) <= self._sample:
                    picks = list(bucket)
                else:
                    picks = [slot for slot in picks if slot is not chosen] + self._draw(bucket, 1)
        return None

    def put(self, slot: NodeSlot) -> None:
        count = slot.replicas.get(self._service, 0)
        bucket = self._buckets.get(count)
        if bucket is None:
            bucket = self._buckets[count] = []
        self._at[slot] = len(bucket)
        bucket.append(slot)
        self._size += 1
