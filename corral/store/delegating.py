"""A store that hands every call to another: the base of wrappers that watch writes (measured.py, tests' recorders).

Subclasses override the writes they look at. `election` is not handed on: the base Store's (one
manager, always leading) elects over the wrapper itself, so the fenced store still goes through it.
"""

from collections.abc import AsyncIterator, Sequence

from corral.store.base import KeyValue, Op, Store, WatchEvent


class DelegatingStore(Store):
    def __init__(self, inner: Store) -> None:
        self.inner = inner

    async def get(self, key: str) -> KeyValue | None:
        return await self.inner.get(key)

    async def range(self, prefix: str) -> tuple[list[KeyValue], int]:
        return await self.inner.range(prefix)

    async def txn(self, ops: Sequence[Op]) -> int:
        return await self.inner.txn(ops)

    async def txn_each(self, ops: Sequence[Op]) -> tuple[int, list[int]]:
        return await self.inner.txn_each(ops)

    async def revision(self) -> int:
        return await self.inner.revision()

    def watch(self, prefix: str, after: int, prev: bool = True) -> AsyncIterator[WatchEvent]:
        return self.inner.watch(prefix, after, prev)

    async def oldest_revision(self) -> int:
        return await self.inner.oldest_revision()

    async def compact(self, keep: int) -> int:
        return await self.inner.compact(keep)

    async def close(self) -> None:
        await self.inner.close()
