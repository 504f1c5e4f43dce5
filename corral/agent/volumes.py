"""The agent's side of removing volumes: remove from the engine what the manager marked, then report it.

Volumes are never removed with their containers. When a user asks
(`corral volume rm`, `corral stack rm --volumes`), the manager marks the
record; every `volume_poll` seconds this loop asks for the node's marked
volumes, removes each from the engine (one still used by a container stays,
and is tried again next time), and reports the ones removed, whose records
the manager then drops.
"""

import logging

from corral.agent.clock import Clock
from corral.agent.engines.base import Engine, EngineError
from corral.client import ApiError, ManagerClient

log = logging.getLogger(__name__)


class VolumeRemover:
    def __init__(self, client: ManagerClient, node: str, engine: Engine, clock: Clock, interval: float) -> None:
        self.client = client
        self.node = node
        self.engine = engine
        self.clock = clock
        self.interval = interval

    async def run(self) -> None:
        while True:
            await self.once()
            await self.clock.sleep(self.interval)

    async def once(self) -> list[str]:
        """One round: the names removed and reported."""
        try:
            marked = await self.client.get(f"/v1/agent/{self.node}/volumes")
        except ApiError as err:
            log.debug("agent %s: cannot ask for volumes to remove: %s", self.node, err)
            return []
        removed = []
        for volume in marked:
            name = volume["name"]
            try:
                await self.engine.remove_volume(name)
            except EngineError as err:
                log.info("agent %s: volume %s not removed yet: %s", self.node, name, err)
                continue
            removed.append(name)
        if removed:
            try:
                await self.client.post(f"/v1/agent/{self.node}/volumes/removed", {"names": removed})
            except ApiError as err:  # removed from the engine already: reported again next round (gone is done)
                log.warning("agent %s: cannot report removed volumes: %s", self.node, err)
        return removed
