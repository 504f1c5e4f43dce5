"""The etcd backend on a real three-member etcd: losing the member it talks to costs nothing (writes go on through
another, a watch resumes there without a gap or a duplicate); losing quorum refuses writes clearly
(StoreUnavailable), and they work again once quorum is back."""

import asyncio

import pytest

from corral.model.errors import StoreUnavailable
from corral.store import open_store
from corral.store.etcd import EtcdStore
from tests.etcd_server import start_etcd


async def test_a_member_lost_then_quorum_lost_and_back() -> None:
    etcd = start_etcd(3)
    try:
        store = await open_store(etcd.url)
        assert isinstance(store, EtcdStore)
        try:
            start = await store.revision()
            seen: list[int] = []

            async def follow() -> None:
                async for event in store.watch("w/", start):
                    seen.append(event.value["i"])  # type: ignore[index]

            watching = asyncio.create_task(follow())
            written = [await store.put(f"w/{i % 3}", {"i": i}) for i in range(50)]
            talked_to = next(m for m in etcd.members if store.client.endpoints[store.client._current].endswith(m.client))
            etcd.kill(talked_to)
            written += [await store.put(f"w/{i % 3}", {"i": i}) for i in range(50, 100)]
            assert written == sorted(written)
            for _ in range(100):
                if len(seen) == 100:
                    break
                await asyncio.sleep(0.1)
            assert seen == list(range(100))  # resumed on another member: nothing missed, nothing twice

            second = next(m for m in etcd.members if m is not talked_to)
            etcd.kill(second)  # one of three left: no quorum
            with pytest.raises(StoreUnavailable):
                await store.put("w/x", {"i": -1})
            for _ in range(30):  # once the member left notices it has no leader: refused at once, saying why
                try:
                    await store.get("w/x")
                except StoreUnavailable as err:
                    if "no quorum" in str(err):
                        break
                await asyncio.sleep(0.2)
            else:
                pytest.fail("a store without quorum never said so")
            etcd.start(talked_to)
            etcd.wait_ready([talked_to])  # a quorum again (two of three)
            for _ in range(50):
                try:
                    await store.put("w/after", {"i": 100})
                    break
                except StoreUnavailable:
                    await asyncio.sleep(0.2)
            assert (await store.get("w/after")).value == {"i": 100}  # type: ignore[union-attr]
            watching.cancel()
            await asyncio.gather(watching, return_exceptions=True)
        finally:
            await store.close()
    finally:
        etcd.stop()
