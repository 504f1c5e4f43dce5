"""The store interface (etcd-shaped, as kine is) and the rules a backend keeps.

Two backends: SQLite (`sqlite.py`, `sqlite:///PATH`, the embedded default) and
etcd v3 (`etcd/`, `etcd://HOST:PORT[,...]`, for several managers), opened by
`open_store` from a URL. The manager knows only this interface; every backend
passes tests/store/test_store_contract.py.

Rules a backend keeps:
- Every write bumps one cluster-wide revision; a key's `mod_revision` is the
  revision of its last write. A write is durable when the call returns.
  Revisions only grow; the ops of one transaction get revisions in order, one
  each (SQLite) or one for all (etcd): never count on the numbering, only on
  the revisions the store hands back.
- A write can be conditional on the key's current `mod_revision`
  (0 = "must not exist"): compare-and-swap, enforced by the backend.
- `watch(prefix, after)` yields every change with revision > `after`, in
  order, with nothing missed; a watcher that cannot keep up gets
  `WatchExpired` and must read again (`range`) and watch from there.
- History is compacted (`compact`): the state at the compacted revision is
  kept (each key's last value at or before it; a deletion's tombstone goes),
  what came before it is forgotten. A watch from before it fails at once with
  `corral.model.errors.Compacted`, naming `oldest_revision()`: read again
  (`range`) and watch from there. Current values are never compacted.
Values are JSON-able dicts; the store does not know what they mean.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

import orjson

from corral.model.errors import Conflict

if TYPE_CHECKING:
    from corral.store.election import Election


class WatchExpired(Exception):
    """The watch cannot continue from where it was; list again and re-watch."""


class WatchStalled(WatchExpired):
    """The watch went silent while the store moved on, or the store stopped answering (a manager cut off from a
    healthy etcd): what was last seen may be stale. List again (which succeeds once the link is back)."""


@dataclass(frozen=True)
class KeyValue:
    key: str
    value: dict[str, Any]
    create_revision: int
    mod_revision: int


@dataclass(frozen=True)
class WatchEvent:
    revision: int
    key: str
    value: dict[str, Any] | None  # None: the key was deleted
    # The value before (None: the key was created), or its stored JSON text: most watchers never
    # look at it, so a backend may leave it encoded and `prev_value` decodes it when first read.
    prev: dict[str, Any] | str | None
    # The object `value` was dumped from, when this process wrote it (`Op.model`) and the backend hands its own
    # writes to its watchers in process (SQLite's live events): a reader may take it instead of validating
    # `value` again. None for values from elsewhere (etcd, a history replay, a listing): validate those. Every watcher
    # in the process gets the same object: none may change it (the cache only swaps a task's spec for the equal
    # one it shares, `SharedSpecs.task`).
    model: object = None

    @property
    def deleted(self) -> bool:
        return self.value is None

    @cached_property
    def prev_value(self) -> dict[str, Any] | None:
        return orjson.loads(self.prev) if isinstance(self.prev, str) else self.prev


@dataclass(frozen=True)
class Op:
    """One write in a transaction: a put (value set) or a delete (value None).

    `expect` is the mod_revision the key must have for the transaction to
    apply: None means unconditional, 0 means the key must not exist.
    """

    key: str
    value: dict[str, Any] | None
    expect: int | None = None
    # Optional: a validated object equal to what `value` is read back as, owned by nobody else (a copy taken when
    # the op was made, never changed after: see `corral.manager.writes.put_op`). A backend may hand it on with
    # its watch event (`WatchEvent.model`); the store never reads it.
    model: object = None

    @staticmethod
    def put(key: str, value: dict[str, Any], expect: int | None = None, model: object = None) -> "Op":
        return Op(key, value, expect, model)

    @staticmethod
    def delete(key: str, expect: int | None = None) -> "Op":
        return Op(key, None, expect)


class Store(ABC):
    @abstractmethod
    async def get(self, key: str) -> KeyValue | None: ...

    @abstractmethod
    async def range(self, prefix: str) -> tuple[list[KeyValue], int]:
        """Every live key under prefix (sorted by key), and the store revision they were read at (etcd's Range)."""

    @abstractmethod
    async def txn(self, ops: Sequence[Op]) -> int:
        """Apply all ops atomically, or none: raise corral.model.errors.Conflict
        naming the first key whose expectation failed. Returns the new revision
        (the current one when ops is empty or only deletes absent keys)."""

    async def txn_each(self, ops: Sequence[Op]) -> tuple[int, list[int]]:
        """Apply every op whose expectation holds, skip the others, all in one transaction.

        Returns the new revision and the indexes (into ops) of the skipped ops.
        For batches of independent writes (many tasks' status reports), where
        one lost race must not send the rest back. A backend without a native
        form falls back to one transaction per op after a conflict.
        """
        try:
            return await self.txn(ops), []
        except Conflict:
            pass
        revision, skipped = await self.revision(), []
        for at, op in enumerate(ops):
            try:
                revision = await self.txn([op])
            except Conflict:
                skipped.append(at)
        return revision, skipped

    @abstractmethod
    async def revision(self) -> int: ...

    @abstractmethod
    def watch(self, prefix: str, after: int, prev: bool = True) -> AsyncIterator[WatchEvent]:
        """Changes under prefix with revision > after, forever (until cancelled).

        `prev=False`: the events' `prev` may be left out (None), for watchers that never read it (the manager's
        cache): etcd then need not read and send every key's previous value.

        Raises Compacted (on the first step) when `after` is older than `oldest_revision()`."""

    @abstractmethod
    async def oldest_revision(self) -> int:
        """The oldest revision a watch can start after (0 until something is compacted)."""

    @abstractmethod
    async def compact(self, keep: int) -> int:
        """Forget the history older than the last `keep` revisions; returns the oldest revision kept.

        Done in short steps, so writes and reads go on meanwhile; reclaims the space."""

    @abstractmethod
    async def close(self) -> None: ...

    def election(self, ttl: float) -> "Election":
        """How managers sharing this store elect their leader (one store of one manager's own: it always leads)."""
        from corral.store.election import SoloElection

        return SoloElection(self)

    async def put(self, key: str, value: dict[str, Any], expect: int | None = None) -> int:
        return await self.txn([Op.put(key, value, expect)])

    async def delete(self, key: str, expect: int | None = None) -> int:
        return await self.txn([Op.delete(key, expect)])
