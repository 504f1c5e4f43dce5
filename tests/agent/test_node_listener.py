"""The agent's node listener over real mutual TLS: the manager (its client certificate) reads logs and runs
commands; a node's certificate, no certificate, or a listener with another node's certificate are refused.

The engine behind the listener is a fake (the listener and the relay are under test); real containers are
in tests/e2e/test_logs_exec.py.
"""

import ssl
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from corral.agent.engines.base import ContainerInfo, ContainerStats, Engine, LogOptions
from corral.agent.engines.frames import Frame, LogLine
from corral.agent.mesh import MeshCounters
from corral.agent.node_api import node_app
from corral.agent.node_listener import NodeListener
from corral.manager.mesh_counters import read_connections
from corral.manager.node_streams import NodeStreams, NodeUnreachable
from corral.model import Node, Resources
from corral.model.errors import NotFound
from corral.pki import client_context, load_or_create_ca
from corral.pki.manager_certs import issue_manager_client_certificate
from corral.pki.peers import is_manager_peer
from tests.pki.pki_factories import node_files


class FakeEngine(Engine):
    def __init__(self) -> None:
        self.asked: list[LogOptions] = []

    async def list(self) -> list[ContainerInfo]:
        return [ContainerInfo(id="c1", task_id="t1", running=True)]

    async def start(self, *args: object, **kwargs: object) -> ContainerInfo:
        raise NotImplementedError

    async def stop(self, container_id: str, grace: float) -> ContainerInfo:
        raise NotImplementedError

    async def remove(self, container_id: str) -> None:
        raise NotImplementedError

    async def logs(self, container_id: str, options: LogOptions) -> AsyncIterator[Sequence[LogLine]]:  # type: ignore[override]
        self.asked.append(options)
        yield [LogLine("stdout", "2026-12-02T13:00:00Z", f"hello from {container_id}")]
        yield [LogLine("stderr", "2026-12-02T13:00:01Z", "oops")]

    async def stats(self, container_id: str) -> ContainerStats:
        return ContainerStats(cpu_seconds=1.5, memory_working_set=4096, rx_bytes=1, tx_bytes=2)

    async def exec_stream(self, container_id: str, command: Sequence[str]) -> AsyncIterator[Frame | int]:  # type: ignore[override]
        yield Frame("stdout", " ".join(command).encode())
        yield 3


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[tuple[NodeListener, Path, FakeEngine]]:
    now = time.time()
    ca = load_or_create_ca(tmp_path, now)
    cert, key, _ = node_files(ca, tmp_path, "node-1", now)
    engine = FakeEngine()
    listener = NodeListener("127.0.0.1", 0)
    await listener.serve(lambda: node_app(lambda: engine), cert, key, ca.certificate_pem)
    yield listener, tmp_path, engine
    await listener.close()


def _node(listener: NodeListener, name: str = "node-1") -> Node:
    return Node(name=name, address="127.0.0.1", resources=Resources(cpus=1, memory=1 << 30), last_heartbeat=0, registered_at=0,
                agent_port=listener.port)


def _manager_streams(data_dir: Path) -> NodeStreams:
    ca = load_or_create_ca(data_dir, time.time())
    cert, key = issue_manager_client_certificate(ca, data_dir, time.time())
    assert is_manager_peer(ssl._ssl._test_decode_cert(str(cert)))  # type: ignore[attr-defined]  # ssl's own parse of a certificate
    assert not is_manager_peer(ssl._ssl._test_decode_cert(str(data_dir / "ca.pem")))  # type: ignore[attr-defined]
    return NodeStreams(client_context(ca.certificate_pem, cert, key))


async def test_the_manager_reads_logs_and_runs_commands(setup: tuple[NodeListener, Path, FakeEngine]) -> None:
    listener, data_dir, engine = setup
    streams = _manager_streams(data_dir)
    try:
        lines = [item async for item in streams.lines(_node(listener), "GET", "/v1/tasks/t1/logs", {"follow": "0", "tail": "5", "since": "12.5"})]
        assert lines == [
            {"stream": "stdout", "time": "2026-12-02T13:00:00Z", "line": "hello from c1"},
            {"stream": "stderr", "time": "2026-12-02T13:00:01Z", "line": "oops"},
        ]
        assert engine.asked == [LogOptions(follow=False, tail=5, since=12.5)]
        ran = [item async for item in streams.lines(_node(listener), "POST", "/v1/tasks/t1/exec", body={"command": ["cat", "/x"]})]
        assert ran == [{"stream": "stdout", "data": "cat /x"}, {"exit_code": 3}]
        usage = [item async for item in streams.lines(_node(listener), "GET", "/v1/tasks/t1/stats")]
        assert usage == [{"cpu_seconds": 1.5, "memory_working_set": 4096, "rx_bytes": 1, "tx_bytes": 2}]
        node_use = [item async for item in streams.lines(_node(listener), "GET", "/v1/node/usage")]
        assert node_use == [{"cpu_cores": 0.0, "memory_working_set": 4096, "containers": 1, "unmeasured": 0, "window": pytest.approx(0.5, abs=0.2)}]
        with pytest.raises(NotFound, match="task t9 has no container on this node"):
            [item async for item in streams.lines(_node(listener), "GET", "/v1/tasks/t9/logs")]
        with pytest.raises(NodeUnreachable, match="tail: 'many' is not a whole number"):
            [item async for item in streams.lines(_node(listener), "GET", "/v1/tasks/t1/logs", {"tail": "many"})]
        with pytest.raises(NodeUnreachable, match="command"):
            [item async for item in streams.lines(_node(listener), "POST", "/v1/tasks/t1/exec", body={"command": []})]
    finally:
        await streams.close()


async def test_the_server_is_made_at_the_first_connection(setup: tuple[NodeListener, Path, FakeEngine]) -> None:
    """Serving binds nothing new and loads no server until a connection waits; the first one is answered."""
    listener, data_dir, _ = setup
    assert not listener.loaded
    streams = _manager_streams(data_dir)
    try:
        assert [item async for item in streams.lines(_node(listener), "GET", "/v1/tasks/t1/stats")][0]["cpu_seconds"] == 1.5
        assert listener.loaded
    finally:
        await streams.close()


async def test_a_certificate_and_key_that_do_not_match_are_refused_when_serving(tmp_path: Path) -> None:
    """Checked at once, not at the first connection: an agent with a bad pair does not start."""
    now = time.time()
    ca = load_or_create_ca(tmp_path, now)
    cert, _, _ = node_files(ca, tmp_path, "node-1", now)
    _, other_key, _ = node_files(ca, tmp_path, "node-2", now)
    listener = NodeListener("127.0.0.1", 0)
    try:
        with pytest.raises(ssl.SSLError):
            await listener.serve(lambda: node_app(lambda: FakeEngine()), cert, other_key, ca.certificate_pem)
        assert not listener.loaded
    finally:
        await listener.close()


async def test_a_listener_never_connected_to_closes_and_frees_its_port(tmp_path: Path) -> None:
    listener = NodeListener("127.0.0.1", 0)
    await listener.serve_plain(lambda: node_app(lambda: FakeEngine()))
    await listener.close()
    again = NodeListener("127.0.0.1", listener.port)
    await again.close()


async def test_a_listener_with_another_nodes_certificate_is_not_trusted(setup: tuple[NodeListener, Path, FakeEngine]) -> None:
    listener, data_dir, _ = setup
    streams = _manager_streams(data_dir)
    try:
        with pytest.raises(NodeUnreachable, match="cannot reach node node-2's agent"):
            [item async for item in streams.lines(_node(listener, "node-2"), "GET", "/v1/tasks/t1/logs")]
    finally:
        await streams.close()


def _not_the_manager(data_dir: Path, node: str) -> list[NodeStreams]:
    """Callers the listener must refuse: another node's certificate (from the same CA), and no certificate."""
    ca = load_or_create_ca(data_dir, time.time())
    other_cert, other_key, _ = node_files(ca, data_dir, node, time.time())
    return [NodeStreams(client_context(ca.certificate_pem, other_cert, other_key)), NodeStreams(client_context(ca.certificate_pem))]


async def test_only_the_managers_certificate_gets_in(setup: tuple[NodeListener, Path, FakeEngine]) -> None:
    listener, data_dir, engine = setup
    for streams in _not_the_manager(data_dir, "node-2"):
        try:
            with pytest.raises(NodeUnreachable):
                [item async for item in streams.lines(_node(listener), "GET", "/v1/tasks/t1/logs")]
        finally:
            await streams.close()
    assert engine.asked == []  # nothing reached the engine


async def test_without_tls_there_is_no_stream_and_the_error_says_why(setup: tuple[NodeListener, Path, FakeEngine]) -> None:
    listener, _, _ = setup
    streams = NodeStreams(None)
    with pytest.raises(NodeUnreachable, match="serves no logs or exec"):
        [item async for item in streams.lines(_node(listener), "GET", "/v1/tasks/t1/logs")]
    await streams.close()


async def test_an_exec_session_over_mutual_tls_and_who_is_refused(setup: tuple[NodeListener, Path, FakeEngine]) -> None:
    """The WebSocket of `corral exec -it` on the listener: the manager's certificate gets a session; the name of
    another node, a node's certificate or none do not (the listener checks before any HTTP, upgrade or not)."""
    from test_exec_sessions import FakeAttachment

    from corral.client import exec_channels as channels

    listener, data_dir, engine = setup
    attached: list[FakeAttachment] = []

    async def exec_attach(container_id: str, command: Sequence[str], tty: bool, stdin: bool) -> FakeAttachment:
        attached.append(FakeAttachment(exit_code=7))
        return attached[-1]

    engine.exec_attach = exec_attach  # type: ignore[method-assign]
    streams = _manager_streams(data_dir)
    try:
        session = await streams.session(_node(listener), "/v1/tasks/t1/exec/session")
        await session.send(channels.Session(("sh",), tty=True, stdin=True, rows=24, cols=80).start_message())
        await session.send(channels.message(channels.STDIN, b"ls\r"))
        assert channels.split(await session.recv()) == (channels.STDOUT, b"LS\r")
        await session.send(channels.close_stdin())
        assert channels.split(await session.recv()) == (channels.STATUS, b'{"exit_code": 7}')
        await session.close()
        assert attached[0].written == [b"ls\r"] and attached[0].sizes == [(24, 80)]
        with pytest.raises(NodeUnreachable, match="cannot reach node node-2's agent"):
            await streams.session(_node(listener, "node-2"), "/v1/tasks/t1/exec/session")
    finally:
        await streams.close()
    for streams in _not_the_manager(data_dir, "node-3"):
        try:
            with pytest.raises(NodeUnreachable):
                await streams.session(_node(listener), "/v1/tasks/t1/exec/session")
        finally:
            await streams.close()
    assert len(attached) == 1
async def test_the_manager_reads_the_nodes_mesh_counters(tmp_path: Path) -> None:
    now = time.time()
    ca = load_or_create_ca(tmp_path, now)
    cert, key, _ = node_files(ca, tmp_path, "node-1", now)
    carried = {"shop_web": MeshCounters(connections=12, received_bytes=300, sent_bytes=900, retries=1, errors=0)}
    listener = NodeListener("127.0.0.1", 0)
    await listener.serve(lambda: node_app(lambda: FakeEngine(), mesh=lambda: carried), cert, key, ca.certificate_pem)
    streams = _manager_streams(tmp_path)
    try:
        assert await read_connections(streams, _node(listener)) == {"shop_web": 12}
        carried["shop_web"].connections = 20
        carried["shop_api"] = MeshCounters(connections=1)
        assert await read_connections(streams, _node(listener)) == {"shop_web": 20, "shop_api": 1}
        await listener.close()
        with pytest.raises(NodeUnreachable):
            await read_connections(streams, _node(listener))
    finally:
        await streams.close()
        await listener.close()
