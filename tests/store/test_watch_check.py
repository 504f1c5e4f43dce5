"""A watch that goes silent is caught within a few checks: the pure rule (`watch_check.QuietWatch`), then the etcd
store with a real etcd-server behind a TCP proxy the test cuts (a partition: connections stay open, nothing
passes), and a watch stream that goes dead while etcd answers (a dropped connection TCP has not noticed)."""

import asyncio
import time
from collections.abc import AsyncGenerator
from dataclasses import replace
from typing import Any

import pytest

from corral.store import WatchStalled, open_store
from corral.store.etcd import EtcdStore
from corral.store.etcd.watch_check import QuietWatch
from tests.etcd_server import EtcdCluster
from tests.tcp_proxy import TcpProxy

CHECK = 0.5  # seconds of silence before a check, and its deadline (the manager's default is 1 s; less fails on a busy machine)


def test_the_rule() -> None:
    quiet = QuietWatch()
    assert quiet.verdict(delivered=10, newest=10) is None  # a quiet store
    assert quiet.verdict(delivered=10, newest=0) is None  # nothing under the prefix
    assert quiet.verdict(delivered=10, newest=12) is None  # maybe in flight: one more period
    quiet.heard()  # it came
    assert quiet.verdict(delivered=12, newest=13) is None
    assert "delivered only up to 12" in (quiet.verdict(delivered=12, newest=13) or "")  # a whole period more: stalled
    assert "cut" in (QuietWatch().verdict(delivered=5, newest=None) or "")  # etcd did not answer the check

    # The prefix is scanned only when etcd's revision is past what was delivered and past the last settled scan.
    quiet = QuietWatch()
    assert not quiet.needs_scan(revision=12, delivered=12)
    assert quiet.needs_scan(revision=14, delivered=12)  # a write somewhere: under the prefix?
    quiet.scanned(revision=14, newest=12, delivered=12)  # no: outside it (the leader key)
    assert not quiet.needs_scan(revision=14, delivered=12)  # settled: not scanned again each quiet second
    assert quiet.needs_scan(revision=15, delivered=12)
    quiet.scanned(revision=15, newest=15, delivered=12)  # yes: undelivered, not settled
    assert quiet.needs_scan(revision=15, delivered=12)


async def _watch_until_stalled(store: EtcdStore, after: int, seen: list[int]) -> WatchStalled:
    with pytest.raises(WatchStalled) as stalled:
        async for event in store.watch("w/", after):
            seen.append(event.revision)
    return stalled.value


async def test_a_watch_cut_off_from_a_healthy_etcd_stalls_within_seconds(etcd: EtcdCluster) -> None:
    proxy = TcpProxy(("127.0.0.1", etcd.members[0].client_port)).start()
    direct = await open_store(etcd.store_url("cut"))
    through = await open_store(etcd.store_url("cut", through=[proxy.address]))
    assert isinstance(through, EtcdStore)
    through.settings = replace(through.settings, watch_check=CHECK)
    try:
        start = await direct.put("w/a", {"i": 0})
        seen: list[int] = []
        watching = asyncio.create_task(_watch_until_stalled(through, start - 1, seen))
        for _ in range(50):
            if seen:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(3 * CHECK)  # quiet, and fine: checks answered, nothing undelivered
        assert not watching.done() and seen == [start]

        proxy.cut()
        cut_at = time.monotonic()
        written = await direct.put("w/b", {"i": 1})  # etcd is healthy: others write on
        stalled = await asyncio.wait_for(watching, 10)
        took = time.monotonic() - cut_at
        assert "cut" in str(stalled), stalled
        assert took < 6 * CHECK, took  # one quiet period and one check's deadline, give or take a busy machine
        assert written not in seen

        proxy.heal()  # the caller lists again: it sees what was written meanwhile
        items, revision = await through.range("w/")
        assert {kv.key for kv in items} == {"w/a", "w/b"} and revision >= written
    finally:
        await through.close()
        await direct.close()
        proxy.stop()


async def test_a_dead_watch_stream_is_caught_while_etcd_answers(etcd: EtcdCluster) -> None:
    store = await open_store(etcd.store_url("dead-stream"))
    assert isinstance(store, EtcdStore)
    store.settings = replace(store.settings, watch_check=CHECK)

    async def silent(method: str, request: Any) -> AsyncGenerator[Any, None]:
        await asyncio.Event().wait()  # a stream whose connection died without a word
        yield {}

    try:
        store.client.stream = silent  # type: ignore[method-assign]
        after = await store.put("w/x", {"i": 0})
        watching = asyncio.create_task(_watch_until_stalled(store, after, []))
        await asyncio.sleep(4 * CHECK)
        assert not watching.done()  # nothing to deliver: a quiet watch is not a dead one
        await store.put("other/z", {"i": 0})  # etcd's revision moves, but not under the watched prefix
        await asyncio.sleep(4 * CHECK)
        assert not watching.done()
        written = await store.put("w/y", {"i": 1})
        stalled = await asyncio.wait_for(watching, 10)
        assert f"holds revision {written}" in str(stalled), stalled
    finally:
        await store.close()

