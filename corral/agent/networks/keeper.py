"""Keeps this host's networks, their firewall rules and the DNS responder in line with the cluster.

Fed by the mesh follower with the manager's service records at every change (which wakes its loop: the
follower does not wait for the sync), and woken after each
container start (a new network has a new bridge), at every event of the agent's containers (one that
stopped may leave a network unused) and otherwise every `resync` seconds while the engine tells of its
containers' changes (every `interval` seconds when it cannot): it re-reads the engine's networks, removes those no service names any more once no container uses them, and rewrites the
isolation chain. Level-driven and idempotent, like the rest of the agent: running it again changes
nothing, and an agent that restarts rebuilds it all from the engine and the manager.
"""

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from corral.agent.clock import SYSTEM_CLOCK, Clock, wait_event
from corral.agent.dns.records import records_of
from corral.agent.dns.server import DnsResponder, NetworkDirectory, parse_upstreams
from corral.agent.engines.base import Engine
from corral.agent.networks.isolation import Isolation, IsolationError

if TYPE_CHECKING:  # the Docker SDK only where the Docker engine runs (an agent of hollow nodes never loads it)
    from corral.agent.networks.engine import EngineNetworks

log = logging.getLogger(__name__)

RESOLV_CONF = Path("/etc/resolv.conf")


def allowed_vips(names: Iterable[Mapping[str, Any]]) -> dict[str, set[str]]:
    """Network -> the VIPs of the services on it (pure)."""
    allowed: dict[str, set[str]] = {}
    for name in names:
        for attachment in name.get("networks", ()):
            if name.get("vip"):
                allowed.setdefault(str(attachment["name"]), set()).add(str(name["vip"]))
    return allowed


class NetworkKeeper:
    def __init__(
        self, networks: "EngineNetworks", responder: DnsResponder, isolation: Isolation,
        clock: Clock = SYSTEM_CLOCK, interval: float = 2.0, resync: float = 30.0, following: Callable[[], bool] = lambda: False,
    ) -> None:
        """`following()`: whether the engine tells of every change of the agent's containers now (each calls `wake`)."""
        self.networks = networks
        self.responder = responder
        self.isolation = isolation
        self.clock = clock
        self.interval = interval
        self.resync = resync
        self.following = following
        self._wake = asyncio.Event()
        self.dns = ""
        self.service_network = ""
        self._allowed: dict[str, set[str]] = {}
        self._known = False  # nothing is removed before the manager's records are known
        self._lock = asyncio.Lock()

    async def update(self, names: list[Mapping[str, Any]], dns: str, service_network: str) -> None:
        """The manager's records changed: answer from them at once, and wake the keeper's loop to bring the host in
        line. Not awaited here: a sync reads every network of the engine and may write the isolation rules (0.1-1 s
        on a busy host), and the mesh follower that calls this goes back to the manager for the next routes only
        when it returns (a replica's `running` waited behind it). Changes during a sync make one sync after it."""
        self.responder.records = records_of(names)
        self._allowed = allowed_vips(names)
        self.dns, self.service_network = dns, service_network
        self._known = True
        if dns:
            try:
                await self.responder.listen(dns)
            except OSError as err:
                log.warning("dns: cannot listen on %s:53: %s", dns, err)
        self.wake()

    async def sync(self) -> None:
        if not self._known:
            return
        async with self._lock:
            view = await self.responder.directory.refresh()
            removed = await asyncio.to_thread(self.networks.sweep, set(self._allowed), view)
            if removed:
                log.info("networks removed (no service uses them): %s", ", ".join(sorted(removed)))
                view = await self.responder.directory.refresh()
            if self.service_network:
                try:
                    await self.isolation.apply(self.service_network, self.dns, view, self._allowed)
                except IsolationError as err:
                    log.warning("cannot apply network isolation rules: %s", err)

    def wake(self) -> None:
        """One of the agent's containers changed (an engine event): bring the host in line soon."""
        self._wake.set()

    async def run(self) -> None:
        while True:
            await wait_event(self.clock, self._wake, self.resync if self.following() else self.interval)
            self._wake.clear()
            try:
                await self.sync()
            except Exception:  # the engine may be briefly away; next time
                log.exception("cannot bring the networks in line")

    async def close(self, remove: bool = False) -> None:
        await self.responder.close()
        if remove:  # teardown (`corral up`): the networks left without containers go too
            await self.isolation.remove()
            view = await self.responder.directory.refresh()
            await asyncio.to_thread(self.networks.sweep, set(), view)


def keeper_for(
    engine: Engine, cluster_id: str, upstreams: Sequence[str] | None, clock: Clock = SYSTEM_CLOCK
) -> NetworkKeeper | None:
    """The keeper of an engine with real networks (none for one without), forwarding to `upstreams`
    (HOST or HOST:PORT; None: the host's /etc/resolv.conf)."""
    if engine.networks is None:
        return None
    networks = engine.networks
    if upstreams is None:
        servers = parse_upstreams(_read(RESOLV_CONF))
    else:
        servers = [(host, int(port or 53)) for host, _, port in (u.partition(":") for u in upstreams)]
    responder = DnsResponder(NetworkDirectory(networks.view), servers)
    return NetworkKeeper(networks, responder, Isolation(cluster_id, clock), clock, following=lambda: engine.following)


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""
