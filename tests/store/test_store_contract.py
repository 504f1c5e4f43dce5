"""The contract every store backend keeps (run against each backend)."""

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from corral.model.errors import Conflict
from corral.store import Op, Store, WatchExpired, open_store
from corral.store.sqlite import SqliteStore


@pytest.fixture(params=["sqlite"])
async def store(request: pytest.FixtureRequest, tmp_path: Path):
    backend = await open_store(f"sqlite://{tmp_path}/store.db")
    yield backend
    await backend.close()


async def test_put_get_and_revisions(store: Store) -> None:
    assert await store.revision() == 0
    rev1 = await store.put("services/a", {"x": 1})
    rev2 = await store.put("services/a", {"x": 2})
    assert rev2 == rev1 + 1
    kv = await store.get("services/a")
    assert kv is not None and kv.value == {"x": 2}
    assert kv.create_revision == rev1 and kv.mod_revision == rev2
    assert await store.get("services/missing") is None


async def test_range_by_prefix_sorted(store: Store) -> None:
    await store.put("tasks/b", {"n": 2})
    await store.put("tasks/a", {"n": 1})
    await store.put("tasksx/c", {"n": 3})
    await store.put("nodes/a", {"n": 0})
    items, revision = await store.range("tasks/")
    assert [kv.key for kv in items] == ["tasks/a", "tasks/b"]
    assert revision == 4


async def test_compare_and_swap(store: Store) -> None:
    rev = await store.put("k", {"v": 1}, expect=0)
    with pytest.raises(Conflict):
        await store.put("k", {"v": 2}, expect=0)
    with pytest.raises(Conflict):
        await store.put("k", {"v": 2}, expect=rev + 5)
    await store.put("k", {"v": 2}, expect=rev)
    kv = await store.get("k")
    assert kv is not None and kv.value == {"v": 2}


async def test_txn_is_all_or_nothing(store: Store) -> None:
    await store.put("a", {"v": 1})
    before = await store.revision()
    with pytest.raises(Conflict):
        await store.txn([Op.put("b", {"v": 1}), Op.put("a", {"v": 2}, expect=0)])
    assert await store.get("b") is None
    assert (await store.get("a")).value == {"v": 1}  # type: ignore[union-attr]
    assert await store.revision() == before


async def test_txn_each_skips_only_the_stale_ops(store: Store) -> None:
    first = await store.put("tasks/a", {"n": 1})
    await store.put("tasks/b", {"n": 1})
    events = store.watch("tasks/", await store.revision())
    revision, skipped = await store.txn_each(
        [Op.put("tasks/a", {"n": 2}, expect=first), Op.put("tasks/b", {"n": 2}, expect=first), Op.put("tasks/c", {"n": 2}, expect=0)]
    )
    assert skipped == [1]
    assert [(await store.get(k)).value["n"] for k in ("tasks/a", "tasks/b", "tasks/c")] == [2, 1, 2]  # type: ignore[union-attr]
    assert revision == await store.revision()
    seen = [await anext(events), await anext(events)]
    assert [e.key for e in seen] == ["tasks/a", "tasks/c"] and seen[1].revision == seen[0].revision + 1
    await events.aclose()


async def test_ops_of_one_txn_see_each_other(store: Store) -> None:
    first = await store.put("tasks/a", {"n": 1})
    revision = await store.txn(
        [Op.put("tasks/a", {"n": 2}, expect=first), Op.put("tasks/a", {"n": 3}, expect=first + 1),
         Op.delete("tasks/a", expect=first + 2), Op.put("tasks/a", {"n": 4}, expect=0)]
    )
    kv = await store.get("tasks/a")
    assert kv is not None and kv.value == {"n": 4} and kv.mod_revision == revision == first + 4
    assert kv.create_revision == revision  # created again by the last op
    with pytest.raises(Conflict):
        await store.txn([Op.put("tasks/b", {"n": 1}, expect=0), Op.put("tasks/b", {"n": 2}, expect=0)])
    assert await store.get("tasks/b") is None and await store.revision() == revision


async def test_concurrent_txns_each_keep_their_own_outcome(store: Store) -> None:
    """Transactions sent at once (a backend may commit them together) apply in order; a conflict fails only its own."""
    await store.put("k/x", {"n": 0})
    before = await store.revision()
    outcomes = await asyncio.gather(
        store.txn([Op.put("k/a", {"n": 1}, expect=0), Op.put("k/x", {"n": 1})]),
        store.txn([Op.put("k/b", {"n": 1}), Op.put("k/a", {"n": 9}, expect=0)]),  # k/a exists by now: all or nothing
        store.txn_each([Op.put("k/a", {"n": 2}, expect=before + 1), Op.put("k/c", {"n": 1}, expect=before)]),
        store.txn([Op.delete("k/x"), Op.put("k/x", {"n": 5}, expect=0)]),
        return_exceptions=True,
    )
    assert outcomes[0] == before + 2
    assert isinstance(outcomes[1], Conflict)
    assert outcomes[2] == (before + 3, [1])
    assert outcomes[3] == before + 5
    values = {kv.key: kv.value["n"] for kv in (await store.range("k/"))[0]}
    assert values == {"k/a": 2, "k/x": 5}  # no k/b (its transaction failed), no k/c (its op was stale)
    assert await store.revision() == before + 5


async def test_delete_and_recreate(store: Store) -> None:
    rev = await store.put("k", {"v": 1})
    await store.delete("k", expect=rev)
    assert await store.get("k") is None
    await store.put("k", {"v": 3}, expect=0)
    assert (await store.get("k")).value == {"v": 3}  # type: ignore[union-attr]
    # deleting an absent key is a no-op that does not bump the revision
    rev_now = await store.revision()
    await store.delete("nothing")
    assert await store.revision() == rev_now


async def _collect(store: Store, prefix: str, after: int, count: int) -> list:
    events = []
    async for event in store.watch(prefix, after):
        events.append(event)
        if len(events) == count:
            break
    return events


async def test_watch_replays_history_then_follows_live(store: Store) -> None:
    await store.put("tasks/1", {"s": "new"})
    await store.put("nodes/1", {"s": "ready"})
    await store.put("tasks/1", {"s": "running"})
    watching = asyncio.create_task(_collect(store, "tasks/", 0, 4))
    await asyncio.sleep(0.05)
    await store.put("tasks/2", {"s": "new"})
    await store.delete("tasks/1")
    events = await asyncio.wait_for(watching, 5)
    assert [(e.key, e.value) for e in events] == [
        ("tasks/1", {"s": "new"}),
        ("tasks/1", {"s": "running"}),
        ("tasks/2", {"s": "new"}),
        ("tasks/1", None),
    ]
    assert events[1].prev_value == {"s": "new"}
    assert events[3].prev_value == {"s": "running"}
    assert [e.revision for e in events] == sorted(e.revision for e in events)


async def test_watch_misses_nothing_under_concurrent_writes(store: Store) -> None:
    start = await store.revision()

    async def writer() -> None:
        for i in range(200):
            await store.put(f"w/{i % 7}", {"i": i})

    write = asyncio.create_task(writer())
    events = await asyncio.wait_for(_collect(store, "w/", start, 200), 20)
    await write
    assert [e.value["i"] for e in events] == list(range(200))


async def test_watch_from_compacted_revision_expires(tmp_path: Path) -> None:
    store = await SqliteStore(tmp_path / "s.db").open()
    try:
        for i in range(10):
            await store.put("k", {"i": i})
        await store.compact(keep=2)
        with pytest.raises(WatchExpired):
            await _collect(store, "k", 1, 1)
        assert (await store.get("k")).value == {"i": 9}  # type: ignore[union-attr]
    finally:
        await store.close()


_WRITER = """
import asyncio, sys
from corral.store import open_store
async def main():
    store = await open_store(sys.argv[1])
    i = 0
    while True:
        await store.put(f"acked/{i}", {"i": i})
        print(i, flush=True)
        i += 1
asyncio.run(main())
"""


async def test_acknowledged_write_survives_sigkill(tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path}/store.db"
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, url], stdout=subprocess.PIPE, text=True)
    try:
        acked = -1
        assert proc.stdout is not None
        for line in proc.stdout:
            acked = int(line)
            if acked >= 50:
                break
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    store = await open_store(url)
    try:
        items, _ = await store.range("acked/")
        assert len(items) >= acked + 1
        assert (await store.get(f"acked/{acked}")) is not None
    finally:
        await store.close()
