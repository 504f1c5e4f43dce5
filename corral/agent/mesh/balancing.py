"""Which backend a new connection tries first, second, ...: round robin or least connections.

A `Pool` holds one listener's backends and how many connections each has
open. It is pure bookkeeping (no I/O), so the proxies ask it for an order of
candidates and tell it when a connection opens and closes.
"""

from collections import Counter
from collections.abc import Sequence
from typing import Literal

from corral.agent.mesh.table import Backend

Strategy = Literal["round-robin", "least-connections"]
STRATEGIES: tuple[Strategy, ...] = ("round-robin", "least-connections")


class Pool:
    def __init__(self, backends: Sequence[Backend], strategy: Strategy = "round-robin") -> None:
        if strategy not in STRATEGIES:
            raise ValueError(f"unknown balancing strategy {strategy!r}; use one of {', '.join(STRATEGIES)}")
        self.strategy = strategy
        self.backends: tuple[Backend, ...] = tuple(backends)
        self.active: Counter[Backend] = Counter()
        self._next = 0

    def update(self, backends: Sequence[Backend]) -> None:
        """Serve `backends` from now on; counts of open connections are kept."""
        self.backends = tuple(backends)

    def order(self) -> list[Backend]:
        """Every backend, in the order a new connection should try them."""
        count = len(self.backends)
        if count == 0:
            return []
        start = self._next % count
        self._next = start + 1
        rotated = list(self.backends[start:] + self.backends[:start])
        if self.strategy == "least-connections":
            rotated.sort(key=lambda backend: self.active[backend])  # stable: ties keep round-robin order
        return rotated

    def opened(self, backend: Backend) -> None:
        self.active[backend] += 1

    def closed(self, backend: Backend) -> None:
        self.active[backend] -= 1
        if self.active[backend] <= 0:
            del self.active[backend]
