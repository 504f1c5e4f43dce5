from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from corral.store import Store
from corral.store.sqlite import SqliteStore


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    backend = await SqliteStore(tmp_path / "store.db").open()
    yield backend
    await backend.close()
