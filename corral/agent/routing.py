"""The agent's side of the routing mesh: follow the manager's routes, serve them on this host.

The manager computes one list of routes for the whole cluster; each agent
long-polls it and serves:

- every published port on the node's own address (so a published port
  answers on every node, whichever nodes run the replicas);
- every service port on the service's virtual IP (on a dummy interface,
  `vips.py`), which the containers of its stack reach by the service's name;
- the cluster's service records, handed to the node's network keeper
  (`networks/keeper.py`: DNS responder, per-stack networks, isolation rules),
  whose DNS address goes on `lo` with the VIPs.

The containers of this node are reached at their own addresses rather than
through the engine's port forwarder (`shortcuts_of`, fed by the reconcile's
listing of the engine): one relay per connection instead of two.

Listeners that cannot be opened (a port already taken) are reported back to
the manager, which shows them on the service.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from corral.agent.clock import SYSTEM_CLOCK, Backoff, Clock
from corral.agent.engines.base import ContainerInfo
from corral.agent.mesh import Backend, Mesh, MeshCounters
from corral.agent.mesh_metrics import ServicePort, by_service_port
from corral.agent.vips import VipError, VipInterface
from corral.client import ApiError, ManagerClient

log = logging.getLogger(__name__)

RawTable = dict[tuple[str, int, str], list[tuple[str, int]]]
NamesListener = Callable[[list[Mapping[str, Any]], str, str], Awaitable[None]]  # (names, dns address, service network)


def table_of(routes: Iterable[Mapping[str, Any]], address: str) -> tuple[RawTable, RawTable]:
    """The node's two mesh tables from the manager's routes (pure): published ports on `address`, and VIPs."""
    published: RawTable = {}
    vips: RawTable = {}
    for route in routes:
        backends = []
        for backend in route["backends"]:
            host, _, port = str(backend).rpartition(":")
            backends.append((host, int(port)))
        if route.get("vip"):
            vips[(str(route["vip"]), int(route["port"]), str(route["protocol"]))] = backends
        else:
            published[(address, int(route["port"]), str(route["protocol"]))] = backends
    return published, vips


def hosts_of(routes: Iterable[Mapping[str, Any]], stack: str) -> dict[str, str]:
    """Name -> VIP of the services of `stack`, short (`api`) and full (`shop_api`), for /etc/hosts (pure)."""
    hosts: dict[str, str] = {}
    for route in routes:
        if route.get("vip") and route.get("stack") == stack:
            name = str(route["service"])
            hosts[name] = str(route["vip"])
            if stack and name.startswith(stack + "_"):
                hosts[name.removeprefix(stack + "_")] = str(route["vip"])
    return hosts


def shortcuts_of(containers: Iterable[ContainerInfo]) -> dict[tuple[str, int], tuple[str, int]]:
    """Published TCP address -> the container's own address, for the running containers of this node (pure)."""
    shortcuts: dict[tuple[str, int], tuple[str, int]] = {}
    for container in containers:
        if not container.running or not container.ip:
            continue
        for port in container.ports:
            if port.protocol == "tcp" and port.host_ip and port.host_port:
                shortcuts[Backend(port.host_ip, port.host_port)] = Backend(container.ip, port.target)
    return shortcuts


class MeshFollower:
    def __init__(
        self,
        client: ManagerClient,
        node: str,
        address: str,
        mesh: Mesh,
        vip_mesh: Mesh,
        vips: VipInterface,
        long_poll: float,
        clock: Clock = SYSTEM_CLOCK,
        on_names: NamesListener | None = None,
    ) -> None:
        self.client = client
        self.node = node
        self.address = address
        self.mesh = mesh
        self.vip_mesh = vip_mesh
        self.vips = vips
        self.long_poll = long_poll
        self.clock = clock
        self.fingerprint = ""
        self.routes: list[Mapping[str, Any]] = []
        self.dns = ""  # the DNS responder's address, once known
        self.addresses: set[str] = set()  # on `lo` besides the VIPs with listeners: all VIPs, the DNS address
        self.on_names = on_names
        self.synced = asyncio.Event()
        self._reported: dict[str, str] | None = None

    def counters(self) -> dict[ServicePort, MeshCounters]:
        """What the mesh has carried, per service port (mesh_metrics.py)."""
        return by_service_port(self.routes, self.address, self.mesh.counters(), self.vip_mesh.counters())

    def containers_listed(self, containers: Iterable[ContainerInfo]) -> None:
        """The engine's running containers, as just listed: the meshes reach them at their own addresses."""
        shortcuts = shortcuts_of(containers)
        self.mesh.set_shortcuts(shortcuts)
        self.vip_mesh.set_shortcuts(shortcuts)

    def hosts(self, stack: str) -> dict[str, str]:
        return hosts_of(self.routes, stack)

    async def run(self) -> None:
        backoff = Backoff(self.clock)
        while True:
            try:
                reply = await self.client.get(f"/v1/agent/{self.node}/mesh", known=self.fingerprint, wait=self.long_poll)
            except ApiError as err:
                log.warning("agent %s: cannot fetch mesh routes: %s", self.node, err)
                await backoff.wait()
                continue
            backoff.reset()
            self.routes = list(reply["routes"])
            names = list(reply.get("names", [])) if self.on_names is not None else []
            self.dns = str(reply.get("dns", "")) if self.on_names is not None else ""
            self.addresses = {str(n["vip"]) for n in names if n.get("vip")} | ({self.dns} if self.dns else set())
            errors = await self._apply(self.routes)
            if self.on_names is not None:
                await self.on_names(names, self.dns, str(reply.get("service_network", "")))
            self.fingerprint = str(reply["fingerprint"])
            self.synced.set()
            await self._report(errors)

    async def _apply(self, routes: list[Mapping[str, Any]]) -> dict[str, str]:
        published, vips = table_of(routes, self.address)
        errors = {f"{l.port}/{l.protocol}": e for l, e in (await self.mesh.apply(published)).items()}
        try:
            # every VIP, with or without a listener (one without refuses at once), and the DNS address
            await self.vips.ensure({vip for vip, _, _ in vips} | self.addresses)
        except VipError as err:
            log.warning("agent %s: cannot set up service VIPs: %s", self.node, err)
            return errors | {f"{vip}:{port}/{protocol}": f"no service VIPs on this node: {err}" for vip, port, protocol in vips}
        vip_errors = await self.vip_mesh.apply(vips)
        return errors | {f"{l.ip}:{l.port}/{l.protocol}": e for l, e in vip_errors.items()}

    async def _report(self, errors: dict[str, str]) -> None:
        if errors == self._reported:
            return
        try:
            await self.client.request("PUT", f"/v1/agent/{self.node}/mesh/errors", json_body={"errors": errors})
            self._reported = errors
        except ApiError as err:
            log.warning("agent %s: cannot report mesh errors: %s", self.node, err)

    async def close(self, remove_vips: bool = False) -> None:
        await self.mesh.close()
        await self.vip_mesh.close()
        if remove_vips:
            try:
                await self.vips.remove()
            except VipError as err:
                log.warning("agent %s: %s", self.node, err)
