"""The measured store: every write is timed and told with its result; reads and watches pass through untouched."""

from pathlib import Path

import pytest

from corral.model.errors import Conflict
from corral.store.base import Op
from corral.store.measured import MeasuredStore
from corral.store.sqlite import SqliteStore


async def test_writes_are_timed_with_their_result(tmp_path: Path) -> None:
    seen: list[tuple[float, str]] = []
    store = MeasuredStore(await SqliteStore(tmp_path / "s.db").open(), lambda seconds, result: seen.append((seconds, result)))
    try:
        first = await store.put("/a", {"v": 1})
        with pytest.raises(Conflict):
            await store.put("/a", {"v": 2}, expect=0)  # it exists: a lost race
        _, skipped = await store.txn_each([Op.put("/b", {"v": 1}), Op.put("/a", {"v": 3}, expect=first + 99)])
        assert skipped == [1]
        assert [result for _, result in seen] == ["ok", "conflict", "ok"]
        assert all(seconds >= 0 for seconds, _ in seen)
        found = await store.get("/a")
        assert found is not None and found.value == {"v": 1}
        assert [kv.key for kv in (await store.range("/"))[0]] == ["/a", "/b"]
        assert len(seen) == 3  # reads are not writes
    finally:
        await store.close()
