"""Fan-out of committed changes to in-process watchers.

One backend feeds many watchers. Each watcher has a bounded queue; a watcher
that falls that far behind is dropped (its iterator raises WatchExpired)
rather than stalling the writers or the other watchers.
"""

import asyncio
from collections.abc import Iterable

from corral.store.base import WatchEvent

QUEUE_LIMIT = 100_000


class Watcher:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.queue: asyncio.Queue[WatchEvent | None] = asyncio.Queue()
        self.expired = False

    def offer(self, event: WatchEvent) -> None:
        if self.expired or not event.key.startswith(self.prefix):
            return
        if self.queue.qsize() >= QUEUE_LIMIT:
            self.expired = True
            self.queue.put_nowait(None)  # wakes the reader, which then raises
            return
        self.queue.put_nowait(event)


class WatchHub:
    """Registered watchers; `publish` must be called on the event loop, in revision order."""

    def __init__(self) -> None:
        self._watchers: set[Watcher] = set()

    def subscribe(self, prefix: str) -> Watcher:
        watcher = Watcher(prefix)
        self._watchers.add(watcher)
        return watcher

    def unsubscribe(self, watcher: Watcher) -> None:
        self._watchers.discard(watcher)

    def publish(self, events: Iterable[WatchEvent]) -> None:
        for event in events:
            for watcher in list(self._watchers):
                watcher.offer(event)

    def close(self) -> None:
        for watcher in self._watchers:
            watcher.expired = True
            watcher.queue.put_nowait(None)
        self._watchers.clear()
