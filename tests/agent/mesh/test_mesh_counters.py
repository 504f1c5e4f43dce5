"""The mesh's per-listener counters, on real sockets on loopback: connections, bytes both ways, retries, errors."""

import asyncio
import socket

from corral.agent.mesh import Listener, Mesh, MeshCounters

from mesh_backends import ask, free_port, until


def tcp_listener() -> tuple[str, int, str]:
    return ("127.0.0.5", free_port("127.0.0.5"), "tcp")


async def test_connections_and_bytes_both_ways_are_counted(named_servers) -> None:
    (server,) = await named_servers(1)
    front = tcp_listener()
    mesh = Mesh()
    try:
        await mesh.apply({front: [server.address]})
        counters = mesh.counters()[Listener(*front)]
        assert counters == MeshCounters()
        answers = [await ask(front[:2], f"q{i}") for i in range(5)]  # "qN\n" out (3 bytes), "b0:qN\n" back (6 bytes)
        assert answers == [f"b0:q{i}" for i in range(5)]
        await until(lambda: counters.sent_bytes == 30, "the answers counted")
        assert (counters.connections, counters.received_bytes, counters.retries, counters.errors) == (5, 15, 0, 0)
    finally:
        await mesh.close()


async def test_a_refused_backend_is_a_retry_and_no_backend_at_all_an_error(named_servers) -> None:
    (server,) = await named_servers(1)
    dead = ("127.0.0.1", free_port())  # nothing listens: connect is refused
    front, empty_front = tcp_listener(), tcp_listener()
    mesh = Mesh()
    try:
        await mesh.apply({front: [dead, server.address], empty_front: [dead]})
        answers = [await ask(front[:2]) for _ in range(4)]
        assert answers == ["b0:hi"] * 4
        counters = mesh.counters()[Listener(*front)]
        assert counters.retries == 2  # round robin: every other connection tried the dead one first
        assert counters.errors == 0
        assert await ask(empty_front[:2]) == ""  # the mesh closes the client: nothing could take it
        lost = mesh.counters()[Listener(*empty_front)]
        await until(lambda: lost.errors == 1, "the dropped connection counted")
        assert lost.connections == 1 and lost.sent_bytes == 0
    finally:
        await mesh.close()


async def test_udp_sessions_and_datagrams_are_counted(udp_echoes) -> None:
    (backend,) = await udp_echoes(1)
    front = ("127.0.0.5", free_port("127.0.0.5", kind=socket.SOCK_DGRAM), "udp")
    mesh = Mesh()
    loop = asyncio.get_running_loop()
    answers: asyncio.Queue[bytes] = asyncio.Queue()

    class Client(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
            answers.put_nowait(data)

    try:
        await mesh.apply({front: [backend]})
        transport, _ = await loop.create_datagram_endpoint(Client, remote_addr=front[:2])
        try:
            for text in (b"a", b"bb"):
                transport.sendto(text)
                await asyncio.wait_for(answers.get(), 5)
        finally:
            transport.close()
        counters = mesh.counters()[Listener(*front)]
        assert (counters.connections, counters.received_bytes, counters.sent_bytes) == (1, 3, 3 + 2 * len("u0:"))
    finally:
        await mesh.close()


def test_counters_add_up() -> None:
    total = MeshCounters()
    total.add(MeshCounters(connections=2, received_bytes=10, sent_bytes=20, retries=1, errors=0))
    total.add(MeshCounters(connections=1, received_bytes=1, sent_bytes=2, retries=0, errors=3))
    assert total == MeshCounters(connections=3, received_bytes=11, sent_bytes=22, retries=1, errors=3)
