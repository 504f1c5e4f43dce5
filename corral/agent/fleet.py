"""Many agents in one process: a fleet of nodes (hollow ones, for scale tests, as kubemark does).

Each node is an `Agent` that registers itself and reconciles its own engine
exactly as a lone agent does; they share one `ManagerLink` (link.py), which
heartbeats, watches and reports for all of them at once over one
connection pool. A lone agent speaks the same protocol through a link of
its own: a fleet differs only by its count and its batching windows.
"""

import asyncio
import logging
from dataclasses import dataclass, field, replace

from corral.agent.clock import SYSTEM_CLOCK, Clock
from corral.agent.daemon import Agent, EngineMaker
from corral.agent.link import LinkSettings, ManagerLink
from corral.agent.identity import NodeIdentity
from corral.agent.settings import AgentSettings
from corral.client import ManagerClient

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FleetSettings:
    count: int
    name_prefix: str
    register_concurrency: int = 32  # registrations in flight at once
    link: LinkSettings = field(default_factory=LinkSettings)

    def __post_init__(self) -> None:
        if self.count < 1:
            raise ValueError(f"a fleet needs at least one node, not {self.count}")
        if not self.name_prefix:
            raise ValueError("a fleet needs a name prefix for its nodes")

    def names(self) -> list[str]:
        return [f"{self.name_prefix}{i}" for i in range(1, self.count + 1)]


class Fleet:
    def __init__(
        self, template: AgentSettings, settings: FleetSettings, engine_factory: EngineMaker, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        self.settings = settings
        self.template = template
        # Its nodes share one credential: the first registration gets it, the others keep it (see `start`).
        # ... and one certificate, its first node's (see identity.py).
        self.identity = NodeIdentity(template.state_dir)
        client = ManagerClient(template.manager_url, timeout=template.long_poll + 30, verify=self.identity.context)
        self.link = ManagerLink(client, template.long_poll, settings.link, clock, template.heartbeat_timeout)
        self.agents = [
            Agent(replace(template, name=name), engine_factory, self.link, clock, self.identity) for name in settings.names()
        ]
        self._renewal: asyncio.Task[None] | None = None
        self._by_name = {agent.name: agent for agent in self.agents}

    async def start(self) -> None:
        """Register every node (raises the first ApiError: wrong token, bad name...), then run the link."""
        limit = asyncio.Semaphore(self.settings.register_concurrency)

        async def start_one(agent: Agent) -> None:
            async with limit:
                await agent.start()

        await self.agents[0].start()  # alone: it brings the credential the others then present
        results = await asyncio.gather(*(start_one(agent) for agent in self.agents[1:]), return_exceptions=True)
        failed = [r for r in results if isinstance(r, BaseException)]
        if failed:
            raise failed[0]
        self.link.start()
        self._renewal = asyncio.create_task(self.identity.keep_renewed(self.link.client, self.link.clock.sleep), name="fleet certificate")

    async def stop(self) -> None:
        if self._renewal is not None:
            self._renewal.cancel()
            await asyncio.gather(self._renewal, return_exceptions=True)
        await self.link.stop()
        self.identity.forget_temporary()
        await asyncio.gather(*(agent.stop() for agent in self.agents), return_exceptions=True)
        await self.link.client.close()

    def agent(self, name: str) -> Agent:
        return self._by_name[name]

    async def stop_node(self, name: str) -> None:
        """Stop one node as if its machine died: no more heartbeats, watches or reports for it."""
        agent = self._by_name.pop(name)
        await agent.stop()
