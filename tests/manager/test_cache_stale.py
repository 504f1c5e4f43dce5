"""The cache says when what it holds may be stale: its watch stalled (a manager cut off from etcd), or the store
cannot be listed. It keeps answering from what it holds, and is current again once a list works. A real SQLite
store, wrapped so that the test decides when the watch stalls and when the store answers."""

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

from corral.manager import keys
from corral.manager.cache import StateCache
from corral.manager.writes import dump
from corral.model import Node, Resources
from corral.model.errors import StoreUnavailable
from corral.store import KeyValue, WatchEvent, WatchStalled, open_store
from corral.store.delegating import DelegatingStore


class CutLink(DelegatingStore):
    """The store as a manager behind a link the test cuts: watches stall, lists fail until healed."""

    cut = False
    lists = 0

    async def range(self, prefix: str) -> tuple[list[KeyValue], int]:
        self.lists += 1
        if self.cut:
            raise StoreUnavailable("no etcd member answers (cut by the test)")
        return await self.inner.range(prefix)

    async def watch(self, prefix: str, after: int, prev: bool = True) -> AsyncIterator[WatchEvent]:
        """Quiet (the test writes nothing through it while linked), stalled once cut."""
        if False:  # pragma: no cover - an async generator that yields nothing
            yield
        while not self.cut:
            await asyncio.sleep(0.01)
        raise WatchStalled("etcd did not answer a check within its deadline: the link to it is cut")


async def _until(condition: object, what: str) -> None:
    for _ in range(500):
        if callable(condition) and condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


async def test_stale_while_cut_off_current_again_after_a_list(tmp_path: Path) -> None:
    store = CutLink(await open_store(f"sqlite://{tmp_path}/s.db"))
    node = Node(name="n1", address="127.0.0.2", resources=Resources(cpus=1, memory=1 << 30), last_heartbeat=1.0, registered_at=1.0)
    await store.put(keys.NODES + "n1", dump(node))
    cache = StateCache(store)
    running = asyncio.create_task(cache.run())
    try:
        await asyncio.wait_for(cache.synced.wait(), 5)
        assert cache.stale is None and set(cache.nodes) == {"n1"}

        store.cut = True
        await _until(lambda: cache.stale is not None, "the cache marked stale")
        assert "link to it is cut" in (cache.stale or "") or "cut by the test" in (cache.stale or ""), cache.stale
        lists = store.lists
        await _until(lambda: store.lists > lists + 1, "lists tried again")
        assert "cannot be listed: no etcd member answers (cut by the test)" in (cache.stale or ""), cache.stale
        assert set(cache.nodes) == {"n1"}  # still serving what it held

        await store.inner.put(keys.NODES + "n2", dump(node.model_copy(update={"name": "n2"})))  # written meanwhile
        store.cut = False
        await _until(lambda: cache.stale is None, "the cache current again")
        assert set(cache.nodes) == {"n1", "n2"}  # listed again: caught up
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        await store.close()
