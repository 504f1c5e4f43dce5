"""Who leads the control plane: one manager at a time runs the controller, elected through the store.

A `Term` is one manager's time as leader. Its `revision` is the fence: `Election.fenced(term)` is the
store the leader writes through, and every one of its transactions also requires that the term still
holds (etcd: the leader key still has the create revision it had when this manager won), so a deposed
leader that has not noticed yet cannot write anything (`NotLeader`).

With one manager (SQLite) there is nobody to elect: `SoloElection` wins at once and forever.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from corral.store.base import Store


@dataclass(frozen=True)
class Term:
    revision: int  # the leader key's create revision while this term lasts (0: no election)
    lease: int  # the store lease that keeps the leader key (0: none)


class Election(ABC):
    ttl: float  # seconds a term lasts without a renewal

    @abstractmethod
    async def campaign(self, value: dict[str, Any]) -> Term | None:
        """Try once to lead, announcing `value` (name, URL); the Term when won, None when another leads."""

    @abstractmethod
    async def renew(self, term: Term) -> bool:
        """Keep the term alive for another `ttl`; False when it is over already (the lease lapsed)."""

    @abstractmethod
    async def resign(self, term: Term) -> None:
        """End the term now (a clean stop): another manager can lead at once."""

    @abstractmethod
    async def leader(self) -> dict[str, Any] | None:
        """What the current leader announced, or None when nobody leads."""

    @abstractmethod
    def fenced(self, term: Term) -> "Store":
        """The store whose every write fails with NotLeader once `term` is over."""


class SoloElection(Election):
    """One manager, one store of its own: it always leads."""

    def __init__(self, store: "Store") -> None:
        self.store = store
        self.ttl = float("inf")
        self._value: dict[str, Any] | None = None

    async def campaign(self, value: dict[str, Any]) -> Term | None:
        self._value = value
        return Term(0, 0)

    async def renew(self, term: Term) -> bool:
        return True

    async def resign(self, term: Term) -> None:
        self._value = None

    async def leader(self) -> dict[str, Any] | None:
        return self._value

    def fenced(self, term: Term) -> "Store":
        return self.store
