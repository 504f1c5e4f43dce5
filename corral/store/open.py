"""Open a store from a URL: `sqlite:///path/to/file.db` (the default backend) or `etcd://HOST:PORT[,HOST:PORT...]`."""

from pathlib import Path

from corral.model.errors import InvalidSpec
from corral.store.base import Store
from corral.store.etcd import EtcdSettings, EtcdStore
from corral.store.sqlite import SqliteStore


async def open_store(url: str) -> Store:
    if url.startswith("sqlite://"):
        return await SqliteStore(Path(url.removeprefix("sqlite://"))).open()
    if url.startswith("etcd://"):
        return await EtcdStore(EtcdSettings.parse(url)).open()
    raise InvalidSpec("store", f"unknown store URL {url!r}: expected sqlite:///PATH or etcd://HOST:PORT[,HOST:PORT...]")
