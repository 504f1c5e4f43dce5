"""A store that reports each write's duration and outcome (the manager's `corral_store_write*` metrics).

Wraps any backend and delegates everything; only the writes (`txn`, `txn_each`, and `put`/`delete`
through them) are timed, and `observe(seconds, result)` is told each one: "ok", "conflict" (an
expectation failed: a lost race, not a fault) or "error". Must add nothing else: no retries, no caching.
"""

import time
from collections.abc import Callable, Sequence

from corral.model.errors import Conflict
from corral.store.base import Op, Store
from corral.store.delegating import DelegatingStore
from corral.store.election import Election

Observe = Callable[[float, str], None]  # (seconds, result)


class MeasuredStore(DelegatingStore):
    def __init__(self, inner: Store, observe: Observe) -> None:
        super().__init__(inner)
        self.observe = observe

    async def txn(self, ops: Sequence[Op]) -> int:
        started, result = time.perf_counter(), "error"
        try:
            revision = await self.inner.txn(ops)
            result = "ok"
            return revision
        except Conflict:
            result = "conflict"
            raise
        finally:
            self.observe(time.perf_counter() - started, result)

    async def txn_each(self, ops: Sequence[Op]) -> tuple[int, list[int]]:
        started, result = time.perf_counter(), "error"
        try:
            done = await self.inner.txn_each(ops)
            result = "ok"
            return done
        finally:
            self.observe(time.perf_counter() - started, result)

    def election(self, ttl: float) -> Election:
        """The backend's own (etcd elects over etcd); the leader's fenced store is wrapped again by the manager."""
        return self.inner.election(ttl)
