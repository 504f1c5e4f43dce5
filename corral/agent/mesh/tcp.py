"""A TCP listener that relays each accepted connection to one backend.

Each connection asks the pool for an order of backends and connects to them
in turn until one accepts: a refused or timed-out connect costs the client
nothing but the time of the attempt. A backend that accepts and then closes
without sending a byte (a port forwarder whose container just died does
that) is skipped the same way, replaying what the client had sent, up to
`replay_limit` bytes. Once a backend has answered, the two sockets are
joined, with flow control both ways and half-close passed through.

Built on asyncio protocols and transports rather than streams: no task per
direction and no copies beyond the kernel's, which roughly halves the cost
per connection. Must not block the loop; must not know where tables come from.

A backend may have a shortcut: the address of the container behind a port
published on this host (`Mesh.set_shortcuts`). It is tried first, with a
short timeout, and the published address after it: the connection then skips
the engine's port forwarder (Docker's userland proxy, a whole extra relay per
connection), and a shortcut gone stale (its container just died) costs at most
`shortcut_timeout` before the published address and then the next backend;
a shortcut that failed is not tried again until the next container listing.
"""

import asyncio
import logging
from typing import cast

from corral.agent.mesh.balancing import Pool
from corral.agent.mesh.counters import MeshCounters
from corral.agent.mesh.settings import MeshSettings
from corral.agent.mesh.table import Backend, Listener

log = logging.getLogger(__name__)


class TcpListener:
    def __init__(self, listener: Listener, pool: Pool, settings: MeshSettings) -> None:
        self.listener = listener
        self.pool = pool
        self.settings = settings
        self.relays: set["Relay"] = set()
        self.counters = MeshCounters()
        # published backend -> its container's own address; shared by the mesh's listeners, and a shortcut that
        # failed is dropped until the next container listing sets the map again
        self.shortcuts: dict[Backend, Backend] = {}
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        """Listen; raises OSError when the address cannot be bound."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: Relay(self), self.listener.ip, self.listener.port, reuse_address=True, reuse_port=self.settings.reuse_port or None,
            backlog=self.settings.backlog
        )

    async def close(self) -> None:
        """Stop listening and cut every connection still open."""
        if self._server is not None:
            self._server.close()
        for relay in list(self.relays):
            relay.abort()
        if self._server is not None:
            await self._server.wait_closed()


class Relay(asyncio.Protocol):
    """One client connection, and the backend connection it is joined to."""

    def __init__(self, owner: TcpListener) -> None:
        self.owner = owner
        self.client: asyncio.Transport
        self.side: "BackendSide | None" = None  # the attached backend connection
        self.candidates: list[Backend] = []
        self.backlog = bytearray()  # client bytes not yet written to any backend
        self.replay: bytearray | None = bytearray() if owner.settings.replay_limit > 0 else None
        self.client_eof = False
        self.closed = False
        self.attempts = 0  # backends tried so far
        self._connecting: asyncio.Task[None] | None = None

    # client side

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.client = cast(asyncio.Transport, transport)  # uvloop's transports are not subclasses
        self.owner.relays.add(self)
        self.owner.counters.connections += 1
        self.candidates = self.owner.pool.order()
        self._connecting = asyncio.get_running_loop().create_task(self._connect())

    def data_received(self, data: bytes) -> None:
        self.owner.counters.received_bytes += len(data)
        if self.side is not None:
            self.side.transport.write(data)
        else:
            self.backlog += data
            if len(self.backlog) > self.owner.settings.replay_limit:
                self.client.pause_reading()  # resumed once a backend is attached
        if self.replay is not None:
            if len(self.replay) + len(data) > self.owner.settings.replay_limit:
                self.replay = None
            else:
                self.replay += data

    def eof_received(self) -> bool:
        self.client_eof = True
        if self.side is None:
            return True  # passed on once a backend is attached
        if self.side.eof:  # both ways are done
            self.side.transport.close()
            return False
        if self.side.transport.can_write_eof():
            self.side.transport.write_eof()
        return True  # keep sending the backend's answer

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.owner.relays.discard(self)
        if self._connecting is not None:
            self._connecting.cancel()
        if self.side is not None:
            self.side.transport.close()

    def pause_writing(self) -> None:
        if self.side is not None:
            self.side.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.side is not None:
            self.side.transport.resume_reading()

    def abort(self) -> None:
        if self.side is not None:
            self.side.transport.abort()
        self.client.abort()

    # backend side

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        settings = self.owner.settings
        while self.candidates and not self.closed:
            backend = self.candidates.pop(0)
            shortcut = self.owner.shortcuts.get(backend)
            attempts = [(shortcut, settings.shortcut_timeout)] if shortcut is not None else []
            for address, timeout in [*attempts, (backend, settings.connect_timeout)]:
                if self.attempts:
                    self.owner.counters.retries += 1
                self.attempts += 1
                try:
                    async with asyncio.timeout(timeout):
                        transport, side = await loop.create_connection(
                            lambda: BackendSide(self, backend), address.ip, address.port
                        )
                except (OSError, TimeoutError) as error:
                    log.debug("mesh %s: backend %s unreachable at %s: %s", self.owner.listener, backend, address, error)
                    if address is shortcut:  # e.g. a host that cannot reach the container's network: pay it once
                        self.owner.shortcuts.pop(backend, None)
                    continue
                if self.closed:
                    transport.close()
                    return
                if not transport.is_closing():
                    self._attach(side)
                    return
                break  # closed at once: the published address is no better; next backend
        if not self.closed:
            log.warning("mesh %s: no backend reachable", self.owner.listener)
            self.owner.counters.errors += 1
            self.client.abort()

    def _attach(self, side: "BackendSide") -> None:
        self.side = side
        self.owner.pool.opened(side.backend)
        side.counted = True
        side.transport.write(bytes(self.replay if self.replay is not None else self.backlog))
        self.backlog.clear()
        if self.client_eof and side.transport.can_write_eof():
            side.transport.write_eof()
        self.client.resume_reading()

    def _may_retry(self, side: "BackendSide") -> bool:
        return not side.answered and self.replay is not None and bool(self.candidates) and not self.closed

    def backend_eof(self, side: "BackendSide") -> bool:
        if side is not self.side or self._may_retry(side):
            return False  # close it; backend_lost retries
        side.eof = True
        if self.client_eof:  # both ways are done
            self.client.close()
            return False
        if self.client.can_write_eof():
            self.client.write_eof()
        return True

    def backend_lost(self, side: "BackendSide") -> None:
        if side.counted:
            self.owner.pool.closed(side.backend)
        if side is not self.side:
            return
        self.side = None
        if self._may_retry(side):
            log.debug("mesh %s: backend %s closed unanswered, trying the next", self.owner.listener, side.backend)
            self._connecting = asyncio.get_running_loop().create_task(self._connect())
        elif not self.closed:
            self.client.close()


class BackendSide(asyncio.Protocol):
    def __init__(self, relay: Relay, backend: Backend) -> None:
        self.relay = relay
        self.backend = backend
        self.transport: asyncio.Transport
        self.answered = False
        self.counted = False
        self.eof = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if not self.answered:
            self.answered = True
            self.relay.replay = None
        self.relay.owner.counters.sent_bytes += len(data)
        self.relay.client.write(data)

    def eof_received(self) -> bool:
        return self.relay.backend_eof(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.relay.backend_lost(self)

    def pause_writing(self) -> None:
        self.relay.client.pause_reading()

    def resume_writing(self) -> None:
        self.relay.client.resume_reading()
