"""Open a store from a URL: `sqlite:///path/to/file.db` (the default backend)."""

from pathlib import Path

from corral.model.errors import InvalidSpec
from corral.store.base import Store
from corral.store.sqlite import SqliteStore


async def open_store(url: str) -> Store:
    if url.startswith("sqlite://"):
        return await SqliteStore(Path(url.removeprefix("sqlite://"))).open()
    raise InvalidSpec("store", f"unknown store URL {url!r}: expected sqlite:///PATH")
