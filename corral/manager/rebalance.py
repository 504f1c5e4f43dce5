"""Rebalancing: which replicas of a service move when its spread over the nodes is uneven.

A node that joins, comes back or is activated gets no replica by itself: the replicas
placed while it was away stay where they are. `moves` (pure: the service, its slots'
tasks, the nodes, now) picks the replicas to move so that no eligible node runs two
more replicas of the service than another, as the scheduler's spread would have placed
them. Replication then moves each start-first: a new task in the same slot (with
`moved_from`, placed by the scheduler, which picks the emptiest node), and the old one
shuts down once the new one runs, so the service never drops below its replicas and
the mesh loses no request (a planned stop). A move whose new task cannot be placed or
fails is cancelled; the old task stays.

Bounds, so that the cluster never churns: only a service at rest (no rollout, every
replica running alone in its slot) moves; at most `update_config.parallelism` moves at
once; a replica that started less than the service's `rebalance_cooldown` (60 s) ago is
not moved, nor a slot whose move was cancelled that recently; `x-corral-rebalance: false`
opts out.
"""

from collections.abc import Mapping
from dataclasses import dataclass

from corral.model import Node, Service, ServiceMode, Task, TaskState
from corral.model.constraint import parse_constraint
from corral.model.node import NodeAvailability, NodeState
from corral.model.service import ROLLOUT_SETTLED
from corral.model.task import DesiredState


@dataclass(frozen=True)
class Move:
    slot_key: str
    task: Task  # the replica to move (it runs until its replacement does)


def moves(service: Service, slots: Mapping[str, list[Task]], nodes: Mapping[str, Node], now: float) -> list[Move]:
    """The replicas to move now, at most the service's update parallelism minus the moves under way."""
    spec = service.spec
    if spec.mode != ServiceMode.replicated or not spec.rebalance:
        return []
    if service.update_status is not None and service.update_status.state not in ROLLOUT_SETTLED:
        return []
    counts = _eligible(service, nodes)
    if len(counts) < 2:
        return []
    under_way = 0
    movable: dict[str, list[tuple[float, str, Task]]] = {name: [] for name in counts}
    for key, history in slots.items():
        live = [t for t in history if t.desired_state == DesiredState.running and not t.terminal]
        if len(live) != 1:
            if not any(t.moved_from for t in live):
                return []  # a slot being replaced or filled: not at rest
            under_way += 1
            newest = live[-1]
            if newest.node in counts:
                counts[newest.node] += 1
            continue
        task = live[0]
        if task.state != TaskState.running or task.node is None:
            return []
        if task.node not in counts:
            continue  # on a node that takes no new task (drained, paused...): drain and health deal with it
        counts[task.node] += 1
        started = task.started_at if task.started_at is not None else task.created_at
        if now - started >= spec.rebalance_cooldown and not _cancelled_lately(history, now, spec.rebalance_cooldown):
            movable[task.node].append((started, task.id, task))
    limit = spec.update_config.parallelism or spec.replicas
    cap = spec.placement.max_replicas_per_node
    chosen: list[Move] = []
    keys = {id(t): key for key, history in slots.items() for t in history}
    while under_way + len(chosen) < limit:
        low = min(counts, key=lambda name: (counts[name], name))
        if cap is not None and counts[low] >= cap:
            break
        sources = [name for name in counts if counts[name] - counts[low] >= 2 and movable[name]]
        if not sources:
            break
        high = max(sources, key=lambda name: (counts[name], name))
        movable[high].sort()
        _, _, task = movable[high].pop(0)  # the longest running goes first
        chosen.append(Move(keys[id(task)], task))
        counts[high] -= 1
        counts[low] += 1
    return chosen


def _eligible(service: Service, nodes: Mapping[str, Node]) -> dict[str, int]:
    """Node name -> 0 for every node that may take the service's new tasks."""
    constraints = [parse_constraint(text) for text in service.spec.placement.constraints]
    return {
        node.name: 0
        for node in nodes.values()
        if node.state == NodeState.ready
        and node.availability == NodeAvailability.active
        and all(c.matches(node.name, node.labels) for c in constraints)
    }


def _cancelled_lately(history: list[Task], now: float, cooldown: float) -> bool:
    return any(
        t.moved_from and t.started_at is None and t.desired_state == DesiredState.shutdown and now - t.updated_at < cooldown
        for t in history
    )
