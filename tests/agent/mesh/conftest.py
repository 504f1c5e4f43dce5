"""Fixtures of the mesh tests: real backends on loopback, stopped after each test."""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from mesh_backends import NamedServer, UdpEcho, start_named_server


@pytest.fixture
async def named_servers() -> AsyncIterator[Callable[[int], Awaitable[list[NamedServer]]]]:
    started: list[NamedServer] = []

    async def start(count: int) -> list[NamedServer]:
        servers = [await start_named_server(f"b{len(started) + i}") for i in range(count)]
        started.extend(servers)
        return servers

    yield start
    for server in started:
        await server.stop()


@pytest.fixture
async def udp_echoes() -> AsyncIterator[Callable[[int], Awaitable[list[tuple[str, int]]]]]:
    transports: list[asyncio.DatagramTransport] = []

    async def start(count: int) -> list[tuple[str, int]]:
        loop = asyncio.get_running_loop()
        addresses = []
        for _ in range(count):
            transport, _ = await loop.create_datagram_endpoint(
                lambda: UdpEcho(f"u{len(transports)}"), local_addr=("127.0.0.1", 0)
            )
            transports.append(transport)
            addresses.append(transport.get_extra_info("sockname")[:2])
        return addresses

    yield start
    for transport in transports:
        transport.close()
