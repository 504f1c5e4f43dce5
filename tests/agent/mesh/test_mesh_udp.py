"""The mesh's UDP listeners: per-client sessions, with real sockets on loopback."""

import asyncio
import socket
from collections import Counter

import pytest

from corral.agent.clock import FakeClock
from corral.agent.mesh import Listener, Mesh, MeshSettings
from corral.agent.mesh.udp import UdpListener

from mesh_backends import free_port


class Client(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.answers: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.answers.put_nowait(data)


async def client(front: tuple[str, int, str]) -> tuple[asyncio.DatagramTransport, Client]:
    loop = asyncio.get_running_loop()
    return await loop.create_datagram_endpoint(Client, remote_addr=front[:2])  # type: ignore[return-value]


async def exchange(transport: asyncio.DatagramTransport, protocol: Client, text: str) -> str:
    transport.sendto(text.encode())
    return (await asyncio.wait_for(protocol.answers.get(), 5)).decode()


def udp_listener(ip: str = "127.0.0.5") -> tuple[str, int, str]:
    return (ip, free_port(ip, socket.SOCK_DGRAM), "udp")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def mesh(clock: FakeClock):
    running = Mesh(MeshSettings(udp_idle_timeout=30.0), clock)
    yield running
    await running.close()


async def test_each_client_keeps_its_backend_and_clients_are_spread(mesh: Mesh, udp_echoes) -> None:
    backends = await udp_echoes(3)
    front = udp_listener()
    assert await mesh.apply({front: backends}) == {}
    clients = [await client(front) for _ in range(6)]
    try:
        firsts = [await exchange(t, p, "a") for t, p in clients]
        assert Counter(answer.split(":")[0] for answer in firsts) == {"u0": 2, "u1": 2, "u2": 2}
        for (transport, protocol), first in zip(clients, firsts):
            again = await exchange(transport, protocol, "b")
            assert again == first.split(":")[0] + ":b"  # same session, same backend
    finally:
        for transport, _ in clients:
            transport.close()


async def test_idle_sessions_are_closed(mesh: Mesh, clock: FakeClock, udp_echoes) -> None:
    backends = await udp_echoes(1)
    front = udp_listener()
    await mesh.apply({front: backends})
    transport, protocol = await client(front)
    try:
        assert await exchange(transport, protocol, "x") == "u0:x"
        serving = mesh.listeners[Listener(*front)]
        assert isinstance(serving, UdpListener) and len(serving.sessions) == 1
        for _ in range(2):  # the sweeper looks every 15 s: at 15 s and 30 s the session is not idle long enough
            await clock.sleeping(1)
            clock.advance(15.0)
            await clock.sleeping(1)  # (it swept, and waits again)
            assert len(serving.sessions) == 1
        clock.advance(15.0)  # 45 s unused
        await clock.sleeping(1)
        assert serving.sessions == {}
        assert await exchange(transport, protocol, "y") == "u0:y"  # a new session
    finally:
        transport.close()


async def test_a_removed_backend_loses_its_sessions(mesh: Mesh, udp_echoes) -> None:
    first, second = await udp_echoes(2)
    front = udp_listener()
    await mesh.apply({front: [first]})
    transport, protocol = await client(front)
    try:
        assert await exchange(transport, protocol, "x") == "u0:x"
        await mesh.apply({front: [second]})
        assert await exchange(transport, protocol, "y") == "u1:y"
    finally:
        transport.close()


async def test_tcp_and_udp_share_a_port_number_and_a_taken_udp_port_is_reported(mesh: Mesh, udp_echoes) -> None:
    (backend,) = await udp_echoes(1)
    taken = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    taken.bind(("127.0.0.5", 0))
    busy = ("127.0.0.5", taken.getsockname()[1], "udp")
    try:
        errors = await mesh.apply({busy: [backend], (busy[0], busy[1], "tcp"): [backend]})
        assert list(errors) == [Listener(*busy)] and "in use" in errors[Listener(*busy)]
        assert set(mesh.listeners) == {Listener(busy[0], busy[1], "tcp")}
    finally:
        taken.close()
