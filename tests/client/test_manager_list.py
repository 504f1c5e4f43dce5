"""ManagerClient with several managers: a manager that cannot be reached is passed over, a follower's 503 naming
the leader (X-Corral-Leader) sends the call there, and the calls after it stay with the one that answered.
Real sockets on loopback: one port nobody listens on, two tiny HTTP servers."""

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest

from corral.client import ApiError, ManagerClient
from corral.model.managers import LEADER_HEADER


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # closed again on return: nobody listens there


class Server:
    def __init__(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.status, self.body, self.headers = status, body, headers or {}
        self.paths: list[str] = []
        self.url = ""
        self._server: asyncio.base_events.Server | None = None

    async def start(self) -> "Server":
        self._server = await asyncio.start_server(self._answer, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"
        return self

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            head = await reader.readuntil(b"\r\n\r\n") if not reader.at_eof() else b""
            if not head:
                break
            self.paths.append(head.split(b" ")[1].decode())
            extra = "".join(f"{k}: {v}\r\n" for k, v in self.headers.items())
            writer.write(
                f"HTTP/1.1 {self.status} X\r\ncontent-type: application/json\r\ncontent-length: {len(self.body)}\r\n{extra}\r\n".encode()
                + self.body
            )
            await writer.drain()

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()


@pytest.fixture
async def servers() -> AsyncIterator[tuple[Server, Server]]:
    leader = await Server(200, b'{"ok": true}').start()
    follower = await Server(503, b'{"error": "does not lead", "path": null}', {LEADER_HEADER: leader.url}).start()
    yield leader, follower
    await leader.stop()
    await follower.stop()


async def test_the_call_finds_the_leader_past_a_dead_manager_and_a_follower(servers: tuple[Server, Server]) -> None:
    leader, follower = servers
    dead = f"http://127.0.0.1:{_closed_port()}"
    async with ManagerClient(f"{dead}, {follower.url}") as client:
        assert await client.get("/v1/agent/watch") == {"ok": True}
        assert client.url == leader.url and client.urls == [dead, follower.url, leader.url]
        assert await client.get("/v1/nodes") == {"ok": True}
    assert follower.paths == ["/v1/agent/watch"] and leader.paths == ["/v1/agent/watch", "/v1/nodes"]


async def test_no_manager_answers_names_the_last_one_tried() -> None:
    dead = [f"http://127.0.0.1:{_closed_port()}" for _ in range(2)]
    async with ManagerClient(",".join(dead)) as client:
        with pytest.raises(ApiError, match="cannot reach the manager at"):
            await client.get("/v1/nodes")


async def test_a_follower_with_no_leader_yet_answers_its_503(servers: tuple[Server, Server]) -> None:
    _, follower = servers
    follower.headers = {"Retry-After": "1"}
    async with ManagerClient(follower.url) as client:
        with pytest.raises(ApiError) as err:
            await client.get("/v1/agent/watch")
    assert err.value.status == 503 and "does not lead" in str(err.value)
