"""The manager's own stalls declare nobody dead: a loop-lag monitor that extends every lease.

While the manager's event loop does not run (the process was stopped, swapped
out, or one piece of work held the loop), no heartbeat is heard, and without
this every node whose lease ran out meanwhile would be declared down the
moment the loop runs again. `StallWatch.tick` runs every TICK seconds on the
event loop (and once more before every health decision, so no decision comes
between the end of a stall and its discovery); when more than `threshold`
seconds passed since the last tick, the loop was stalled, and every lease is
extended by the time lost, as Nomad extends every heartbeat TTL after a
leader election. A node whose agent died before the stall is still declared
down: later by the length of the stall.
"""

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from corral.manager.cluster import Leases

log = logging.getLogger(__name__)

TICK = 0.1  # seconds between two ticks of the monitor


@dataclass
class StallWatch:
    leases: Leases
    clock: Callable[[], float]
    threshold: float  # a gap between two ticks longer than this is a stall
    last_tick: float | None = None
    stalls: int = 0  # how many were found (for the logs and tests)
    lost: float = 0.0  # the seconds they lasted, added up

    def tick(self) -> float:
        """Note that the loop runs now; returns the stall found (0.0 when none), by which leases were extended."""
        now = self.clock()
        last, self.last_tick = self.last_tick, now
        if last is None:
            return 0.0
        gap = now - last
        if gap <= self.threshold:
            return 0.0
        stall = gap - min(TICK, gap)  # the tick's own sleep was no stall
        self.leases.extend(stall)
        self.stalls += 1
        self.lost += stall
        log.warning("the manager did not run for %.1fs: every node's lease is extended by that much", stall)
        return stall

    async def run(self, every: float = TICK) -> None:
        while True:
            self.tick()
            await asyncio.sleep(every)
