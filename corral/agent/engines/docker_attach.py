"""A command run in a Docker container with its streams attached both ways (`corral exec -i/-t`).

The Engine API gives an exec's stdin only on a hijacked connection: `POST
/exec/{id}/start` with `Upgrade: tcp` answers `101 UPGRADED` and the HTTP
connection becomes the command's raw streams (httpx cannot hand a connection
over, so this module writes that one request itself on the engine's Unix
socket). With a tty the output is the terminal's bytes as they come;
without, stdout and stderr come in the engine's multiplexed frames
(`frames.py`). Half-closing the socket ends the command's stdin (`echo hi |
corral exec -i web -- cat`). The terminal's size goes by `POST
/exec/{id}/resize` (the engine of Debian 12 speaks API 1.41: no size at start).
"""

import asyncio
import json
from collections import deque
from collections.abc import Awaitable, Callable, Sequence

from corral.agent.engines.base import Attachment, EngineError
from corral.agent.engines.docker_api import engine_error
from corral.agent.engines.docker_streams import DockerStreams
from corral.agent.engines.frames import Frame, FrameDecoder

CHUNK = 64 * 1024
MAX_HEADER_BYTES = 64 * 1024
EXIT_CODE_TRIES = 50  # the engine records the exit code just after the stream ends: ask again for up to ~1 s
EXIT_CODE_PAUSE = 0.02


def start_request(exec_id: str, tty: bool) -> bytes:
    """The HTTP request that turns the connection into the exec's streams."""
    body = json.dumps({"Detach": False, "Tty": tty}).encode()
    head = (
        f"POST /exec/{exec_id}/start HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\n"
        f"Connection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def status_of(head: bytes) -> int:
    """The status code of an HTTP response head; EngineError when it is not one."""
    first = head.split(b"\r\n", 1)[0].split()
    if len(first) < 2 or not first[0].startswith(b"HTTP/") or not first[1].isdigit():
        raise EngineError(f"the Docker engine answered the exec start with {head[:100]!r}")
    return int(first[1])


class DockerAttachment(Attachment):
    def __init__(
        self, streams: DockerStreams, exec_id: str, tty: bool, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
        sleep: Callable[[float], Awaitable[None]],
    ) -> None:
        self._streams = streams
        self._exec_id = exec_id
        self._tty = tty
        self._reader = reader
        self._writer = writer
        self._decoder = FrameDecoder()
        self._ready: deque[Frame] = deque()
        self._sleep = sleep

    async def read(self) -> Frame | None:
        while not self._ready:
            chunk = await self._reader.read(CHUNK)  # what followed the response head is still in the reader
            if not chunk:
                return None
            self._ready.extend([Frame("stdout", chunk)] if self._tty else self._decoder.feed(chunk))
        return self._ready.popleft()

    async def write(self, data: bytes) -> None:
        self._writer.write(data)
        await self._writer.drain()

    async def close_stdin(self) -> None:
        if self._writer.can_write_eof() and not self._writer.is_closing():
            self._writer.write_eof()

    async def resize(self, rows: int, cols: int) -> None:
        await self._streams.call("POST", f"/exec/{self._exec_id}/resize", params={"h": rows, "w": cols})

    async def exit_code(self) -> int:
        for _ in range(EXIT_CODE_TRIES):
            inspected = await self._streams.call("GET", f"/exec/{self._exec_id}/json")
            if not inspected.get("Running") and inspected.get("ExitCode") is not None:
                return int(inspected["ExitCode"])
            await self._sleep(EXIT_CODE_PAUSE)
        raise EngineError(f"exec {self._exec_id}: its output ended but the engine reports no exit code")

    async def close(self) -> None:
        self._writer.close()
        try:
            await self._writer.wait_closed()
        except OSError:
            pass


async def attach(
    streams: DockerStreams, container_id: str, command: Sequence[str], tty: bool, stdin: bool,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> DockerAttachment:
    """Start `command` in the container with its streams attached (a terminal when `tty`)."""
    created = await streams.call(
        "POST", f"/containers/{container_id}/exec",
        {"AttachStdin": stdin, "AttachStdout": True, "AttachStderr": True, "Tty": tty, "Cmd": list(command)},
    )
    exec_id = str(created["Id"])
    try:
        reader, writer = await asyncio.open_unix_connection(streams.socket_path)
    except OSError as err:
        raise EngineError(f"cannot reach the Docker engine at {streams.socket_path}: {err}") from err
    try:
        writer.write(start_request(exec_id, tty))
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        code = status_of(head)
        if code >= 400:
            raise engine_error(code, await reader.read(CHUNK))
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError) as err:
        writer.close()
        raise EngineError(f"the Docker engine broke off the exec start: {err}") from err
    except EngineError:
        writer.close()
        raise
    return DockerAttachment(streams, exec_id, tty, reader, writer, sleep)
