"""The node's DNS responder for its containers: service names from the cluster, the rest forwarded.

It listens on UDP port 53 of the cluster's DNS address (the service network's first address, on the
host's `lo` beside the VIPs; several agents of one host share it with SO_REUSEPORT, and they all
answer alike). Containers use it through the engine's `dns` option: Docker's embedded resolver in
each container answers its own names and forwards the rest here from the container's address,
which says who asks (`view.py`: the networks that address is on). Messages are read and written by
dnspython. A name of a service that shares a network with the asker is answered here (`records.py`);
any other is forwarded to the node's own resolvers, and a resolver that does not answer in time
gives SERVFAIL.

dnspython is imported at the first query, and its resolver's client (`dns.asyncquery`) at the first
name forwarded: an agent whose containers ask nothing keeps neither (2 MiB of its memory).
"""

import asyncio
import logging
import socket
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, cast

from corral.agent.dns.records import TASKS_PREFIX, ServiceRecord, resolve
from corral.agent.networks.view import NetworkView

if TYPE_CHECKING:  # dnspython is loaded at the first query (about 1.4 MiB), its resolver's client at the first forward (0.5)
    import dns.message

log = logging.getLogger(__name__)

TTL = 5  # seconds; a VIP lasts the service's life, and replicas change: short enough for both
REFRESH_ON_MISS = 0.2  # seconds between re-reads of the engine's networks for an unknown asker
REFRESH_FOR_TASKS = 1.0  # `tasks.NAME` answers read container addresses at most this old


class NetworkDirectory:
    """The latest `NetworkView`, re-read from the engine when it may be out of date."""

    def __init__(self, read: Callable[[], NetworkView], clock: Callable[[], float] = time.monotonic) -> None:
        self._read = read
        self._clock = clock
        self.view = NetworkView()
        self._read_at = float("-inf")
        self._lock = asyncio.Lock()

    async def refresh(self, older_than: float = 0.0) -> NetworkView:
        async with self._lock:
            if self._clock() - self._read_at >= older_than:
                started = self._clock()
                self.view = await asyncio.to_thread(self._read)
                self._read_at = started
        return self.view

    async def for_client(self, client: str, qname: str) -> NetworkView:
        if qname.lower().startswith(TASKS_PREFIX):
            return await self.refresh(REFRESH_FOR_TASKS)
        if not self.view.networks_of(client):
            return await self.refresh(REFRESH_ON_MISS)
        return self.view


def parse_upstreams(resolv_conf: str, exclude: str = "") -> list[tuple[str, int]]:
    """The `nameserver` lines of a resolv.conf, but `exclude` (our own address)."""
    found = []
    for line in resolv_conf.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "nameserver" and parts[1] != exclude:
            found.append((parts[1], 53))
    return found


class DnsResponder:
    def __init__(
        self, directory: NetworkDirectory, upstreams: Sequence[tuple[str, int]], forward_timeout: float = 2.0
    ) -> None:
        self.directory = directory
        self.upstreams = list(upstreams)
        self.forward_timeout = forward_timeout
        self.records: list[ServiceRecord] = []
        self._transport: asyncio.DatagramTransport | None = None
        self.address = ""

    async def listen(self, address: str, port: int = 53) -> None:
        """Serve on address:port (UDP); again with another address closes the first."""
        if self._transport is not None and self.address == address:
            return
        await self.close()
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((address, port))
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(lambda: _Protocol(self), sock=sock)
        self._transport = transport
        self.address = address

    async def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    async def answer(self, wire: bytes, client: str) -> bytes | None:
        """The reply to one query from `client` (None: not a query worth an answer)."""
        import dns.exception
        import dns.flags
        import dns.message
        import dns.rcode
        import dns.rdataclass
        import dns.rdatatype
        import dns.rrset

        try:
            query = dns.message.from_wire(wire)
        except dns.exception.DNSException:
            return None
        if query.flags & dns.flags.QR or len(query.question) != 1:
            return None
        question = query.question[0]
        qname = question.name.to_text()
        view = await self.directory.for_client(client, qname)
        found = resolve(self.records, view, client, qname)
        if not found.ours:
            return await self._forward(query)
        reply = dns.message.make_response(query)
        reply.flags |= dns.flags.AA | dns.flags.RA
        if question.rdtype == dns.rdatatype.A and found.addresses:
            reply.answer.append(dns.rrset.from_text_list(question.name, TTL, dns.rdataclass.IN, dns.rdatatype.A, list(found.addresses)))
        elif not found.addresses:
            reply.set_rcode(dns.rcode.NXDOMAIN)
        return reply.to_wire()

    async def _forward(self, query: "dns.message.Message") -> bytes:
        import dns.asyncquery
        import dns.exception
        import dns.message
        import dns.rcode

        for host, port in self.upstreams:
            try:
                reply = await dns.asyncquery.udp(query, host, timeout=self.forward_timeout, port=port, ignore_unexpected=True)
                return reply.to_wire()
            except (dns.exception.DNSException, OSError) as err:
                log.debug("dns: resolver %s:%d did not answer: %s", host, port, err)
        failed = dns.message.make_response(query)
        failed.set_rcode(dns.rcode.SERVFAIL)
        return failed.to_wire()


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, responder: DnsResponder) -> None:
        self.responder = responder
        self.transport: asyncio.DatagramTransport | None = None
        self.pending: set[asyncio.Task[None]] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)  # uvloop's is not a subclass

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        task = asyncio.ensure_future(self._reply(data, addr))
        self.pending.add(task)
        task.add_done_callback(self.pending.discard)

    async def _reply(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            reply = await self.responder.answer(data, addr[0])
        except Exception:  # one bad query must not stop the responder
            log.exception("dns: cannot answer %s", addr[0])
            return
        if reply is not None and self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(reply, addr)

    def connection_lost(self, exc: Exception | None) -> None:
        for task in self.pending:
            task.cancel()
