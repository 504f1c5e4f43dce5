"""The mesh's TCP listeners, with real sockets on loopback."""

import asyncio
import socket
from collections import Counter

import pytest

from corral.agent.mesh import Listener, Mesh, MeshSettings
from corral.model.errors import InvalidSpec

from mesh_backends import ask, free_port, until


@pytest.fixture
async def mesh():
    running = Mesh()
    yield running
    await running.close()


def listener(ip: str = "127.0.0.5") -> tuple[str, int, str]:
    return (ip, free_port(ip), "tcp")


async def test_round_robin_reaches_every_backend(mesh: Mesh, named_servers) -> None:
    servers = await named_servers(3)
    front = listener()
    assert await mesh.apply({front: [s.address for s in servers]}) == {}
    answers = [await ask(front[:2], f"r{i}") for i in range(30)]
    assert Counter(a.split(":")[0] for a in answers) == {"b0": 10, "b1": 10, "b2": 10}
    assert answers[0].endswith(":r0")
    serving = mesh.listeners[Listener(*front)]
    await until(lambda: serving.relays == set(), "every closed connection let go")  # type: ignore[union-attr]
    assert sum(s.accepted for s in servers) == 30


async def test_least_connections_avoids_a_busy_backend(named_servers) -> None:
    servers = await named_servers(2)
    mesh = Mesh(MeshSettings(strategy="least-connections"))
    front = listener()
    try:
        await mesh.apply({front: [s.address for s in servers]})
        reader, writer = await asyncio.open_connection(*front[:2])  # held open on b0
        writer.write(b"hold\n")
        assert (await reader.readline()).startswith(b"b0:")
        picked = set()
        for _ in range(5):
            picked.add((await ask(front[:2])).split(":")[0])
            serving = mesh.listeners[Listener(*front)]
            await until(lambda: len(serving.relays) == 1, "the mesh to see the close before the next pick")  # type: ignore[union-attr]
        assert picked == {"b1"}
        writer.close()
    finally:
        await mesh.close()


async def test_a_refused_backend_costs_no_connection(mesh: Mesh, named_servers) -> None:
    servers = await named_servers(2)
    dead = ("127.0.0.1", free_port())  # nothing listens there: connect is refused
    front = listener()
    await mesh.apply({front: [dead, servers[0].address, dead, servers[1].address]})
    answers = [await ask(front[:2]) for _ in range(20)]
    assert Counter(a.split(":")[0] for a in answers) == {"b0": 10, "b1": 10}


async def test_a_backend_that_closes_unanswered_is_skipped_and_the_request_replayed(named_servers) -> None:
    async def slam(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1)  # accepts and reads, then dies without a byte: a forwarder to a dead container
        writer.close()

    closer = await asyncio.start_server(slam, "127.0.0.1", 0)
    (live,) = await named_servers(1)
    table = {listener(): [closer.sockets[0].getsockname()[:2], live.address]}
    front = next(iter(table))[:2]
    with_retry, without_retry = Mesh(), Mesh(MeshSettings(replay_limit=0))
    try:
        await with_retry.apply(table)
        assert [await ask(front, f"q{i}") for i in range(6)] == [f"b0:q{i}" for i in range(6)]
        await with_retry.close()
        await without_retry.apply(table)
        assert sorted([await ask(front) for _ in range(6)]) == [""] * 3 + ["b0:hi"] * 3
    finally:
        await with_retry.close()
        await without_retry.close()
        closer.close()


async def test_no_reachable_backend_closes_the_client_and_the_mesh_carries_on(mesh: Mesh, named_servers) -> None:
    front = listener()
    await mesh.apply({front: [("127.0.0.1", free_port())]})
    try:
        answer = await ask(front[:2])
    except ConnectionError:  # reset by the mesh, seen before or after the write
        answer = ""
    assert answer == ""
    (live,) = await named_servers(1)
    await mesh.apply({front: [live.address]})
    assert await ask(front[:2]) == "b0:hi"


async def test_apply_opens_and_closes_listeners(mesh: Mesh, named_servers) -> None:
    a, b = await named_servers(2)
    first, second = listener("127.0.0.5"), listener("127.0.0.6")
    assert await mesh.apply({first: [a.address]}) == {}
    assert await mesh.apply({first: [a.address], second: [b.address]}) == {}
    assert await mesh.apply({first: [a.address], second: [b.address]}) == {}  # idempotent
    assert (await ask(first[:2]), await ask(second[:2])) == ("b0:hi", "b1:hi")
    assert await mesh.apply({second: [b.address]}) == {}
    with pytest.raises(ConnectionRefusedError):
        await ask(first[:2])
    assert await ask(second[:2]) == "b1:hi"
    assert set(mesh.listeners) == {Listener(*second)}


async def test_changing_backends_keeps_established_connections(mesh: Mesh, named_servers) -> None:
    a, b = await named_servers(2)
    front = listener()
    await mesh.apply({front: [a.address]})
    reader, writer = await asyncio.open_connection(*front[:2])
    writer.write(b"one\n")
    assert await reader.readline() == b"b0:one\n"

    await mesh.apply({front: [a.address, b.address]})
    writer.write(b"two\n")
    assert await reader.readline() == b"b0:two\n"  # same connection, same backend

    await mesh.apply({front: [b.address]})
    assert [await ask(front[:2]) for _ in range(3)] == ["b1:hi"] * 3  # new connections: only b1
    writer.write(b"three\n")
    assert await reader.readline() == b"b0:three\n"  # the open one finishes its work
    writer.close()
    assert a.accepted == 1


async def test_a_port_already_taken_is_reported_not_crashed_on(mesh: Mesh, named_servers) -> None:
    (live,) = await named_servers(1)
    taken = socket.socket()
    taken.bind(("127.0.0.5", 0))
    taken.listen()
    busy = ("127.0.0.5", taken.getsockname()[1], "tcp")
    free = listener("127.0.0.6")
    try:
        errors = await mesh.apply({busy: [live.address], free: [live.address]})
        assert list(errors) == [Listener(*busy)]
        assert "in use" in errors[Listener(*busy)] and str(busy[1]) in errors[Listener(*busy)]
        assert await ask(free[:2]) == "b0:hi"
    finally:
        taken.close()
    assert await mesh.apply({busy: [live.address], free: [live.address]}) == {}  # tried again, now free
    assert await ask(busy[:2]) == "b0:hi"


async def test_a_bad_table_raises_and_changes_nothing(mesh: Mesh, named_servers) -> None:
    (live,) = await named_servers(1)
    front = listener()
    await mesh.apply({front: [live.address]})
    with pytest.raises(InvalidSpec, match="port 99999 is out of range"):
        await mesh.apply({("127.0.0.6", 99999, "tcp"): [live.address]})
    with pytest.raises(InvalidSpec, match="unknown protocol 'http'"):
        await mesh.apply({("127.0.0.6", 8080, "http"): []})
    assert set(mesh.listeners) == {Listener(*front)}
    assert await ask(front[:2]) == "b0:hi"


async def test_large_transfers_pass_through_whole(mesh: Mesh) -> None:
    async def sink(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        data = await reader.read()  # until the client half-closes
        writer.write(str(len(data)).encode() + b"\n" + data)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(sink, "127.0.0.1", 0)
    front = listener()
    await mesh.apply({front: [server.sockets[0].getsockname()[:2]]})
    payload = bytes(range(256)) * 40_000  # 10 MB, well past every buffer and the replay limit
    reader, writer = await asyncio.open_connection(*front[:2])
    writer.write(payload)
    writer.write_eof()
    assert int(await reader.readline()) == len(payload)
    assert await reader.read() == payload
    writer.close()
    server.close()


async def test_close_stops_every_listener(named_servers) -> None:
    (live,) = await named_servers(1)
    mesh = Mesh()
    front = listener()
    await mesh.apply({front: [live.address]})
    await mesh.close()
    with pytest.raises(ConnectionRefusedError):
        await ask(front[:2])


async def test_a_shortcut_is_tried_before_the_published_address_and_a_dead_one_falls_back(mesh: Mesh, named_servers) -> None:
    published, container, other = await named_servers(3)
    front = listener()
    await mesh.apply({front: [published.address, other.address]})
    mesh.set_shortcuts({published.address: container.address})
    answers = [(await ask(front[:2])).split(":")[0] for _ in range(6)]
    assert Counter(answers) == {"b1": 3, "b2": 3}  # the published address is never used while the shortcut answers
    assert published.accepted == 0
    serving = mesh.listeners[Listener(*front)]
    assert serving.counters.retries == 0
    # the container died and the shortcut is stale: refused, then the published address, no failure; the
    # failed shortcut is dropped (until the next listing), so only the first connection pays for it
    mesh.set_shortcuts({published.address: ("127.0.0.1", free_port())})
    answers = [(await ask(front[:2])).split(":")[0] for _ in range(6)]
    assert Counter(answers) == {"b0": 3, "b2": 3}
    assert serving.counters.retries == 1
    assert mesh.shortcuts == {}
    # a listener opened later gets the shortcuts too
    later = listener()
    await mesh.apply({front: [published.address, other.address], later: [other.address]})
    mesh.set_shortcuts({other.address: container.address})
    assert (await ask(later[:2])).startswith("b1:")
