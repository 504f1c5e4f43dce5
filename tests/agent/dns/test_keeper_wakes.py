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
