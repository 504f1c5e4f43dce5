"""A UDP listener that forwards each client's datagrams to one backend.

UDP has no connections, so the listener keeps a session per client address:
a socket connected to the backend picked for that client, through which the
backend's replies come back and are sent to the client from the listening
address. A session unused for `udp_idle_timeout` seconds is closed, and so is
one whose backend leaves the table or answers with an ICMP error (the next
datagram from that client picks a backend anew). There is no retry: a
datagram sent is gone.
"""

import asyncio
import logging

from corral.agent.clock import SYSTEM_CLOCK, Clock
from corral.agent.mesh.balancing import Pool
from corral.agent.mesh.counters import MeshCounters
from corral.agent.mesh.settings import MeshSettings
from corral.agent.mesh.table import Backend, Listener

log = logging.getLogger(__name__)

Address = tuple[str, int]


class UdpListener:
    def __init__(self, listener: Listener, pool: Pool, settings: MeshSettings, clock: Clock = SYSTEM_CLOCK) -> None:
        self.listener = listener
        self.pool = pool
        self.settings = settings
        self.clock = clock
        self.sessions: dict[Address, Session] = {}
        self.counters = MeshCounters()
        self._front: asyncio.DatagramTransport | None = None
        self._sweeper: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Bind; raises OSError when the address cannot be bound."""
        loop = asyncio.get_running_loop()
        self._front, _ = await loop.create_datagram_endpoint(
            lambda: Front(self), local_addr=(self.listener.ip, self.listener.port), reuse_port=self.settings.reuse_port or None
        )
        self._sweeper = loop.create_task(self._sweep())

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
        if self._front is not None:
            self._front.close()
        for session in list(self.sessions.values()):
            session.close()

    def backends_changed(self) -> None:
        """Close the sessions whose backend is no longer listed."""
        for session in list(self.sessions.values()):
            if session.backend not in self.pool.backends:
                session.close()

    def received(self, data: bytes, client: Address) -> None:
        self.counters.received_bytes += len(data)
        session = self.sessions.get(client)
        if session is None:
            candidates = self.pool.order()
            if not candidates or self._front is None:
                self.counters.errors += 1
                return
            session = Session(self, client, candidates[0], self._front)
            self.sessions[client] = session
            self.counters.connections += 1
        session.send(data)

    async def _sweep(self) -> None:
        idle = self.settings.udp_idle_timeout
        while True:
            await self.clock.sleep(idle / 2)
            now = self.clock.now()
            for session in list(self.sessions.values()):
                if now - session.last_used > idle:
                    session.close()


class Front(asyncio.DatagramProtocol):
    """The listening socket: every datagram goes to its client's session."""

    def __init__(self, owner: UdpListener) -> None:
        self.owner = owner

    def datagram_received(self, data: bytes, addr: Address) -> None:
        self.owner.received(data, addr[:2])


class Session(asyncio.DatagramProtocol):
    """One client's datagrams to and from its backend."""

    def __init__(self, owner: UdpListener, client: Address, backend: Backend, front: asyncio.DatagramTransport) -> None:
        self.owner = owner
        self.client = client
        self.backend = backend
        self.front = front
        self.last_used = owner.clock.now()
        self.queued: list[bytes] = []  # datagrams that arrived while the socket was being made
        self.transport: asyncio.DatagramTransport | None = None
        self.closed = False
        owner.pool.opened(backend)
        self._opening = asyncio.get_running_loop().create_task(self._open())

    async def _open(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            transport, _ = await loop.create_datagram_endpoint(lambda: self, remote_addr=(self.backend.ip, self.backend.port))
        except OSError as error:
            log.warning("mesh %s: backend %s unusable: %s", self.owner.listener, self.backend, error)
            self.owner.counters.errors += 1
            self.close()
            return
        if self.closed:
            transport.close()
            return
        self.transport = transport
        for data in self.queued:
            transport.sendto(data)
        self.queued.clear()

    def send(self, data: bytes) -> None:
        self.last_used = self.owner.clock.now()
        if self.transport is None:
            self.queued.append(data)
        else:
            self.transport.sendto(data)

    def datagram_received(self, data: bytes, addr: Address) -> None:
        self.last_used = self.owner.clock.now()
        self.owner.counters.sent_bytes += len(data)
        self.front.sendto(data, self.client)

    def error_received(self, exc: Exception) -> None:
        log.debug("mesh %s: backend %s: %s", self.owner.listener, self.backend, exc)
        self.close()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._opening.cancel()
        if self.owner.sessions.get(self.client) is self:
            del self.owner.sessions[self.client]
        self.owner.pool.closed(self.backend)
        if self.transport is not None:
            self.transport.close()
