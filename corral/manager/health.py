"""Health management: a node whose lease ran out is down, and its tasks are lost.

`reconcile` is pure (nodes, tasks, last heartbeats, now, settings) -> the
changed nodes and tasks. Replication then replaces the lost tasks elsewhere.
Heartbeats live in memory (`cluster.Leases`), as in Swarm's dispatcher: a
heartbeat is not worth a durable write, and after a manager restart every
node gets a fresh lease before it can be declared down.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from corral.model import Node, NodeState, Task, TaskState
from corral.model.task import UNPLACED_STATES


def node_health(node: Node, last_heartbeat: float, now: float, lease: float) -> str:
    """What `node ls` shows: ok, late (lease ran out, still within grace) or down."""
    if node.state == NodeState.down:
        return "down"
    return "late" if now - last_heartbeat > lease else "ok"


@dataclass
class HealthPlan:
    nodes: list[Node] = field(default_factory=list)
    tasks: list[Task] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.nodes or self.tasks)


def reconcile(
    nodes: Mapping[str, Node],
    tasks: Iterable[Task],
    heartbeats: Mapping[str, float],
    now: float,
    down_after: float,
) -> HealthPlan:
    """`down_after`: seconds without a heartbeat before a node is down (its lease plus grace)."""
    plan = HealthPlan()
    down: set[str] = set()
    for node in nodes.values():
        last = heartbeats.get(node.name, node.last_heartbeat)
        expired = now - last > down_after
        if node.state == NodeState.ready and expired:
            plan.nodes.append(
                node.model_copy(
                    update={"state": NodeState.down, "message": f"no heartbeat for {now - last:.1f}s", "last_heartbeat": last}
                )
            )
            down.add(node.name)
        elif node.state == NodeState.down:
            down.add(node.name)
    for task in tasks:
        if task.node in down and not task.terminal and task.state not in UNPLACED_STATES:
            plan.tasks.append(
                task.model_copy(update={"state": TaskState.lost, "error": f"node {task.node} is down", "updated_at": now})
            )
        elif task.node and task.node not in nodes and not task.terminal and task.state not in UNPLACED_STATES:
            plan.tasks.append(
                task.model_copy(update={"state": TaskState.lost, "error": f"node {task.node} was removed", "updated_at": now})
            )
    return plan
