"""The `store` fixture: every contract test runs against each backend (SQLite in a temp file; etcd, one real
etcd-server per test session on loopback ports, each test under its own key prefix)."""

import itertools
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from corral.store import Store, open_store
from tests.etcd_server import EtcdCluster, start_etcd

_prefixes = itertools.count()


@pytest.fixture(scope="session")
def etcd() -> Iterator[EtcdCluster]:
    cluster = start_etcd()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(params=["sqlite", "etcd"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite://{tmp_path}/store.db"
    cluster: EtcdCluster = request.getfixturevalue("etcd")
    return cluster.store_url(f"test{next(_prefixes)}")


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[Store]:
    backend = await open_store(store_url)
    yield backend
    await backend.close()
