"""The routing mesh of one node: a set of listeners kept equal to a desired table.

`apply(table)` is level-driven and idempotent: it validates the whole table
first (a bad entry raises `InvalidSpec` and changes nothing), then closes the
listeners no longer wanted, updates the backends of those kept (their open
connections are left alone) and opens the new ones. A listener that cannot
be bound is reported in the returned errors and tried again by the next
`apply`; it never stops the others.

With `data_path="kernel"` the TCP listeners that could be bound are also
written as iptables DNAT rules (`kernel.py`) after the userspace listeners
are in place; if iptables fails, the error is reported on those listeners
and the userspace proxy serves them.

`set_shortcuts` tells the TCP listeners where the containers behind ports
published on this host really are, so that they connect to them without the
engine's port forwarder (`tcp.py`); the kernel path does not use them.
"""

import asyncio
import logging
from collections.abc import Iterable, Mapping

from corral.agent.clock import SYSTEM_CLOCK, Clock
from corral.agent.mesh.balancing import Pool
from corral.agent.mesh.counters import MeshCounters
from corral.agent.mesh.kernel import KernelPath, KernelPathError
from corral.agent.mesh.settings import MeshSettings
from corral.agent.mesh.table import Backend, Listener, parse_table
from corral.agent.mesh.tcp import TcpListener
from corral.agent.mesh.udp import UdpListener

log = logging.getLogger(__name__)

Serving = TcpListener | UdpListener


class Mesh:
    def __init__(self, settings: MeshSettings | None = None, clock: Clock = SYSTEM_CLOCK) -> None:
        """`clock`: what idle UDP sessions are timed by (a fake one in tests)."""
        self.settings = settings or MeshSettings()
        self.clock = clock
        self.listeners: dict[Listener, Serving] = {}
        self.errors: dict[Listener, str] = {}  # from the last apply
        self.shortcuts: dict[Backend, Backend] = {}
        self._lock = asyncio.Lock()
        self.kernel = KernelPath(self.settings.cluster) if self.settings.data_path == "kernel" else None

    async def apply(self, table: Mapping[tuple[str, int, str], Iterable[tuple[str, int]]]) -> dict[Listener, str]:
        """Serve exactly `table`; return an error message for each listener that could not be opened."""
        desired = parse_table(table)
        async with self._lock:
            for listener in [known for known in self.listeners if known not in desired]:
                await self.listeners.pop(listener).close()
            errors: dict[Listener, str] = {}
            for listener, backends in desired.items():
                serving = self.listeners.get(listener)
                if serving is not None:
                    serving.pool.update(backends)
                    if isinstance(serving, UdpListener):
                        serving.backends_changed()
                    continue
                serving = self._serving(listener, Pool(backends, self.settings.strategy))
                try:
                    await serving.start()
                except OSError as error:
                    errors[listener] = f"cannot listen on {listener}: {error.strerror or error}"
                    log.warning("mesh: %s", errors[listener])
                    continue
                self.listeners[listener] = serving
            if self.kernel is not None:
                bound = {listener: desired[listener] for listener in self.listeners}
                try:
                    await self.kernel.apply(bound)
                except KernelPathError as error:
                    for listener in bound:
                        if listener.protocol == "tcp":
                            errors[listener] = f"kernel data path for {listener} (served in userspace): {error}"
                    log.warning("mesh: kernel data path failed, serving in userspace: %s", error)
            self.errors = errors
            return dict(errors)

    def set_shortcuts(self, shortcuts: Mapping[tuple[str, int], tuple[str, int]]) -> None:
        """From now on, new TCP connections to a published backend try its container's address first."""
        self.shortcuts = {Backend(*published): Backend(*container) for published, container in shortcuts.items()}
        for serving in self.listeners.values():
            if isinstance(serving, TcpListener):
                serving.shortcuts = self.shortcuts

    def counters(self) -> dict[Listener, MeshCounters]:
        """What each open listener has carried so far (the live objects: read, do not change)."""
        return {listener: serving.counters for listener, serving in self.listeners.items()}

    async def close(self) -> None:
        """Close every listener and every connection."""
        async with self._lock:
            for serving in self.listeners.values():
                await serving.close()
            self.listeners.clear()
            self.errors = {}
            if self.kernel is not None:
                await self.kernel.remove()

    def _serving(self, listener: Listener, pool: Pool) -> Serving:
        if listener.protocol == "udp":
            return UdpListener(listener, pool, self.settings, self.clock)
        serving = TcpListener(listener, pool, self.settings)
        serving.shortcuts = self.shortcuts
        return serving
