"""The responder over real UDP on loopback: our names answered, others forwarded to the node's resolver."""

import asyncio
import socket
from collections.abc import AsyncIterator

import dns.asyncquery
import dns.message
import dns.rcode
import dns.rrset
import pytest

from corral.agent.dns.records import records_of
from corral.agent.dns.server import DnsResponder, NetworkDirectory, parse_upstreams
from corral.agent.networks.view import Member, Network, NetworkView

CLIENT = "127.0.0.1"  # the asker, as the engine's view has it
VIEW = NetworkView({"shop_default": Network("shop_default", "n1", "br-1", "127.0.0.0/8", (Member("c", "t1", CLIENT),))})
NAMES = [{"service": "shop_db", "stack": "shop", "vip": "10.217.0.2", "networks": [{"name": "shop_default"}], "tasks": []}]


class Upstream(asyncio.DatagramProtocol):
    """The node's own resolver: answers every A query with 192.0.2.1 and counts them."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        query = dns.message.from_wire(data)
        self.asked.append(query.question[0].name.to_text())
        reply = dns.message.make_response(query)
        reply.answer.append(dns.rrset.from_text(query.question[0].name, 60, "IN", "A", "192.0.2.1"))
        self.transport.sendto(reply.to_wire(), addr)  # type: ignore[attr-defined]


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def served() -> AsyncIterator[tuple[int, Upstream, NetworkDirectory]]:
    loop = asyncio.get_running_loop()
    upstream = Upstream()
    transport, _ = await loop.create_datagram_endpoint(lambda: upstream, local_addr=("127.0.0.1", 0))
    up_port = transport.get_extra_info("sockname")[1]
    reads: list[int] = []

    def read() -> NetworkView:
        reads.append(1)
        return VIEW

    directory = NetworkDirectory(read)
    responder = DnsResponder(directory, [("127.0.0.1", up_port)], forward_timeout=1.0)
    responder.records = records_of(NAMES)
    port = free_udp_port()
    await responder.listen("127.0.0.1", port)
    try:
        yield port, upstream, directory
    finally:
        await responder.close()
        transport.close()


async def ask(port: int, name: str, rdtype: str = "A") -> dns.message.Message:
    return await dns.asyncquery.udp(dns.message.make_query(name, rdtype), "127.0.0.1", timeout=2, port=port)


async def test_service_names_are_answered_and_the_rest_forwarded(served) -> None:
    port, upstream, directory = served
    reply = await ask(port, "db")
    assert [item.to_text() for rrset in reply.answer for item in rrset] == ["10.217.0.2"]
    assert reply.rcode() == dns.rcode.NOERROR and upstream.asked == []
    empty = await ask(port, "shop_db", "AAAA")  # the name exists, with no IPv6 address
    assert empty.rcode() == dns.rcode.NOERROR and not empty.answer
    missing = await ask(port, "tasks.db")  # no healthy replica
    assert missing.rcode() == dns.rcode.NXDOMAIN
    forwarded = await ask(port, "example.org")
    assert [item.to_text() for rrset in forwarded.answer for item in rrset] == ["192.0.2.1"]
    assert upstream.asked == ["example.org."]


async def test_no_resolver_answering_gives_servfail() -> None:
    directory = NetworkDirectory(lambda: VIEW)
    responder = DnsResponder(directory, [("127.0.0.1", free_udp_port())], forward_timeout=0.2)
    port = free_udp_port()
    await responder.listen("127.0.0.1", port)
    try:
        assert (await ask(port, "example.org")).rcode() == dns.rcode.SERVFAIL
    finally:
        await responder.close()


def test_upstreams_from_resolv_conf_skip_our_own_address() -> None:
    text = "search corp\nnameserver 10.217.0.1\nnameserver 192.0.2.53\n# nameserver 1.1.1.1\n"
    assert parse_upstreams(text, exclude="10.217.0.1") == [("192.0.2.53", 53)]
