"""Health checks run by the agent: when a task's container counts as healthy.

`HealthState` is the pure rule, as Docker defines it: a container is
`starting` until a probe passes; failures during `start_period` do not
count (and probes come every `start_interval` then); after it, `retries`
failures in a row make it `unhealthy`. `HealthMonitor` runs one task's
probe on that schedule and says when the status changes.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import Enum

from corral.agent.clock import SYSTEM_CLOCK, Clock
from corral.model.service import HealthCheck

log = logging.getLogger(__name__)


class HealthStatus(str, Enum):
    starting = "starting"
    healthy = "healthy"
    unhealthy = "unhealthy"


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    output: str = ""


@dataclass(frozen=True)
class HealthView:
    """What a monitor says about a task's container, for the agent's reconcile plan."""

    status: HealthStatus
    reason: str = ""


Probe = Callable[[], Awaitable[ProbeResult]]


@dataclass
class HealthState:
    check: HealthCheck
    started_at: float
    status: HealthStatus = HealthStatus.starting
    failures: int = 0
    last_output: str = ""
    ever_healthy: bool = False

    def record(self, result: ProbeResult, now: float) -> bool:
        """Take one probe's result; True when the status changed."""
        before = self.status
        self.last_output = result.output
        if result.ok:
            self.failures = 0
            self.ever_healthy = True
            self.status = HealthStatus.healthy
        elif self.in_start_period(now) and not self.ever_healthy:
            pass  # failures while the container starts up do not count
        else:
            self.failures += 1
            if self.failures >= self.check.retries:
                self.status = HealthStatus.unhealthy
        return self.status != before

    def in_start_period(self, now: float) -> bool:
        return now - self.started_at < self.check.start_period

    def next_delay(self, now: float) -> float:
        """Seconds until the next probe."""
        if self.in_start_period(now) and not self.ever_healthy:
            return self.check.start_interval
        return self.check.interval

    def describe(self) -> str:
        """Why the task is unhealthy, for `service ps`."""
        detail = self.last_output.strip().splitlines()[-1:] if self.last_output.strip() else []
        reason = f": {detail[0][:200]}" if detail else ""
        return f"health check failed {self.failures} times in a row{reason}"


@dataclass
class HealthMonitor:
    """Probes one container until cancelled; calls `on_change` when its status changes."""

    container_id: str
    check: HealthCheck
    probe: Probe
    on_change: Callable[[], None]
    clock: Clock = SYSTEM_CLOCK
    state: HealthState = field(init=False)
    _loop: asyncio.Task[None] | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.state = HealthState(self.check, started_at=self.clock.now())

    @property
    def status(self) -> HealthStatus:
        return self.state.status

    def view(self) -> HealthView:
        reason = self.state.describe() if self.status == HealthStatus.unhealthy else ""
        return HealthView(self.status, reason)

    def start(self) -> None:
        self._loop = asyncio.create_task(self._run(), name=f"health {self.container_id[:12]}")

    def cancel(self) -> None:
        if self._loop is not None:
            self._loop.cancel()

    async def _run(self) -> None:
        # The first probe comes right away (Docker waits a whole interval;
        # corral would rather put a healthy replica to work sooner).
        while True:
            try:
                result = await self.clock.wait_for(self.probe(), self.check.timeout)
            except TimeoutError:
                result = ProbeResult(False, f"timed out after {self.check.timeout:g}s")
            except asyncio.CancelledError:
                raise
            except Exception as err:  # noqa: BLE001 - a probe that breaks is a failed probe
                result = ProbeResult(False, str(err) or type(err).__name__)
            now = self.clock.now()
            if self.state.record(result, now):
                self.on_change()
            await self.clock.sleep(self.state.next_delay(now))
