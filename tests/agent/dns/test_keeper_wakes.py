"""When the network keeper brings the host in line: at each engine event of the agent's containers and on a slow
resync while the engine tells of them, on its fast timer while it cannot (an idle agent's keeper listed the engine's
networks every 2 s). Its sync is counted here; fake clock."""

import asyncio
from typing import Any

from corral.agent.clock import FakeClock
from corral.agent.networks.keeper import NetworkKeeper


class Counting(NetworkKeeper):
    syncs = 0

    async def sync(self) -> None:
        self.syncs += 1


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_the_keeper_follows_engine_events_and_falls_back_to_its_timer() -> None:
    clock, following = FakeClock(), {"on": True}
    stand_in: Any = None  # the engine's networks, the DNS responder and the isolation rules: sync is counted instead
    keeper = Counting(stand_in, stand_in, stand_in, clock, interval=2.0, resync=30.0, following=lambda: following["on"])
    loop = asyncio.create_task(keeper.run())
    try:
        await clock.sleeping(1)
        for _ in range(10):  # 20 s idle with the engine telling: no sync
            clock.advance(2.0)
            await _settle()
        assert keeper.syncs == 0
        keeper.wake()  # a container died: its network may be unused now
        keeper.wake()  # two events before the keeper runs: one sync
        await _settle()
        assert keeper.syncs == 1
        clock.advance(29.0)
        await _settle()
        assert keeper.syncs == 1
        clock.advance(1.0)  # the resync: heals what no event told (a network removed by hand)
        await _settle()
        assert keeper.syncs == 2
        following["on"] = False  # the event stream is down: the fast timer again (from the next wait)
        clock.advance(30.0)
        await _settle()
        assert keeper.syncs == 3
        clock.advance(2.0)
        await _settle()
        assert keeper.syncs == 4
    finally:
        loop.cancel()
        await asyncio.gather(loop, return_exceptions=True)


class _Responder:
    records: list[Any] = []


def _record(service: str, vip: str) -> dict[str, Any]:
    return {"service": service, "stack": "shop", "vip": vip, "networks": [{"name": "shop_default", "aliases": [service]}]}


class Slow(NetworkKeeper):
    """Its sync waits until the test lets it finish."""

    syncs = 0
    gate: asyncio.Event

    async def sync(self) -> None:
        self.syncs += 1
        await self.gate.wait()
        self.gate.clear()


async def test_new_records_wake_the_keeper_and_do_not_wait_for_its_sync() -> None:
    """The mesh follower hands the records over and goes back for the next routes at once (it waited for the whole
    sync, up to 1 s on a busy host, while a replica's `running` waited behind it); records that come during a sync
    make one sync after it."""
    clock = FakeClock()
    stand_in: Any = None
    keeper = Slow(stand_in, _Responder(), stand_in, clock, interval=2.0, resync=30.0, following=lambda: True)
    keeper.gate = asyncio.Event()
    loop = asyncio.create_task(keeper.run())
    try:
        await clock.sleeping(1)
        await asyncio.wait_for(keeper.update([_record("web", "10.217.0.2")], "", "10.217.0.0/24"), 1.0)
        assert keeper.responder.records  # answered from at once
        await _settle()
        assert keeper.syncs == 1  # under way, and update did not wait for it
        for vip in ("10.217.0.3", "10.217.0.4"):  # two changes while it runs
            await asyncio.wait_for(keeper.update([_record("web", vip)], "", "10.217.0.0/24"), 1.0)
        assert keeper._allowed == {"shop_default": {"10.217.0.4"}}  # the newest records
        keeper.gate.set()
        await _settle()
        assert keeper.syncs == 2  # one sync for both
        keeper.gate.set()
        await _settle()
        assert keeper.syncs == 2
    finally:
        loop.cancel()
        await asyncio.gather(loop, return_exceptions=True)
