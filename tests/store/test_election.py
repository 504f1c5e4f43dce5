"""Leader election and fencing on a real etcd: one leader at a time, a lapsed term cannot write, a resignation
hands over at once. (SQLite: one manager, it always leads.)"""

import asyncio
import time

import pytest

from corral.model.errors import NotLeader
from corral.store import Op, open_store
from corral.store.election import SoloElection
from corral.store.etcd import EtcdStore
from corral.store.etcd.election import EtcdElection
from tests.etcd_server import EtcdCluster


async def test_one_leader_a_lapsed_term_is_fenced_off(etcd: EtcdCluster) -> None:
    url = etcd.store_url("election-a")
    a, b = await open_store(url), await open_store(url)
    try:
        first, second = a.election(2.0), b.election(2.0)
        term = await first.campaign({"name": "m1", "url": "https://m1"})
        assert term is not None and await second.campaign({"name": "m2", "url": "https://m2"}) is None
        assert await second.leader() == {"name": "m1", "url": "https://m1"}
        fenced = first.fenced(term)
        written = await fenced.put("services/x", {"by": "m1"})
        assert written > term.revision and await first.renew(term)

        # m1 stops renewing (killed, partitioned): within the ttl etcd drops its key, and m2 wins the next campaign.
        started = time.monotonic()
        while (won := await second.campaign({"name": "m2", "url": "https://m2"})) is None:
            assert time.monotonic() - started < 5, "the lapsed term was not given up"
            await asyncio.sleep(0.1)
        assert 1.0 < time.monotonic() - started < 4.0 and won.revision > term.revision
        assert not await first.renew(term)
        before = await a.revision()
        with pytest.raises(NotLeader, match="another manager leads"):
            await fenced.txn([Op.put("services/x", {"by": "m1, deposed"}), Op.put("services/y", {"by": "m1"})])
        with pytest.raises(NotLeader):
            await fenced.txn_each([Op.put("tasks/t", {"by": "m1"})])
        assert await a.revision() == before and (await a.get("services/x")).value == {"by": "m1"}  # type: ignore[union-attr]
        assert await b.election(2.0).fenced(won).put("services/x", {"by": "m2"}) > before

        # A clean stop resigns: the other manager leads at once, not a ttl later.
        await second.resign(won)
        assert await first.leader() is None
        assert await first.campaign({"name": "m1", "url": "https://m1"}) is not None
    finally:
        await a.close()
        await b.close()


async def test_sqlite_has_one_manager_who_always_leads(tmp_path) -> None:
    store = await open_store(f"sqlite://{tmp_path}/s.db")
    try:
        election = store.election(2.0)
        assert isinstance(election, SoloElection)
        term = await election.campaign({"name": "only"})
        assert term is not None and await election.renew(term) and election.fenced(term) is store
    finally:
        await store.close()


async def test_a_campaign_wins_with_a_fresh_lease(etcd: EtcdCluster) -> None:
    """A follower's campaigns share one lease, but not one granted more than ttl/3 ago: a term won with a lease about
    to lapse would end at once (the leader key goes with its lease) before its first renewal."""
    url = etcd.store_url("election-fresh")
    a, b = await open_store(url), await open_store(url)
    assert isinstance(a, EtcdStore) and isinstance(b, EtcdStore)
    clock = [0.0]
    try:
        first, second = a.election(3.0), EtcdElection(b, 3.0, now=lambda: clock[0])
        term = await first.campaign({"name": "m1"})
        assert term is not None and await second.campaign({"name": "m2"}) is None
        lease = second._lease
        clock[0] = 0.9  # under ttl/3: the same lease
        assert await second.campaign({"name": "m2"}) is None and second._lease == lease
        clock[0] = 1.1  # over ttl/3: a new one
        assert await second.campaign({"name": "m2"}) is None and second._lease not in (None, lease)
        fresh = second._lease
        await first.resign(term)
        won = await second.campaign({"name": "m2"})
        assert won is not None and won.lease == fresh and await second.renew(won)
    finally:
        await a.close()
        await b.close()
