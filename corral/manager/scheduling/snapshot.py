"""The indexed view of the cluster the scheduler decides on.

`ClusterIndex` holds one `NodeSlot` per node: its capacity, whether it takes
new tasks, and what the tasks placed on it hold (reserved CPU and memory, task
count, replicas per service, host ports). Tasks are recorded by id, so
recording the same task again is a no-op, moving it re-homes what it holds,
and ending it (terminal state) releases it.

`schedule()` builds a fresh index from its `nodes` and `placed` arguments
when it is not given one. A caller that schedules in a loop can instead keep
one index between calls and pass it as `schedule(..., index=index)`: then
`placed` only needs the tasks that changed since the previous call (tasks that
ended, or were placed by somebody else), since the index already remembers
the rest, including the assignments the previous calls made.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field

from corral.model import Node, NodeAvailability, NodeState, Task, TERMINAL_STATES
from corral.manager.scheduling.demand import Demand, DemandCache, HostPort, demand_of


def _unavailable(node: Node) -> str | None:
    """Why `node` takes no new task ("down", "drained", "paused"), None when it does."""
    if node.state != NodeState.ready:
        return "down"
    if node.availability == NodeAvailability.drain:
        return "drained"
    if node.availability == NodeAvailability.pause:
        return "paused"
    return None


@dataclass(slots=True, eq=False)
class NodeSlot:
    """One node as the scheduler sees it, updated in place as tasks are placed."""

    name: str
    labels: dict[str, str]
    cpus: float  # capacity
    memory: int  # capacity, bytes
    unavailable: str | None  # "down", "drained", "paused"; None if it takes new tasks
    present: bool = True  # False once the node left the node list (its tasks may still be recorded)
    cpu_used: float = 0.0  # reserved by the tasks on it
    mem_used: int = 0
    tasks: int = 0
    replicas: dict[str, int] = field(default_factory=dict)  # service -> tasks of it here
    ports: dict[HostPort, int] = field(default_factory=dict)  # host port -> tasks holding it
    inv_cpu: float = 0.0  # 1 / capacity (0 when there is none): load fractions by multiplication
    inv_mem: float = 0.0

    def __post_init__(self) -> None:
        self._set_inverses()

    def _set_inverses(self) -> None:
        self.inv_cpu = 1.0 / self.cpus if self.cpus > 0 else 0.0
        self.inv_mem = 1.0 / self.memory if self.memory > 0 else 0.0

    def refresh(self, node: Node) -> bool:
        """Take `node`'s current fields; True if anything the scheduler looks at changed."""
        unavailable = _unavailable(node)
        cpus, memory = node.resources.cpus, node.resources.memory
        if (
            self.present
            and self.unavailable == unavailable
            and self.cpus == cpus
            and self.memory == memory
            and self.labels == node.labels
        ):
            return False
        self.present = True
        self.unavailable = unavailable
        self.cpus, self.memory = cpus, memory
        self.labels = dict(node.labels)
        self._set_inverses()
        return True

    def add(self, demand: Demand) -> None:
        self.cpu_used += demand.cpus
        self.mem_used += demand.memory
        self.tasks += 1
        replicas = self.replicas
        replicas[demand.service] = replicas.get(demand.service, 0) + 1
        if demand.host_ports:
            ports = self.ports
            for port in demand.host_ports:
                ports[port] = ports.get(port, 0) + 1

    def remove(self, demand: Demand) -> None:
        self.cpu_used = max(0.0, self.cpu_used - demand.cpus)
        self.mem_used = max(0, self.mem_used - demand.memory)
        self.tasks -= 1
        left = self.replicas.get(demand.service, 0) - 1
        if left > 0:
            self.replicas[demand.service] = left
        else:
            self.replicas.pop(demand.service, None)
        for port in demand.host_ports:
            held = self.ports.get(port, 0) - 1
            if held > 0:
                self.ports[port] = held
            else:
                self.ports.pop(port, None)


@dataclass(frozen=True)
class NodeUsage:
    """A read-only summary of one node, for callers (tests, benchmarks, status)."""

    name: str
    cpus: float
    memory: int
    cpus_reserved: float
    memory_reserved: int
    tasks: int
    replicas: dict[str, int]
    ports: frozenset[HostPort]


class ClusterIndex:
    """Nodes and what placed tasks hold on them, kept up to date incrementally."""

    def __init__(self, nodes: Iterable[Node] = (), placed: Iterable[Task] = ()) -> None:
        self._slots: dict[str, NodeSlot] = {}
        self._present: list[NodeSlot] = []
        self._holds: dict[str, tuple[NodeSlot, Demand]] = {}
        self.candidate_cache: dict[tuple[str, ...], list[NodeSlot]] = {}
        """Placement constraints -> the nodes passing the static filters (available, constraints
        hold), by name; kept by `schedule()`, emptied whenever a node is added, removed or changed."""
        self.set_nodes(nodes)
        self.record_all(placed)

    # -- nodes

    def set_nodes(self, nodes: Iterable[Node]) -> None:
        """Make `nodes` the node table: new ones are added, changed ones updated, absent ones dropped."""
        changed = False
        seen: set[str] = set()
        slots = self._slots
        for node in nodes:
            seen.add(node.name)
            slot = slots.get(node.name)
            if slot is None:
                slots[node.name] = NodeSlot(
                    name=node.name,
                    labels=dict(node.labels),
                    cpus=node.resources.cpus,
                    memory=node.resources.memory,
                    unavailable=_unavailable(node),
                )
                changed = True
            elif slot.refresh(node):
                changed = True
        if len(seen) != len(self._present) or changed:
            for name, slot in slots.items():
                if slot.present and name not in seen:
                    slot.present = False
                    changed = True
        if changed:
            self._present = sorted((s for s in slots.values() if s.present), key=lambda s: s.name)
            self.candidate_cache.clear()

    @property
    def nodes(self) -> list[NodeSlot]:
        """The nodes of the current node table, by name."""
        return self._present

    def slot(self, name: str) -> NodeSlot | None:
        """The node called `name` if it is in the node table."""
        slot = self._slots.get(name)
        return slot if slot is not None and slot.present else None

    def _slot_for_task(self, name: str) -> NodeSlot:
        slot = self._slots.get(name)
        if slot is None:  # a task on a node we were not told about: remember it, never offer the node
            slot = self._slots[name] = NodeSlot(name=name, labels={}, cpus=0.0, memory=0, unavailable="down", present=False)
        return slot

    # -- tasks

    def record(self, task: Task, demands: DemandCache | None = None) -> None:
        """Take `task` as it is now: on a node and not ended, it holds its reservations there; otherwise nothing."""
        if task.node is None or task.state in TERMINAL_STATES:
            self.release(task.id)
            return
        demand = demands.of(task) if demands is not None else demand_of(task)
        held = self._holds.get(task.id)
        if held is not None:
            if held[0].name == task.node and held[1] == demand:
                return
            held[0].remove(held[1])
        slot = self._slot_for_task(task.node)
        slot.add(demand)
        self._holds[task.id] = (slot, demand)

    def record_all(self, tasks: Iterable[Task]) -> None:
        """`record` each of `tasks`, working out the demand once per spec object they share."""
        demands = DemandCache()
        for task in tasks:
            self.record(task, demands)

    def release(self, task_id: str) -> None:
        """Forget what task `task_id` holds, if anything."""
        held = self._holds.pop(task_id, None)
        if held is not None:
            held[0].remove(held[1])

    def holds(self, task_id: str) -> bool:
        return task_id in self._holds

    def place(self, task_id: str, slot: NodeSlot, demand: Demand) -> None:
        """Record a placement the scheduler just made (the task is known not to be held)."""
        slot.add(demand)
        self._holds[task_id] = (slot, demand)

    def node_of(self, task_id: str) -> str | None:
        held = self._holds.get(task_id)
        return held[0].name if held is not None else None

    def __len__(self) -> int:
        """How many tasks are recorded."""
        return len(self._holds)

    # -- read-only views

    def usage(self) -> list[NodeUsage]:
        """What every node of the node table holds, by name."""
        return [
            NodeUsage(
                name=s.name,
                cpus=s.cpus,
                memory=s.memory,
                cpus_reserved=s.cpu_used,
                memory_reserved=s.mem_used,
                tasks=s.tasks,
                replicas=dict(s.replicas),
                ports=frozenset(s.ports),
            )
            for s in self._present
        ]
