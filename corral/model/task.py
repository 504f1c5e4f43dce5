"""A task: one container replica of a service, from creation to its end."""

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from corral.model.compact import compact
from corral.model.service import ServiceSpec


class TaskState(str, Enum):
    """Observed state, in the order a healthy task moves through it."""

    new = "new"  # created by replication, not yet placed
    pending = "pending"  # the scheduler found no node for it yet (see `error`)
    assigned = "assigned"  # placed on a node, the agent has not started it yet
    starting = "starting"  # the agent is pulling the image / creating the container
    running = "running"
    complete = "complete"  # exited with code 0
    failed = "failed"  # exited non-zero, or could not be started
    shutdown = "shutdown"  # stopped because it was asked to
    rejected = "rejected"  # the agent refused it (bad image, bad spec)
    lost = "lost"  # its node went down or its container disappeared
    orphaned = "orphaned"  # its service is gone


TERMINAL_STATES = frozenset(
    {TaskState.complete, TaskState.failed, TaskState.shutdown, TaskState.rejected, TaskState.lost, TaskState.orphaned}
)
UNPLACED_STATES = frozenset({TaskState.new, TaskState.pending})


class DesiredState(str, Enum):
    running = "running"
    shutdown = "shutdown"


class PublishedPort(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    target: int = Field(strict=True)  # strict: `false` is no port
    protocol: str = "tcp"
    host_ip: str
    host_port: int = Field(strict=True)


class Task(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    service: str
    stack: str = ""
    slot: int | None = Field(default=None, description="replica number; None for global services")
    node: str | None = None
    desired_state: DesiredState = DesiredState.running
    state: TaskState = TaskState.new
    error: str = ""
    exit_code: int | None = None
    container_id: str = ""
    spec: ServiceSpec
    spec_version: int = 1
    attempt: int = Field(default=0, description="how many tasks ran in this slot before this one")
    restarts: int = Field(default=0, description="restarts of this slot charged to the restart policy")
    backoff: int = Field(default=0, description="consecutive fast failures of this slot (restart back-off exponent)")
    moved_from: str = Field(default="", description="rebalancing: the task on another node this one replaces once it runs")
    job_run: int = Field(default=0, description="the run of a job this task belongs to (0: not a job)")
    not_before: float = Field(default=0.0, description="restart delay: the scheduler places it no earlier")
    ports: list[PublishedPort] = Field(default_factory=list)
    started_at: float | None = Field(default=None, description="when it was first reported running (a rollout's monitor counts from here)")
    created_at: float
    updated_at: float

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL_STATES

    @property
    def address(self) -> str:
        """node address and host port of the first published port, '' if none yet."""
        if not self.ports:
            return ""
        port = self.ports[0]
        return f"{port.host_ip}:{port.host_port}"

    @property
    def slot_key(self) -> str:
        """What identifies the replica this task fills: the slot, or the node of a global task."""
        return str(self.slot) if self.slot is not None else f"node={self.node}"


@dataclass
class SharedSpecs:
    """Reads tasks so that the tasks of one service version share one spec object, compacted.

    A spec is most of a task (about 10 KB of 13 as objects): 100,000 tasks of a few services
    would otherwise hold 100,000 copies. Validating against a known spec is also about three
    times cheaper. What is left of each task is made smaller by `compact.compact` (shared
    bookkeeping, interned names): about 0.6 KB a task instead of 3.2. Used by the manager's
    cache and by agent fleets, which read many tasks; the tasks it returns must not be changed
    in place.
    """

    known: dict[tuple[str, int], tuple[dict[str, Any], ServiceSpec]] = field(default_factory=dict)
    compact: bool = True  # False: tasks as pydantic validates them (bench/memory.py's baseline)

    def task(self, value: dict[str, Any], written: Task | None = None) -> Task:
        """The task `value` holds; `written`, when given, is that task already validated and compacted, owned by
        the caller and nobody else (this manager's own write, `Op.model`): it is taken instead of validating
        `value` again, its spec replaced by the shared one."""
        key = (value["service"], value.get("spec_version", 1))
        data = value["spec"]
        known = self.known.get(key)
        # Writers dump one dict per spec object (writes.dump), so the same dict comes back: no comparison.
        if known is not None and (known[0] is data or known[0] == data):
            if written is None:
                task = Task.model_validate({**value, "spec": known[1]})  # pydantic keeps the instance as is
            else:
                task = written
                if task.spec is not known[1]:
                    task.__dict__["spec"] = known[1]
        else:
            task = Task.model_validate(value) if written is None else written
            self.known[key] = (data, task.spec)
        if self.compact:
            if task.updated_at == task.created_at:  # one float object for both (a task written once)
                task.__dict__["updated_at"] = task.created_at
            if written is None:
                compact(task, intern=SHARED_NAMES)
        return task


SHARED_NAMES = ("service", "stack", "node")  # the same few strings in many tasks (interned by `compact`)
