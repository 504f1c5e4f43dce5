"""A plan: the changes one reconcile step decided, each bound to the copy it was decided from.

As in Nomad, reconcilers work on a snapshot and their result is a plan; a
separate apply step (`writes.apply`) turns the plan into store writes. Every
change carries the revision of the object it was computed from (the
`Versioned` the snapshot held, or 0 for an object that must not exist yet),
and the apply step writes with exactly that revision as the compare-and-swap
expectation, deletes included. So a change made by anybody else between the
snapshot and the write (an agent's report, a user's scale) makes the
controller's change lose, never the other way round; the lost change is
dropped and its `requeue` key reconciled again from fresher state.

Large plans go in batches of one transaction each; a change that loses is
skipped inside its batch (`Store.txn_each`), so the rest still lands in that
one transaction. Nothing here reads the live cache: the revisions come from
the snapshot.
"""

import logging
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from corral.manager import keys
from corral.manager.cache import Versioned
from corral.manager.writes import put_op
from corral.model import Node, Service, Task
from corral.store import Op, Store

log = logging.getLogger(__name__)

BATCH = 2000  # changes per transaction


@dataclass(frozen=True, slots=True)
class Change:
    """One write of a plan: `op.expect` is the mod_revision of the copy it was computed from
    (0: the key must not exist yet), never None."""

    op: Op
    requeue: str | None = None  # the work-queue key to reconcile again if this change loses

    @property
    def key(self) -> str:
        return self.op.key

    @property
    def expect(self) -> int:
        assert self.op.expect is not None
        return self.op.expect


@dataclass
class Plan:
    """The changes of one reconcile step, in the order they are to be written."""

    stage: str  # health | replication | scheduling: for logs and the test harness
    changes: list[Change] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.changes)

    def put(self, key: str, obj: BaseModel, read: Versioned[Any] | None, requeue: str | None = None) -> None:
        """Write `obj` over `read` (the snapshot's copy; None: create it). Nothing if it is unchanged."""
        if read is not None and read.obj == obj:
            return
        self.changes.append(Change(put_op(key, obj, read.revision if read is not None else 0), requeue))

    def delete(self, key: str, read: Versioned[Any], requeue: str | None = None) -> None:
        """Delete the object the snapshot read as `read`, only if it is still that copy."""
        self.changes.append(Change(Op(key, None, read.revision), requeue))

    def put_task(self, task: Task, read: Versioned[Task] | None, requeue: str | None = None) -> None:
        self.put(keys.task_key(task.id), task, read, requeue)

    def put_service(self, service: Service, read: Versioned[Service], requeue: str | None = None) -> None:
        self.put(keys.service_key(service.name), service, read, requeue)

    def put_node(self, node: Node, read: Versioned[Node]) -> None:
        self.put(keys.node_key(node.name), node, read)


@dataclass
class Applied:
    """What became of a plan: the last revision written, and the changes that lost a race."""

    revision: int = 0
    lost: list[Change] = field(default_factory=list)

    @property
    def requeue(self) -> set[str]:
        return {change.requeue for change in self.lost if change.requeue is not None}


async def apply(store: Store, plan: Plan) -> Applied:
    """Write the plan's changes, each only over the revision it was computed from."""
    applied = Applied()
    changes = plan.changes
    for start in range(0, len(changes), BATCH):
        batch = changes[start : start + BATCH]
        written, skipped = await store.txn_each([change.op for change in batch])
        applied.revision = max(applied.revision, written)
        for at in skipped:
            applied.lost.append(batch[at])
            log.debug("%s change lost a race: %s", plan.stage, batch[at].key)
    return applied
