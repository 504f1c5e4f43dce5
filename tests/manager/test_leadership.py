"""The leadership loop with a scripted election and a fake clock: the leader's work runs only while its term is
vouched for; it steps down on a lapsed term, or when renewals have failed for 2/3 of the ttl."""

import asyncio
from typing import Any

from corral.manager.leadership import Leadership
from corral.store import Store
from corral.store.election import Election, Term


class ScriptedElection(Election):
    def __init__(self, renewals: list[bool | None]) -> None:
        self.ttl = 3.0
        self.renewals = renewals  # True: renewed; False: the term is over; None: no answer (raises)
        self.campaigns = 0
        self.wins: list[bool] = []

    async def campaign(self, value: dict[str, Any]) -> Term | None:
        self.campaigns += 1
        won = self.wins.pop(0) if self.wins else False
        return Term(self.campaigns, 1) if won else None

    async def renew(self, term: Term) -> bool:
        answer = self.renewals.pop(0) if self.renewals else True
        if answer is None:
            raise ConnectionError("etcd does not answer")
        return answer

    async def resign(self, term: Term) -> None: ...

    async def leader(self) -> dict[str, Any] | None:
        return None

    def fenced(self, term: Term) -> Store:
        return f"store of term {term.revision}"  # type: ignore[return-value]


class FakeTime:
    def __init__(self) -> None:
        self.at = 0.0
        self.slept: list[float] = []

    def now(self) -> float:
        return self.at

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.at += seconds
        await asyncio.sleep(0)


async def _lead_until_stepped_down(election: ScriptedElection) -> tuple[Leadership, list[str], FakeTime]:
    clock = FakeTime()
    ran: list[str] = []

    async def work(store: Store) -> None:
        ran.append(str(store))
        await asyncio.Event().wait()  # until cancelled

    leadership = Leadership(election, {"name": "m1"}, work, now=clock.now, sleep=clock.sleep)
    election.wins = [False, False, True]
    loop = asyncio.create_task(leadership.run())
    for _ in range(200):
        await asyncio.sleep(0)
        if leadership.terms == 1 and not leadership.leading:
            break
    loop.cancel()
    await asyncio.gather(loop, return_exceptions=True)
    return leadership, ran, clock


async def test_a_lapsed_term_stops_the_leaders_work() -> None:
    election = ScriptedElection([True, True, False])
    leadership, ran, clock = await _lead_until_stepped_down(election)
    assert ran == ["store of term 3"]  # it campaigned twice in vain, then won, working through the fenced store
    # renewed at once when it won (no sleep between the win and the first renewal), then every ttl/3
    assert clock.slept == [0.25, 0.25, 1.0, 1.0] and election.renewals == []
    assert not leadership.leading and leadership.terms == 1


async def test_a_leader_that_cannot_renew_steps_down_before_its_term_could_lapse() -> None:
    leadership, ran, clock = await _lead_until_stepped_down(ScriptedElection([True, None, None, None]))
    # renewed at t=0.5 (at once when it won); no answer since: it steps down at 2/3 of the ttl after that
    renewed_at = 0.5
    stepped = clock.slept[2:]
    assert sum(stepped) + 0.5 - renewed_at >= 2.0 and sum(stepped) + 0.5 - renewed_at < 3.0
    assert not leadership.leading and ran == ["store of term 3"]
