"""Real backends on loopback for the mesh tests: named TCP and UDP servers, free ports, one-line requests."""

import asyncio
import socket
from collections.abc import Callable
from dataclasses import dataclass, field


async def until(condition: Callable[[], bool], what: str, within: float = 5.0) -> None:
    """Wait until `condition` holds, checking after each turn of the event loop's I/O (fails after `within` s)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.001)


def free_port(ip: str = "127.0.0.1", kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind((ip, 0))
        return sock.getsockname()[1]


@dataclass
class NamedServer:
    """Answers every line `x` with `name:x`, on one connection as long as the client likes."""

    name: str
    server: asyncio.Server
    port: int
    accepted: int = 0
    serving: int = 0  # connections whose handler still runs
    writers: list[asyncio.StreamWriter] = field(default_factory=list)

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)

    async def stop(self) -> None:
        self.server.close()
        for writer in self.writers:
            writer.close()
        await until(lambda: self.serving == 0, f"server {self.name}'s handlers to end")
        await self.server.wait_closed()


async def start_named_server(name: str) -> NamedServer:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        named.accepted += 1
        named.serving += 1
        named.writers.append(writer)
        try:
            while line := await reader.readline():
                writer.write(f"{name}:".encode() + line)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()
            named.serving -= 1

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    named = NamedServer(name, server, server.sockets[0].getsockname()[1])
    return named


async def ask(address: tuple[str, int], text: str = "hi") -> str:
    """One request on a new connection: send a line, return the answer line ('' if closed)."""
    reader, writer = await asyncio.open_connection(*address)
    try:
        writer.write(text.encode() + b"\n")
        await writer.drain()
        return (await asyncio.wait_for(reader.readline(), 5)).decode().strip()
    finally:
        writer.close()


class UdpEcho(asyncio.DatagramProtocol):
    """Answers every datagram `x` with `name:x`."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        assert self.transport is not None
        self.transport.sendto(self.name.encode() + b":" + data, addr)
