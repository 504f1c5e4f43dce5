"""Compaction seen from the manager: the background compactor, the cache's recovery, the events route's 410."""

import asyncio
import json
import logging
from pathlib import Path

import httpx
import pytest

from corral.manager import keys
from corral.manager.cache import StateCache
from corral.manager.compaction import Compactor
from corral.manager.server import Manager
from corral.manager.settings import ManagerSettings
from corral.manager.writes import dump
from corral.model.errors import Compacted
from corral.store import KeyValue
from corral.store.sqlite import SqliteStore

from test_api import _free_port
from factories import make_node, make_service, make_task
from tests.tls import admin_headers

WEB = make_service("web")


class Ticks:
    """A fake clock for the compactor: each `tick()` ends one of its sleeps."""

    def __init__(self) -> None:
        self.slept: list[float] = []
        self._ticks: asyncio.Queue[None] = asyncio.Queue()
        self._asleep = asyncio.Condition()

    async def sleep(self, seconds: float) -> None:
        async with self._asleep:
            self.slept.append(seconds)
            self._asleep.notify_all()
        await self._ticks.get()

    def tick(self) -> None:
        self._ticks.put_nowait(None)

    async def until_asleep(self, times: int) -> None:
        """Until the compactor has gone to sleep `times` times (its rounds before are done)."""
        async with self._asleep:
            await asyncio.wait_for(self._asleep.wait_for(lambda: len(self.slept) >= times), 5)


async def test_compactor_keeps_the_last_revisions_each_round(tmp_path: Path) -> None:
    store = await SqliteStore(tmp_path / "s.db").open()
    ticks = Ticks()
    runner = asyncio.create_task(Compactor(store, history=10, interval=30.0, sleep=ticks.sleep).run())
    try:
        for i in range(50):
            await store.put("k", {"i": i})
        await ticks.until_asleep(1)
        assert await store.oldest_revision() == 0  # nothing before the first interval has passed
        ticks.tick()
        await ticks.until_asleep(2)
        assert await store.oldest_revision() == 40 and ticks.slept == [30.0, 30.0]
        for i in range(20):
            await store.put("k", {"i": 50 + i})
        ticks.tick()
        await ticks.until_asleep(3)
        assert await store.oldest_revision() == 60
        assert (await store.get("k")).value == {"i": 69}  # type: ignore[union-attr]
    finally:
        runner.cancel()
        await store.close()


async def test_compactor_failure_is_logged_and_retried(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    class FailsOnce(SqliteStore):
        failed = False

        async def compact(self, keep: int) -> int:
            if not self.failed:
                self.failed = True
                raise OSError("disk full")
            return await super().compact(keep)

    store = await FailsOnce(tmp_path / "s.db").open()
    ticks = Ticks()
    runner = asyncio.create_task(Compactor(store, history=1, interval=5.0, sleep=ticks.sleep).run())
    try:
        for i in range(5):
            await store.put("k", {"i": i})
        with caplog.at_level(logging.ERROR, logger="corral.manager.compaction"):
            ticks.tick()
            await ticks.until_asleep(2)
        assert "store compaction failed" in caplog.text and "disk full" in caplog.text
        ticks.tick()
        await ticks.until_asleep(3)
        assert await store.oldest_revision() == 4
    finally:
        runner.cancel()
        await store.close()


async def test_cache_lists_again_when_its_watch_start_was_compacted(tmp_path: Path) -> None:
    """More written between the cache's list and its watch than the store keeps: the watch fails
    with Compacted, the cache lists again and carries on; agents then get their nodes' whole lists."""

    class BusyStore(SqliteStore):
        lists = 0

        async def range(self, prefix: str) -> tuple[list[KeyValue], int]:
            found = await super().range(prefix)
            self.lists += 1
            if self.lists == 1:  # writes land, and are compacted, before the watch starts
                for i in range(5):
                    await self.put(keys.task_key("t1"), dump(make_task(WEB, 1, id="t1", node="n1", created_at=float(i))))
                await self.compact(keep=1)
            return found

    store = await BusyStore(tmp_path / "s.db").open()
    await store.put(keys.node_key("n1"), dump(make_node("n1")))
    await store.put(keys.task_key("t1"), dump(make_task(WEB, 1, id="t1", node="n1")))
    cache = StateCache(store)
    cache.node_changed["n1"] = 1  # an agent has watched n1
    runner = asyncio.create_task(cache.run())
    try:
        await cache.wait_for(7)
        assert cache.loads == 2
        with pytest.raises(Compacted):
            await anext(store.watch("", 1))
        full, tasks, _ = cache.node_delta("n1", 2)  # an agent that saw revision 2 before the re-list
        assert full and [t.id for t in tasks] == ["t1"]
        await cache.wait_for(await store.put(keys.node_key("n2"), dump(make_node("n2"))))  # and the watch goes on
        assert "n2" in cache.nodes
    finally:
        runner.cancel()
        await store.close()


async def test_events_from_a_compacted_revision_are_410_naming_the_oldest(tmp_path: Path) -> None:
    manager = Manager(ManagerSettings(data_dir=tmp_path, listen_port=_free_port(), tls=False, store_history=5, compact_interval=3600))
    ctx = await manager.start()
    try:
        for i in range(20):
            await ctx.store.put(keys.node_key("n1"), dump(make_node("n1", address=f"127.0.0.{i + 2}")))
        oldest = await ctx.store.compact(5)
        async with httpx.AsyncClient(base_url=manager.settings.url, headers=admin_headers(manager.settings.data_dir)) as client:
            declared = (await client.get("/openapi.json")).json()["paths"]["/v1/events"]["get"]["responses"]
            assert declared["410"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorBody"}
            gone = await client.get("/v1/events", params={"since": 1})
            assert gone.status_code == 410
            assert gone.json() == {
                "error": f"revision 1 has been compacted; the oldest available is {oldest}:"
                f" resume with --since {oldest} or without --since",
                "path": None,
            }
            async with client.stream("GET", "/v1/events", params={"since": oldest}) as stream:
                assert stream.status_code == 200
                lines = stream.aiter_lines()
                first = await asyncio.wait_for(anext(lines), 5)
                while not first.strip():
                    first = await asyncio.wait_for(anext(lines), 5)
                assert json.loads(first)["revision"] > oldest  # (the controller marks n1 down: no heartbeat)
    finally:
        await manager.stop()
