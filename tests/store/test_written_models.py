"""Which watch events carry the writer's object (`WatchEvent.model`): only a store's live events of this
process's own writes. Values from elsewhere (etcd, a watch's history) carry none, so the cache validates them."""

import asyncio

from corral.store import Op, Store, WatchEvent


async def _next(events: "asyncio.Queue[WatchEvent]") -> WatchEvent:
    return await asyncio.wait_for(events.get(), 10)


async def test_only_live_events_of_own_writes_carry_the_model(store: Store, store_url: str) -> None:
    marker = object()
    first = await store.txn([Op.put("k/a", {"n": 1}, model=marker)])
    events: asyncio.Queue[WatchEvent] = asyncio.Queue()

    async def follow() -> None:
        async for event in store.watch("k/", first - 1):
            await events.put(event)

    watching = asyncio.create_task(follow())
    try:
        replayed = await _next(events)  # history: read back from the store, never the writer's object
        assert (replayed.revision, replayed.value, replayed.model) == (first, {"n": 1}, None)
        await store.txn([Op.put("k/b", {"n": 2}, model=marker), Op.put("k/c", {"n": 3})])
        live = [await _next(events), await _next(events)]
        assert [event.value for event in live] == [{"n": 2}, {"n": 3}]
        own = store_url.startswith("sqlite")  # etcd's events come from etcd: another manager may have written them
        assert live[0].model is (marker if own else None)
        assert live[1].model is None  # written without one
    finally:
        watching.cancel()
        await asyncio.gather(watching, return_exceptions=True)
