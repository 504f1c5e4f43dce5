"""The cache gives the event loop a turn more often while a user's request is in flight (`StateCache.busy`).

A real SQLite store and the real cache following its watch: one transaction of 600 changes (each its own
revision in SQLite) arrives at once; a probe that asks for every turn of the loop sees how many changes the
cache applied between two of its turns.
"""

import asyncio
from pathlib import Path

from corral.manager.cache import YIELD_EVERY, YIELD_EVERY_BUSY, StateCache
from corral.store import Op, open_store

CHANGES = 600


async def _largest_step(tmp_path: Path, busy: bool) -> tuple[int, int]:
    """(the most changes the cache applied between two turns of the probe, the revisions applied in all)."""
    store = await open_store(f"sqlite://{tmp_path}/s-{busy}.db")
    cache = StateCache(store)
    cache.busy = lambda: busy
    following = asyncio.create_task(cache.run())
    try:
        await asyncio.wait_for(cache.synced.wait(), 5)
        start = cache.revision
        seen = [start]

        async def probe() -> None:
            while cache.revision < start + CHANGES:
                await asyncio.sleep(0)
                seen.append(cache.revision)

        probing = asyncio.create_task(probe())
        await store.txn([Op.put(f"other/k{i}", {"i": i}) for i in range(CHANGES)])
        await asyncio.wait_for(probing, 10)
        return max(after - before for before, after in zip(seen, seen[1:])), seen[-1] - start
    finally:
        following.cancel()
        await asyncio.gather(following, return_exceptions=True)
        await store.close()


async def test_the_cache_applies_fewer_changes_a_turn_while_users_wait(tmp_path: Path) -> None:
    busy_step, busy_total = await _largest_step(tmp_path, busy=True)
    idle_step, idle_total = await _largest_step(tmp_path, busy=False)
    assert busy_total == idle_total == CHANGES  # every change applied either way
    assert busy_step <= YIELD_EVERY_BUSY
    assert YIELD_EVERY_BUSY < idle_step <= YIELD_EVERY
