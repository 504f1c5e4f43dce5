"""A full disk: every write refused with StorageFull (507), nothing half-written, writes resume once there is room.

SQLite's page limit (`PRAGMA max_page_count`) gives the same SQLITE_FULL as a full disk
(tests/chaos has the real thing, a full tmpfs).
"""

from pathlib import Path

import pytest

from corral.model.errors import StorageFull
from corral.store import Op
from corral.store.sqlite import SqliteStore


async def test_a_full_disk_refuses_writes_cleanly_and_they_resume(tmp_path: Path) -> None:
    store = await SqliteStore(tmp_path / "store.db").open()
    try:
        first = await store.put("services/a", {"x": 1})
        pages = store.db.execute("PRAGMA page_count").fetchone()[0]
        store.db.execute(f"PRAGMA max_page_count = {pages + 1}")
        big = {"blob": "y" * 200_000}
        with pytest.raises(StorageFull, match="disk is full") as refused:
            await store.txn([Op.put("services/b", big), Op.put("services/a", {"x": 2})])
        assert refused.value.status == 507
        with pytest.raises(StorageFull):
            await store.txn_each([Op.put("services/c", big)])
        # nothing of the refused writes is there, the revision did not move, reads work
        assert await store.revision() == first
        assert (await store.get("services/a")).value == {"x": 1}  # type: ignore[union-attr]
        assert await store.get("services/b") is None

        store.db.execute("PRAGMA max_page_count = 1073741823")  # room again
        second = await store.put("services/b", big)
        assert second == first + 1 and (await store.get("services/b")).value == big  # type: ignore[union-attr]
    finally:
        await store.close()
