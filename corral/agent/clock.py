"""Time for the agent, injected: the system's clock in the daemon, a fake one in tests.

Everything in the agent that waits or decides by time (a health check's
schedule and probe timeout, registration retries and reconnect back-off,
the drain before a stop, the reconcile poll, the batching windows of the
manager link, the mesh's idle UDP sessions) asks a `Clock` rather than
`time` and `asyncio.sleep`. A test gives it a `FakeClock` and moves time
itself, so the order of events is the test's, not the machine's load.
"""

import asyncio
import heapq
import itertools
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

T = TypeVar("T")


class Clock(Protocol):
    def now(self) -> float:
        """Monotonic seconds."""
        ...

    async def sleep(self, seconds: float) -> None: ...

    async def wait_for(self, awaitable: Awaitable[T], timeout: float) -> T:
        """The awaitable's result, or TimeoutError (and the awaitable cancelled) after `timeout` seconds."""
        ...


class SystemClock:
    def now(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    async def wait_for(self, awaitable: Awaitable[T], timeout: float) -> T:
        return await asyncio.wait_for(awaitable, timeout)


SYSTEM_CLOCK = SystemClock()


async def wait_event(clock: Clock, event: asyncio.Event, timeout: float) -> bool:
    """Wait until `event` is set or `timeout` passes; whether it was set."""
    try:
        await clock.wait_for(event.wait(), timeout)
    except TimeoutError:
        return False
    return True


@dataclass
class Backoff:
    """Delays between retries: `first`, doubling up to `cap`; `reset()` after a success."""

    clock: Clock
    first: float = 0.5
    cap: float = 5.0
    _next: float = field(init=False)

    def __post_init__(self) -> None:
        self._next = self.first

    def next(self) -> float:
        """The delay to wait now; the one after is longer."""
        delay, self._next = self._next, min(self.cap, self._next * 2)
        return delay

    async def wait(self) -> None:
        await self.clock.sleep(self.next())

    def reset(self) -> None:
        self._next = self.first


class FakeClock:
    """A clock that moves only when told (`advance`), for tests.

    Sleepers wake in deadline order when time reaches them. `sleeping(n)`
    waits (on the real event loop, not on time) until `n` coroutines sleep on
    this clock: a test moves time only once the code under test is parked.
    """

    def __init__(self, start: float = 1000.0) -> None:
        self.time = start
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self._parked = asyncio.Event()

    def now(self) -> float:
        return self.time

    @property
    def sleepers(self) -> int:
        return sum(1 for _, _, future in self._sleepers if not future.done())

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:  # no time to wait: only a turn of the loop, as asyncio.sleep(0)
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.time + seconds, next(self._order), future))
        self._parked.set()
        try:
            await future
        finally:
            if not future.done():
                future.cancel()
            self._sleepers = [entry for entry in self._sleepers if not entry[2].done()]
            heapq.heapify(self._sleepers)

    async def wait_for(self, awaitable: Awaitable[T], timeout: float) -> T:
        work = asyncio.ensure_future(awaitable)
        timer = asyncio.ensure_future(self.sleep(timeout))
        try:
            done, _ = await asyncio.wait({work, timer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            timer.cancel()
            work.cancel()  # (nothing, when it is done)
        if work in done:
            return work.result()
        raise TimeoutError(f"timed out after {timeout:g}s (fake clock)")

    def advance(self, seconds: float) -> None:
        """Move time forward; wake every sleeper whose deadline is reached."""
        self.time += seconds
        while self._sleepers and self._sleepers[0][0] <= self.time:
            _, _, future = heapq.heappop(self._sleepers)
            if not future.done():
                future.set_result(None)

    async def sleeping(self, count: int = 1, within: float = 5.0) -> None:
        """Return once at least `count` coroutines sleep on this clock (AssertionError after `within` real seconds)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while self.sleepers < count:
            self._parked.clear()
            left = deadline - loop.time()
            if left <= 0:
                raise AssertionError(f"{self.sleepers} coroutines sleep on the fake clock, not {count}")
            try:
                await asyncio.wait_for(self._parked.wait(), left)
            except TimeoutError:
                pass
