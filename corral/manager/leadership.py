"""Leading the control plane: campaign, keep the term alive, run the leader's work, step down in time.

Every manager runs this loop; the one whose campaign wins runs `lead` (the controller, node health and
compaction) with the term's fenced store, and the others keep campaigning every `retry` seconds. The
leader renews its term at once when it wins (the lease it won with may be up to ttl/3 old), then every
ttl/3, and steps down (its work cancelled) as soon as a renewal says the term is over, or when no
renewal has succeeded for 2/3 of the ttl: it stops acting before the store could give the term to
another manager, and the fence refuses whatever write was already under way.

With one manager on SQLite the election is `SoloElection`: it wins at once and the term never ends.
Time comes from the injected `now` and `sleep` (tests pass fakes).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from corral.store import Store
from corral.store.election import Election, Term

log = logging.getLogger(__name__)

STEP_DOWN_SHARE = 2 / 3  # of the ttl without a confirmed renewal: the leader stops acting


@dataclass
class Leadership:
    election: Election
    announce: dict[str, Any]  # what followers and `corral manager ls` learn of the leader: name, url
    lead: Callable[[Store], Coroutine[Any, Any, None]]  # the leader's work, until cancelled
    retry: float = 0.25  # seconds between two campaigns of a follower
    now: Callable[[], float] = time.monotonic
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    term: Term | None = None
    terms: int = 0  # how many terms this manager has led (tests, `manager ls`)
    changed: asyncio.Event = field(default_factory=asyncio.Event)  # set at each change of `leading`

    @property
    def leading(self) -> bool:
        return self.term is not None

    async def run(self) -> None:
        while True:
            try:
                term = await self.election.campaign(self.announce)
            except Exception as err:  # the store does not answer: nobody can lead through it; try again
                log.warning("leader campaign failed: %s", err)
                term = None
            if term is None:
                await self.sleep(self.retry)
                continue
            await self._serve(term)

    async def _serve(self, term: Term) -> None:
        log.warning("leading the control plane (term from revision %d)", term.revision)
        self.term, self.terms = term, self.terms + 1
        self.changed.set()
        work = asyncio.create_task(self.lead(self.election.fenced(term)), name="leader work")
        try:
            await self._keep(term, work)
        finally:
            self.term = None
            self.changed.set()
            work.cancel()
            await asyncio.gather(work, return_exceptions=True)
            log.warning("no longer leading (term from revision %d)", term.revision)
        if work.done() and not work.cancelled() and work.exception() is not None:
            log.error("the leader's work failed: %s", work.exception())

    async def _keep(self, term: Term, work: asyncio.Task[None]) -> None:
        """Renew until the term is over or cannot be vouched for; return then (the caller stops the work)."""
        ttl = self.election.ttl
        if ttl == float("inf"):
            await asyncio.wait([work])
            return
        renewed = self.now()
        while not work.done():  # the first renewal at once (the lease may be ttl/3 old), then every ttl/3
            sent = self.now()
            try:
                alive = await asyncio.wait_for(self.election.renew(term), ttl / 3)
            except Exception as err:  # no answer: the term may still hold, but only until the deadline below
                log.warning("leader term renewal failed: %s", err)
                alive = None
            if alive is False:
                return
            if alive:
                renewed = sent  # etcd counts the ttl from when it got the renewal: no earlier than it was sent
            if self.now() - renewed >= ttl * STEP_DOWN_SHARE:
                return
            await self.sleep(ttl / 3)

    async def resign(self) -> None:
        """A clean stop: end the term now, so another manager leads without waiting for the ttl."""
        if self.term is not None:
            try:
                await self.election.resign(self.term)
            except Exception as err:
                log.warning("could not resign: %s", err)
