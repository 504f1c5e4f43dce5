"""Read-your-writes waiters: each `wait_for(revision)` is released once the cache reaches its revision, in any order
of asking, and only then; one that times out says NotCaughtUp and leaves the others waiting. A real SQLite store
and the real cache following its watch."""

import asyncio
from pathlib import Path

import pytest

from corral.manager.cache import StateCache
from corral.model.errors import NotCaughtUp
from corral.store import open_store


async def test_waiters_are_released_at_their_revision_and_a_timeout_leaves_the_others(tmp_path: Path) -> None:
    store = await open_store(f"sqlite://{tmp_path}/s.db")
    cache = StateCache(store)
    following = asyncio.create_task(cache.run())
    try:
        await asyncio.wait_for(cache.synced.wait(), 5)
        base = cache.revision
        await cache.wait_for(base)  # reached already: returns at once
        released: list[int] = []

        async def wait(offset: int) -> None:
            await cache.wait_for(base + offset, timeout=10)
            released.append(offset)

        waiters = [asyncio.create_task(wait(offset)) for offset in (3, 1, 2, 3)]
        with pytest.raises(NotCaughtUp):
            await cache.wait_for(base + 1, timeout=0.05)  # nothing written yet: times out...
        await asyncio.sleep(0.05)
        assert released == [] and not any(w.done() for w in waiters)  # ... and the others still wait
        first = await store.put("other/a", {"i": 1})
        assert first == base + 1
        await asyncio.wait_for(asyncio.shield(waiters[1]), 5)
        await asyncio.sleep(0.05)
        assert released == [1]  # only the waiter of the revision reached
        await store.put("other/b", {"i": 2})
        await store.put("other/c", {"i": 3})
        await asyncio.wait_for(asyncio.gather(*waiters), 5)
        assert sorted(released) == [1, 2, 3, 3] and released[0] == 1
        assert cache._revision_waiters == []  # nothing left behind
    finally:
        following.cancel()
        await asyncio.gather(following, return_exceptions=True)
        await store.close()
