"""The agent's side of the routing mesh: follow the manager's routes, serve them on this node's address.

The manager computes one list of routes for the whole cluster (every
ingress-published port and its healthy endpoints); each agent long-polls it
and has its `Mesh` listen on the node's own address, so a published port
answers on every node whichever nodes run the replicas. Listeners that
cannot be opened (a port already taken) are reported back to the manager,
which shows them on the service.
"""

import asyncio
import logging
from collections.abc import Iterable, Mapping

from corral.agent.mesh import Mesh
from corral.client import ApiError, ManagerClient

log = logging.getLogger(__name__)

RawTable = dict[tuple[str, int, str], list[tuple[str, int]]]


def table_of(routes: Iterable[Mapping], address: str) -> RawTable:
    """The mesh table for a node at `address`, from the manager's routes (pure)."""
    table: RawTable = {}
    for route in routes:
        backends = []
        for backend in route["backends"]:
            host, _, port = str(backend).rpartition(":")
            backends.append((host, int(port)))
        table[(address, int(route["port"]), str(route["protocol"]))] = backends
    return table


class MeshFollower:
    def __init__(self, client: ManagerClient, node: str, address: str, mesh: Mesh, long_poll: float) -> None:
        self.client = client
        self.node = node
        self.address = address
        self.mesh = mesh
        self.long_poll = long_poll
        self.fingerprint = ""
        self.synced = asyncio.Event()
        self._reported: dict[str, str] | None = None

    async def run(self) -> None:
        while True:
            try:
                reply = await self.client.get(f"/v1/agent/{self.node}/mesh", known=self.fingerprint, wait=self.long_poll)
            except ApiError as err:
                log.warning("agent %s: cannot fetch mesh routes: %s", self.node, err)
                await asyncio.sleep(1.0)
                continue
            errors = await self.mesh.apply(table_of(reply["routes"], self.address))
            self.fingerprint = str(reply["fingerprint"])
            self.synced.set()
            await self._report({f"{listener.port}/{listener.protocol}": error for listener, error in errors.items()})

    async def _report(self, errors: dict[str, str]) -> None:
        if errors == self._reported:
            return
        try:
            await self.client.request("PUT", f"/v1/agent/{self.node}/mesh/errors", json_body={"errors": errors})
            self._reported = errors
        except ApiError as err:
            log.warning("agent %s: cannot report mesh errors: %s", self.node, err)
