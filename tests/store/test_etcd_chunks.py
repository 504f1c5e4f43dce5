"""txn_each batches larger than the etcd store takes at once (its URL's max-txn-ops, here far below the limit the etcd
was started with): every chunk lands whole, a key in two chunks keeps its order, the skipped ops are exactly the stale
ones, in order, and a watcher sees every write once."""

import asyncio
import re

from corral.store import Op, open_store
from corral.store.base import WatchEvent
from corral.store.etcd import EtcdStore
from tests.etcd_server import EtcdCluster


async def test_a_batch_of_many_chunks_lands_whole_and_skips_exactly_the_stale(etcd: EtcdCluster) -> None:
    url = re.sub(r"max-txn-ops=\d+", "max-txn-ops=25", etcd.store_url("chunks"))
    assert "max-txn-ops=25" in url
    store = await open_store(url)
    assert isinstance(store, EtcdStore)
    try:
        base = await store.revision()
        seen: list[WatchEvent] = []

        async def follow() -> None:
            async for event in store.watch("m/", base):
                seen.append(event)

        watcher = asyncio.create_task(follow())
        revision, skipped = await store.txn_each([Op.put(f"m/{i:04}", {"i": i}, expect=0) for i in range(600)])
        items, _ = await store.range("m/")
        assert skipped == [] and len(items) == 600 and revision == max(kv.mod_revision for kv in items)
        assert len({kv.mod_revision for kv in items}) == 25  # 24 ops and the fence's place per Txn: 25 Txns
        stored = {kv.key: kv.mod_revision for kv in items}

        # every third op expects a revision the key does not have: those, and only those, are skipped, in order
        ops = [Op.put(f"m/{i:04}", {"i": -i}, expect=stored[f"m/{i:04}"] + (1 if i % 3 == 0 else 0)) for i in range(600)]
        revision, skipped = await store.txn_each(ops)
        assert skipped == list(range(0, 600, 3))
        values = {kv.key: kv.value["i"] for kv in (await store.range("m/"))[0]}
        assert values == {f"m/{i:04}": i if i % 3 == 0 else -i for i in range(600)}
        assert revision == await store.revision()

        # a key written in the first chunk and again in the last: the last write is the one kept
        ops = [Op.put("m/0001", {"i": "first"}), *[Op.put(f"m/{i:04}", {"i": 0}) for i in range(2, 100)], Op.put("m/0001", {"i": "last"})]
        await store.txn_each(ops)
        assert (await store.get("m/0001")).value == {"i": "last"}  # type: ignore[union-attr]

        async def caught_up() -> None:
            while not seen or seen[-1].revision < revision:
                await asyncio.sleep(0.05)

        await asyncio.wait_for(caught_up(), 10)
        watcher.cancel()
        revisions = [event.revision for event in seen]
        assert revisions == sorted(revisions) and len(seen) == len({(e.revision, e.key) for e in seen})
    finally:
        await store.close()
