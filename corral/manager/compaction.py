"""Keeping the store's history bounded: compact it in the background.

Every write adds a revision to the store's log (every status report of every
task), so without compaction the file grows for as long as the manager runs.
Every `interval` seconds the compactor forgets the history older than the
last `history` revisions; the store does it in short steps and gives the
space back. A watch or `corral events --since` from before that fails with
`Compacted` (HTTP 410), which names the oldest revision still there.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from corral.store import Store

log = logging.getLogger(__name__)


@dataclass
class Compactor:
    store: Store
    history: int  # revisions kept (at least)
    interval: float  # seconds between two compactions
    sleep: Callable[[float], Awaitable[None]] = field(default=asyncio.sleep)  # the clock: tests pass a fake

    async def run(self) -> None:
        """Compact every `interval`, forever (until cancelled); a failure is logged and retried next time."""
        while True:
            await self.sleep(self.interval)
            try:
                await self.once()
            except Exception:  # the disk, a closed store: the manager runs on, the next round retries
                log.exception("store compaction failed")

    oldest: int = 0  # where the history kept started after the last round

    async def once(self) -> int:
        """Compact now; returns the oldest revision kept."""
        oldest = await self.store.compact(self.history)
        if oldest != self.oldest:
            log.info("store compacted: history kept after revision %d", oldest)
            self.oldest = oldest
        return oldest
