"""The agent's end of `corral exec -i/-t` (exec_sessions.py), with an engine attachment that records what it is given."""

import asyncio
from collections.abc import Iterator

import pytest
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocket

from corral.agent.engines.base import Attachment, EngineError
from corral.agent.engines.frames import Frame
from corral.agent.exec_sessions import run_session
from corral.client import exec_channels as channels


class FakeAttachment(Attachment):
    """A command that echoes each stdin chunk on stdout (and `err:` ones on stderr), ends when stdin ends."""

    def __init__(self, exit_code: int = 0) -> None:
        self.written: list[bytes] = []
        self.sizes: list[tuple[int, int]] = []
        self.closed = False
        self._out: asyncio.Queue[Frame | None] = asyncio.Queue()
        self._code = exit_code

    async def read(self) -> Frame | None:
        return await self._out.get()

    async def write(self, data: bytes) -> None:
        self.written.append(data)
        stream = "stderr" if data.startswith(b"err:") else "stdout"
        await self._out.put(Frame(stream, data.upper()))

    async def close_stdin(self) -> None:
        await self._out.put(None)

    async def resize(self, rows: int, cols: int) -> None:
        self.sizes.append((rows, cols))

    async def exit_code(self) -> int:
        return self._code

    async def close(self) -> None:
        self.closed = True


class FakeEngine:
    def __init__(self, refuse: str | None = None) -> None:
        self.attached: list[tuple[str, tuple[str, ...], bool, bool]] = []
        self.attachment: FakeAttachment | None = None
        self.refuse = refuse

    async def exec_attach(self, container_id: str, command, tty: bool, stdin: bool) -> Attachment:
        if self.refuse:
            raise EngineError(self.refuse)
        self.attached.append((container_id, tuple(command), tty, stdin))
        self.attachment = FakeAttachment(exit_code=5)
        return self.attachment


def _client(engine: FakeEngine) -> TestClient:
    async def container_of(task: str) -> str:
        if task != "t1":
            raise LookupError(f"task {task} has no container on this node")
        return "c1"

    async def endpoint(websocket: WebSocket) -> None:
        await run_session(websocket, lambda: engine, container_of)  # type: ignore[arg-type, return-value]

    return TestClient(Starlette(routes=[WebSocketRoute("/v1/tasks/{task}/exec/session", endpoint)]))


@pytest.fixture
def engine() -> Iterator[FakeEngine]:
    yield FakeEngine()


def _rest(ws) -> list[tuple[int, bytes]]:
    """Every message up to the status (included)."""
    got = []
    while True:
        got.append(channels.split(ws.receive_bytes()))
        if got[-1][0] == channels.STATUS:
            return got


def test_stdin_output_resize_end_of_stdin_and_exit_code(engine: FakeEngine) -> None:
    with _client(engine).websocket_connect("/v1/tasks/t1/exec/session") as ws:
        ws.send_text(channels.Session(("sh",), tty=True, stdin=True, rows=33, cols=101).start_message())
        ws.send_bytes(channels.message(channels.STDIN, b"hello"))
        assert channels.split(ws.receive_bytes()) == (channels.STDOUT, b"HELLO")
        ws.send_bytes(channels.message(channels.STDIN, b"err:x"))
        assert channels.split(ws.receive_bytes()) == (channels.STDERR, b"ERR:X")
        ws.send_bytes(channels.resize(40, 120))
        ws.send_bytes(channels.close_stdin())
        assert _rest(ws)[-1] == (channels.STATUS, b'{"exit_code": 5}')
    assert engine.attached == [("c1", ("sh",), True, True)]
    assert engine.attachment is not None and engine.attachment.sizes == [(33, 101), (40, 120)]  # the start's size, then the resize
    assert engine.attachment.written == [b"hello", b"err:x"] and engine.attachment.closed


def test_no_resize_without_a_tty(engine: FakeEngine) -> None:
    with _client(engine).websocket_connect("/v1/tasks/t1/exec/session") as ws:
        ws.send_text(channels.Session(("cat",), stdin=True, rows=10, cols=10).start_message())
        ws.send_bytes(channels.resize(40, 120))
        ws.send_bytes(channels.close_stdin())
        assert _rest(ws)[-1][0] == channels.STATUS
    assert engine.attachment is not None and engine.attachment.sizes == []


@pytest.mark.parametrize(("task", "start", "says"), [
    ("t1", "{not json", "not JSON"),
    ("t1", '{"command": []}', "command"),
    ("t9", '{"command": ["sh"]}', "task t9 has no container"),
])
def test_a_wrong_start_or_task_ends_the_session_with_the_reason(engine: FakeEngine, task: str, start: str, says: str) -> None:
    with _client(engine).websocket_connect(f"/v1/tasks/{task}/exec/session") as ws:
        ws.send_text(start)
        channel, payload = channels.split(ws.receive_bytes())
    assert channel == channels.STATUS and says in channels.parse_status(payload)[1]
    assert engine.attached == []


def test_an_engine_refusal_is_the_status() -> None:
    with _client(FakeEngine(refuse="container not running")).websocket_connect("/v1/tasks/t1/exec/session") as ws:
        ws.send_text('{"command": ["sh"]}')
        assert channels.parse_status(channels.split(ws.receive_bytes())[1]) == (None, "container not running")


@pytest.mark.parametrize(("sent", "says"), [
    (b"\x09x", "unknown channel 9"),
    (channels.message(channels.STDOUT, b"x"), "channel 1 is not one a caller sends on"),
    (channels.message(channels.RESIZE, b'{"rows": 0, "cols": 3}'), "rows"),
])
def test_a_wrong_message_ends_the_session_naming_it(engine: FakeEngine, sent: bytes, says: str) -> None:
    with _client(engine).websocket_connect("/v1/tasks/t1/exec/session") as ws:
        ws.send_text('{"command": ["sh"], "stdin": true, "tty": true}')
        ws.send_bytes(sent)
        status = _rest(ws)[-1]
    assert says in channels.parse_status(status[1])[1]
    assert engine.attachment is not None and engine.attachment.closed
