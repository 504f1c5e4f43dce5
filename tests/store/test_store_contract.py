"""The contract every store backend keeps, run against each backend (SQLite and a real etcd: tests/store/conftest.py).

Revisions are compared with those the store handed back, never counted from 0: etcd's start at 1, its
compaction is cluster-wide, and it gives all the ops of one transaction one revision (SQLite one each).
"""

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from corral.model.errors import Compacted, Conflict, InvalidSpec, TooLarge
from corral.store import Op, Store, open_store
from corral.store.etcd import EtcdStore
from corral.store.sqlite import SqliteStore


async def test_put_get_and_revisions(store: Store) -> None:
    base = await store.revision()
    rev1 = await store.put("services/a", {"x": 1})
    rev2 = await store.put("services/a", {"x": 2})
    assert base < rev1 and rev2 == rev1 + 1 == await store.revision()
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
    assert revision == await store.revision()


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
    assert [e.key for e in seen] == ["tasks/a", "tasks/c"] and seen[0].revision <= seen[1].revision == revision
    await events.aclose()


async def test_ops_of_one_txn_see_each_other(store: Store) -> None:
    """Several ops on one key in one transaction (etcd takes a key once per Txn: the backend folds them)."""
    first = await store.put("tasks/a", {"n": 1})
    revision = await store.txn(
        [Op.put("tasks/a", {"n": 2}, expect=first), Op.put("tasks/a", {"n": 3}),
         Op.delete("tasks/a"), Op.put("tasks/a", {"n": 4}, expect=0)]
    )
    kv = await store.get("tasks/a")
    assert kv is not None and kv.value == {"n": 4} and kv.mod_revision == revision > first
    with pytest.raises(Conflict):
        await store.txn([Op.put("tasks/b", {"n": 1}, expect=0), Op.put("tasks/b", {"n": 2}, expect=0)])
    with pytest.raises(Conflict):  # no revision of a value written in the same transaction can be expected
        await store.txn([Op.put("tasks/b", {"n": 1}, expect=0), Op.put("tasks/b", {"n": 2}, expect=revision + 1)])
    assert await store.get("tasks/b") is None and await store.revision() == revision
    revision, skipped = await store.txn_each(
        [Op.put("tasks/b", {"n": 1}, expect=0), Op.put("tasks/b", {"n": 2}, expect=0), Op.put("tasks/b", {"n": 3})]
    )
    assert skipped == [1] and (await store.get("tasks/b")).value == {"n": 3}  # type: ignore[union-attr]


async def test_concurrent_txns_each_keep_their_own_outcome(store: Store) -> None:
    """Transactions sent at once (a backend may commit them together, in any order): each is all or nothing,
    a conflict fails only its own."""
    await store.put("k/x", {"n": 0})
    before = await store.put("k/y", {"n": 0})
    outcomes = await asyncio.gather(
        store.txn([Op.put("k/a", {"n": 1}, expect=0), Op.put("k/x", {"n": 1})]),
        store.txn([Op.put("k/b", {"n": 1}), Op.put("k/a", {"n": 9}, expect=0)]),  # one of these two creates k/a
        store.txn_each([Op.put("k/c", {"n": 1}, expect=0), Op.put("k/y", {"n": 1}, expect=before - 1)]),
        store.txn([Op.delete("k/y"), Op.put("k/y", {"n": 5}, expect=0)]),
        return_exceptions=True,
    )
    assert [isinstance(outcome, Conflict) for outcome in outcomes[:2]].count(True) == 1
    assert isinstance(outcomes[2], tuple) and outcomes[2][1] == [1]
    assert isinstance(outcomes[3], int)
    values = {kv.key: kv.value["n"] for kv in (await store.range("k/"))[0]}
    if isinstance(outcomes[1], Conflict):
        assert values == {"k/a": 1, "k/x": 1, "k/c": 1, "k/y": 5}  # nothing of the second
    else:
        assert values == {"k/a": 9, "k/b": 1, "k/x": 0, "k/c": 1, "k/y": 5}  # nothing of the first
    revisions = [outcome for outcome in outcomes if isinstance(outcome, int)] + [outcomes[2][0]]
    assert min(revisions) > before and max(revisions) == await store.revision()


async def test_a_write_that_cannot_be_stored_fails_alone(store: Store) -> None:
    """Issue 12 #4: an integer beyond 64 bits (or a key SQLite refuses) sent among valid writes fails only
    its own transaction, even when a backend commits the queued ones together."""
    before = await store.revision()
    writes = [store.put(f"k/{i}", {"n": i}) for i in range(45)]
    writes.insert(10, store.put("k/big", {"n": 10**30}))
    writes.insert(30, store.txn([Op.put("k/ok", {"n": 1}), Op.put("k/\udc80", {"n": 1})]))  # a lone surrogate
    outcomes = await asyncio.gather(*writes, return_exceptions=True)
    failed = [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
    assert len(failed) == 2 and isinstance(outcomes[10], Exception) and isinstance(outcomes[30], Exception)
    assert "k/big" in str(outcomes[10])
    revisions = [outcome for outcome in outcomes if isinstance(outcome, int)]
    assert sorted(revisions) == list(range(before + 1, before + 46))  # each valid write landed, none twice
    values = {kv.key: kv.value["n"] for kv in (await store.range("k/"))[0]}
    assert values == {f"k/{i}": i for i in range(45)}  # nothing of the two refused transactions


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
    base = await store.revision()
    await store.put("tasks/1", {"s": "new"})
    await store.put("nodes/1", {"s": "ready"})
    await store.put("tasks/1", {"s": "running"})
    watching = asyncio.create_task(_collect(store, "tasks/", base, 4))
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


async def test_watch_that_starts_behind_catches_up_without_gaps_or_duplicates(store: Store) -> None:
    """A watch from a revision well behind, while writes go on: history, then live, each revision once."""
    written = [await store.put(f"b/{i % 5}", {"i": i}) for i in range(150)]
    watching = asyncio.create_task(_collect(store, "b/", written[49], 200))

    async def writer() -> None:
        for i in range(150, 250):
            written.append(await store.put(f"b/{i % 5}", {"i": i}))

    await asyncio.gather(writer(), asyncio.sleep(0))
    events = await asyncio.wait_for(watching, 20)
    assert [e.value["i"] for e in events] == list(range(50, 250))
    assert [e.revision for e in events] == written[50:]
    assert all(e.prev_value == {"i": e.value["i"] - 5} for e in events)


async def test_conflicting_transactions_one_wins(store: Store) -> None:
    """Many writers compare-and-swap the same key from the same revision: exactly one lands."""
    start = await store.put("c/k", {"n": 0})
    outcomes = await asyncio.gather(
        *(store.txn([Op.put("c/k", {"n": i}, expect=start), Op.put(f"c/by/{i}", {"n": i})]) for i in range(1, 11)),
        return_exceptions=True,
    )
    won = [i for i, outcome in enumerate(outcomes, 1) if isinstance(outcome, int)]
    assert len(won) == 1 and all(isinstance(o, Conflict) for o in outcomes if not isinstance(o, int))
    assert "c/k changed: expected revision" in str(next(o for o in outcomes if isinstance(o, Conflict)))
    assert (await store.get("c/k")).value == {"n": won[0]}  # type: ignore[union-attr]
    assert [kv.key for kv in (await store.range("c/by/"))[0]] == [f"c/by/{won[0]}"]


async def test_a_large_value(store: Store) -> None:
    """A value of 1 MB is stored, read, listed and watched whole; one over etcd's request limit is refused
    (TooLarge, nothing changed), never cut."""
    base = await store.revision()
    big = {"blob": "v" * 1_000_000, "n": 1}
    revision = await store.put("l/big", big)
    assert (await store.get("l/big")).value == big  # type: ignore[union-attr]
    assert (await store.range("l/"))[0][0].value == big
    assert (await _collect(store, "l/", base, 1))[0].value == big
    if isinstance(store, EtcdStore):
        over = store.settings.max_bytes + 100_000  # the limit the etcd was started with (tests/etcd_server.py: its URL)
        with pytest.raises(TooLarge, match="max-request-bytes"):
            await store.put("l/big", {"blob": "w" * over})
        with pytest.raises(TooLarge):
            await store.txn_each([Op.put("l/small", {"n": 1}), Op.put("l/huge", {"blob": "w" * over})])
        assert await store.revision() == revision and await store.get("l/small") is None
    assert (await store.get("l/big")).value == big  # type: ignore[union-attr]


async def test_a_transaction_with_many_operations(store: Store) -> None:
    """1,000 ops: txn_each lands them all (etcd: in Txns of at most --max-txn-ops, each whole) and skips exactly the
    stale ones; an all-or-nothing txn over etcd's limit is refused naming it, nothing changed."""
    first = await store.txn_each([Op.put(f"m/{i:04}", {"i": i}) for i in range(1000)])
    assert first[1] == []
    items, _ = await store.range("m/")
    assert len(items) == 1000
    revisions = {kv.key: kv.mod_revision for kv in items}
    ops = [Op.put(f"m/{i:04}", {"i": -i}, expect=revisions[f"m/{i:04}"] if i % 3 else 1) for i in range(1000)]
    revision, skipped = await store.txn_each(ops)
    assert skipped == [i for i in range(1000) if i % 3 == 0 and revisions[f"m/{i:04}"] != 1]
    values = {kv.key: kv.value["i"] for kv in (await store.range("m/"))[0]}
    assert values == {f"m/{i:04}": (i if i in skipped else -i) for i in range(1000)}
    assert revision == await store.revision()
    many = [Op.put(f"m/{i:04}", {"i": 0}) for i in range(store.settings.max_ops + 1 if isinstance(store, EtcdStore) else 1000)]
    if isinstance(store, EtcdStore):  # over the --max-txn-ops the etcd was started with (its URL says which)
        with pytest.raises(TooLarge, match="max-txn-ops"):
            await store.txn(many)
        assert await store.revision() == revision
    else:
        assert await store.txn(many) > revision


async def test_watch_from_compacted_revision_fails_naming_the_oldest(store: Store) -> None:
    base = await store.revision()
    for i in range(10):
        await store.put("k", {"i": i})
        await store.put(f"other/{i}", {"i": i})
    await store.put("gone", {"i": 0})
    deleted_at = await store.delete("gone")
    assert await store.oldest_revision() <= base
    oldest = await store.compact(keep=4)
    assert oldest == deleted_at - 4 == await store.oldest_revision()
    with pytest.raises(Compacted) as err:
        await _collect(store, "", base, 1)
    assert (err.value.revision, err.value.oldest) == (base, oldest)
    assert "compacted" in str(err.value) and f"oldest available is {oldest}" in str(err.value)
    # from the oldest revision on, history is whole, previous values included
    replay = await _collect(store, "", oldest, 4)
    assert [e.revision for e in replay] == list(range(oldest + 1, deleted_at + 1))
    assert replay[0].key == "k" and replay[0].prev_value == {"i": 8}  # its previous row is older than `oldest`
    assert replay[-1].key == "gone" and replay[-1].deleted and replay[-1].prev_value == {"i": 0}
    assert (await store.get("k")).value == {"i": 9}  # type: ignore[union-attr]


async def test_compaction_keeps_every_current_value(store: Store) -> None:
    """Updates, deletes and re-creations, compacted to the last revision: the live state is unchanged,
    keys compacted away can be created again (CAS 0), and compare-and-swap still holds."""
    await store.txn([Op.put(f"t/{i}", {"i": i}) for i in range(50)])
    for round_ in range(1, 5):
        await store.txn([Op.put(f"t/{i}", {"r": round_, "i": i}) for i in range(40, 50)])
        await store.txn([Op.delete(f"t/{i}") for i in range(round_ * 7, round_ * 7 + 5)])
    await store.put("t/8", {"again": True}, expect=0)  # deleted in round 1, created again
    before, revision = await store.range("")
    assert await store.compact(keep=0) == revision
    after, _ = await store.range("")
    assert [(kv.key, kv.value, kv.create_revision, kv.mod_revision) for kv in after] == [
        (kv.key, kv.value, kv.create_revision, kv.mod_revision) for kv in before
    ]
    assert await store.compact(keep=0) == revision  # nothing more to do
    await store.put("t/28", {"new": 1}, expect=0)  # deleted in round 4, its tombstone compacted
    with pytest.raises(Conflict):
        await store.put("t/8", {"x": 1}, expect=0)
    kv = await store.get("t/8")
    assert kv is not None
    await store.put("t/8", {"x": 2}, expect=kv.mod_revision)
    events = await _collect(store, "t/", revision, 2)
    assert [(e.key, e.prev_value) for e in events] == [("t/28", None), ("t/8", {"again": True})]


async def test_write_during_compaction_is_not_lost(store: Store) -> None:
    for start in range(0, 30_000, 1000):
        await store.txn_each([Op.put(f"k/{i % 100}", {"i": i}) for i in range(start, start + 1000)])
    watching = store.watch("k/", await store.revision())
    compaction = asyncio.create_task(store.compact(keep=10))
    written = []
    while not compaction.done():  # the compaction goes in steps: writes land between them
        kv = await store.get("k/7")
        assert kv is not None
        written.append(await store.put("k/7", {"i": len(written)}, expect=kv.mod_revision))
        await asyncio.sleep(0)
    await compaction
    assert len(written) > 1  # some of them went while it ran
    assert (await store.get("k/7")).value == {"i": len(written) - 1}  # type: ignore[union-attr]
    seen = [await anext(watching) for _ in written]
    assert [e.revision for e in seen] == written
    await watching.aclose()


async def test_compaction_gives_the_space_back(tmp_path: Path) -> None:
    store = await SqliteStore(tmp_path / "s.db").open()
    try:
        blob = "x" * 2000
        for start in range(0, 20_000, 500):
            await store.txn([Op.put(f"k/{i % 50}", {"i": i, "blob": blob}) for i in range(start, start + 500)])
        pages, page_size = (store.db.execute(f"PRAGMA {name}").fetchone()[0] for name in ("page_count", "page_size"))
        assert pages * page_size > 20_000 * 2000
        await store.compact(keep=100)
        assert await store.oldest_revision() == 20_000 - 100
        size = (tmp_path / "s.db").stat().st_size
        assert size < pages * page_size / 20, (pages * page_size, size)
        assert (tmp_path / "s.db-wal").stat().st_size == 0  # checkpointed
        assert len((await store.range("k/"))[0]) == 50
    finally:
        await store.close()


async def test_tombstones_last_as_long_as_history_needs_them(tmp_path: Path) -> None:
    store = await SqliteStore(tmp_path / "s.db").open()
    try:
        await store.put("a", {"v": 1})
        await store.put("b", {"v": 1})
        await store.put("b", {"v": 2})
        deleted_at = await store.delete("b")
        await store.put("a", {"v": 2})
        rows = lambda: store.db.execute("SELECT revision, value IS NULL FROM log ORDER BY revision").fetchall()  # noqa: E731
        await store.compact(keep=2)  # to deleted_at - 1: a watch from there still sees the deletion
        assert [e.prev_value for e in await _collect(store, "b", deleted_at - 1, 1)] == [{"v": 2}]
        assert (deleted_at, 1) in rows()
        await store.compact(keep=1)  # to deleted_at: no watch needs the tombstone any more
        assert rows() == [(1, 0), (deleted_at + 1, 0)]  # a's first row is the previous value of its last
        await store.compact(keep=0)
        assert rows() == [(deleted_at + 1, 0)]  # only the current value
    finally:
        await store.close()


async def test_old_file_switches_to_incremental_vacuum(tmp_path: Path) -> None:
    """A store file made before compaction existed (auto_vacuum off) is converted once, data kept."""
    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    db.executescript(
        "CREATE TABLE log (revision INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL, value TEXT,"
        " create_revision INTEGER NOT NULL, prev_revision INTEGER NOT NULL);"
        "INSERT INTO log (key, value, create_revision, prev_revision) VALUES ('a', '{\"v\": 1}', 1, 0);"
        "CREATE TABLE current (key TEXT PRIMARY KEY, revision INTEGER NOT NULL, create_revision INTEGER NOT NULL,"
        " value TEXT NOT NULL);"
        "INSERT INTO current VALUES ('a', 1, 1, '{\"v\": 1}');"
    )
    db.close()
    store = await SqliteStore(path).open()
    try:
        assert (await store.get("a")).value == {"v": 1}  # type: ignore[union-attr]
        assert store.db.execute("PRAGMA auto_vacuum").fetchone()[0] == 2
        assert await store.put("a", {"v": 2}, expect=1) == 2
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


async def test_acknowledged_write_survives_sigkill(store_url: str) -> None:
    url = store_url
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
