"""A keyed work queue, as Kubernetes controllers have (client-go's workqueue).

Event handlers only turn changes into keys (`add`); the controller takes the
keys that are ready (`take`), reconciles each on its own, and says how it
went: `done` after every key, then `forget` on success or `retry` on failure.

- A key is queued at most once: adding a queued key does nothing.
- A key being processed that is added again is queued again when it is
  `done`, so a change that came in meanwhile is never missed.
- `retry` brings a key back after a per-key exponential back-off with
  jitter (`Backoff`), counted until `forget`: one failing key waits longer
  and longer while the others go on.

Time comes from an injected clock, randomness from an injected `random.Random`:
tests drive both. Not thread-safe: only the event loop touches it.
"""

import heapq
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    """Retry number n (from 1) waits base * 2**(n-1), at most `cap`, times a jitter in [1 - jitter, 1 + jitter]."""

    base: float = 0.5
    cap: float = 60.0
    jitter: float = 0.2

    def delay(self, failures: int, rng: random.Random) -> float:
        plain = min(self.cap, self.base * 2 ** max(0, failures - 1))
        return float(plain * rng.uniform(1 - self.jitter, 1 + self.jitter))


class WorkQueue:
    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        backoff: Backoff = Backoff(),
        rng: random.Random | None = None,
    ) -> None:
        self.clock = clock
        self.backoff = backoff
        self.rng = rng or random.Random()
        self._queue: dict[str, None] = {}  # ready keys, in the order they came (a dict: no duplicates)
        self._processing: set[str] = set()
        self._again: set[str] = set()  # added while processing: queued when done
        self._waiting: list[tuple[float, str]] = []  # (due, key) heap of keys in back-off
        self._due: dict[str, float] = {}  # key -> when its back-off ends (the heap may hold stale entries)
        self._failures: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._queue)

    def __contains__(self, key: str) -> bool:
        return key in self._queue or key in self._again

    def add(self, key: str) -> None:
        """Queue `key` now (a change to it came in): ends a back-off it was waiting out."""
        self._due.pop(key, None)
        if key in self._processing:
            self._again.add(key)
        else:
            self._queue[key] = None

    def add_all(self, keys: Iterable[str]) -> None:
        """Queue the keys not waiting out a back-off (a periodic resync must not hurry a failing key)."""
        for key in keys:
            if key not in self._due:
                self.add(key)

    def take(self) -> list[str]:
        """Every ready key (back-offs that ended included); they are processing until `done`."""
        self._wake_due()
        keys = list(self._queue)
        self._queue.clear()
        self._processing.update(keys)
        return keys

    def done(self, key: str) -> None:
        self._processing.discard(key)
        if key in self._again:
            self._again.discard(key)
            self._queue[key] = None

    def forget(self, key: str) -> None:
        """The key was reconciled: its next failure starts the back-off afresh."""
        self._failures.pop(key, None)

    def retry(self, key: str) -> float:
        """Queue `key` again after its back-off; returns the delay (0 when a change to it came in
        meanwhile: that is reconciled at once, as a change always is)."""
        failures = self._failures.get(key, 0) + 1
        self._failures[key] = failures
        if key in self:
            return 0.0
        delay = self.backoff.delay(failures, self.rng)
        due = self.clock() + delay
        self._due[key] = due
        heapq.heappush(self._waiting, (due, key))
        return delay

    def failures(self, key: str) -> int:
        return self._failures.get(key, 0)

    def next_due(self) -> float | None:
        """When the first back-off ends (clock time), None if no key waits."""
        while self._waiting and self._due.get(self._waiting[0][1]) != self._waiting[0][0]:
            heapq.heappop(self._waiting)  # stale: the key was added, or retried again, meanwhile
        return self._waiting[0][0] if self._waiting else None

    def _wake_due(self) -> None:
        now = self.clock()
        while (due := self.next_due()) is not None and due <= now:
            _, key = heapq.heappop(self._waiting)
            del self._due[key]
            self.add(key)
