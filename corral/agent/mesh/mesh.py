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
engine's port forwarder (`tcp.py`). The kernel path uses them for connections
from other hosts only (`kernel.py`); when they change, its rules are
rewritten in the background (`kernel_synced` waits for that).
"""

import asyncio
import logging
from collections.abc import Iterable, Mapping

from corral.agent.clock import SYSTEM_CLOCK, Clock
from corral.agent.mesh.balancing import Pool
from corral.agent.mesh.counters import MeshCounters
from corral.agent.mesh.kernel import KernelPath, KernelPathError
from corral.agent.mesh.settings import MeshSettings
from corral.agent.mesh.table import Backend, Listener, Table, parse_table
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
        self._kernel_table: Table = {}  # what the kernel path was last asked to serve
        self._kernel_refresh: asyncio.Task[None] | None = None

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
                self._kernel_table = {listener: desired[listener] for listener in self.listeners}
                errors.update(await self._write_kernel())
            self.errors = errors
            return dict(errors)

    async def _write_kernel(self) -> dict[Listener, str]:
        """Write the kernel path's rules for the bound listeners; on failure, the error for each TCP one."""
        assert self.kernel is not None
        try:
            await self.kernel.apply(self._kernel_table, self.shortcuts)
        except KernelPathError as error:
            log.warning("mesh: kernel data path failed, serving in userspace: %s", error)
            return {
                listener: f"kernel data path for {listener} (served in userspace): {error}"
                for listener in self._kernel_table
                if listener.protocol == "tcp"
            }
        return {}

    async def _refresh_kernel(self) -> None:
        async with self._lock:
            if self.kernel is None or not self._kernel_table:
                return
            await self._write_kernel()  # a failure is logged; the rules written before stay

    async def kernel_synced(self) -> None:
        """Until the kernel path's rules include the last shortcuts given (tests, benchmarks)."""
        if self._kernel_refresh is not None:
            await asyncio.shield(self._kernel_refresh)

    def set_shortcuts(self, shortcuts: Mapping[tuple[str, int], tuple[str, int]]) -> None:
        """From now on, new TCP connections to a published backend try its container's address first."""
        new = {Backend(*published): Backend(*container) for published, container in shortcuts.items()}
        changed = new != self.shortcuts
        self.shortcuts = new
        for serving in self.listeners.values():
            if isinstance(serving, TcpListener):
                serving.shortcuts = self.shortcuts
        if changed and self.kernel is not None and self._kernel_table:
            # the rules for other hosts' connections name the containers: rewrite them, off the caller's path
            self._kernel_refresh = asyncio.get_running_loop().create_task(self._refresh_kernel())

    def counters(self) -> dict[Listener, MeshCounters]:
        """What each open listener has carried so far (the live objects: read, do not change)."""
        return {listener: serving.counters for listener, serving in self.listeners.items()}

    async def close(self) -> None:
        """Close every listener and every connection."""
        if self._kernel_refresh is not None:
            await asyncio.gather(self._kernel_refresh, return_exceptions=True)
        async with self._lock:
            for serving in self.listeners.values():
                await serving.close()
            self.listeners.clear()
            self.errors = {}
            if self.kernel is not None:
                self._kernel_table = {}
                await self.kernel.remove()

    def _serving(self, listener: Listener, pool: Pool) -> Serving:
        if listener.protocol == "udp":
            return UdpListener(listener, pool, self.settings, self.clock)
        serving = TcpListener(listener, pool, self.settings)
        serving.shortcuts = self.shortcuts
        return serving
