"""`corral exec -i/-t`: the local end of an interactive command run (as `kubectl exec -it`).

With `-t` and `-i` on a terminal, the local terminal goes into raw mode (every key goes to the container's
terminal, Ctrl-C included) and is restored on the way out, whatever happens; its size is sent at the start
and again on every SIGWINCH. With `-i`, stdin is forwarded as it comes and its end is passed on (`echo hi |
corral exec -i web -- cat`). Output is written as it comes; the command's exit code is returned.
The messages are `corral.client.exec_channels`' over the manager's WebSocket (`ManagerClient.session`).
"""

import asyncio
import contextlib
import os
import signal
import sys
import termios
import tty
from collections.abc import Awaitable, Iterator
from typing import Any

from corral.client import ApiError, ManagerClient
from corral.client import exec_channels as channels

CHUNK = 32 * 1024


def terminal_size(fd: int) -> tuple[int, int] | None:
    """(rows, cols) of the terminal on `fd`, None when it is not one."""
    try:
        size = os.get_terminal_size(fd)
    except OSError:
        return None
    return size.lines, size.columns


@contextlib.contextmanager
def raw_mode(fd: int) -> Iterator[None]:
    """The terminal on `fd` in raw mode for the block, its settings put back after it (an exception, a signal)."""
    saved = termios.tcgetattr(fd)
    try:
        tty.setraw(fd)
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


async def while_raw(fd: int, session: Awaitable[int]) -> int:
    """Run `session` with the terminal on `fd` in raw mode. SIGTERM and SIGHUP (a closed terminal window) would end
    the process without undoing raw mode: they cancel the session instead, so it is undone, and the code is
    the signal's (128 + N, as a shell reports it)."""
    loop = asyncio.get_running_loop()
    me = asyncio.current_task()
    assert me is not None
    received: list[int] = []

    def stop(signum: int) -> None:
        received.append(signum)
        me.cancel()

    for signum in (signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(signum, stop, signum)
    try:
        with raw_mode(fd):
            return await session
    except asyncio.CancelledError:
        if not received:
            raise
        return 128 + received[0]
    finally:
        for signum in (signal.SIGTERM, signal.SIGHUP):
            loop.remove_signal_handler(signum)


class StdinReader:
    """Stdin's chunks as they come, None at its end, at most `limit` chunks ahead of the sender: when that many
    wait, the loop stops watching stdin until one is taken (back-pressure: a fast pipe never outruns the
    session). A regular file, which the loop cannot watch (and which never blocks), is read by a thread."""

    def __init__(self, fd: int, limit: int = 16) -> None:
        self._fd = fd
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=limit)
        self._watching = False
        self._ended = False
        self._thread: asyncio.Future[None] | None = None
        try:
            self._watch()
        except PermissionError:  # a regular file
            self._thread = asyncio.ensure_future(self._read_file())

    def _watch(self) -> None:
        self._loop.add_reader(self._fd, self._ready)
        self._watching = True

    def _unwatch(self) -> None:
        if self._watching:
            self._loop.remove_reader(self._fd)
            self._watching = False

    def _ready(self) -> None:
        try:
            chunk = os.read(self._fd, CHUNK)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if not chunk:
            self._unwatch()
            self._ended = True
        self._queue.put_nowait(chunk or None)  # never full here: the reader is stopped while it is
        if self._queue.full():
            self._unwatch()

    async def _read_file(self) -> None:
        while chunk := await self._loop.run_in_executor(None, os.read, self._fd, CHUNK):
            await self._queue.put(chunk)
        await self._queue.put(None)

    async def get(self) -> bytes | None:
        chunk = await self._queue.get()
        if not self._watching and not self._ended and self._thread is None:
            self._watch()
        return chunk

    def close(self) -> None:
        self._unwatch()
        self._ended = True
        if self._thread is not None:
            self._thread.cancel()


async def run_session(client: ManagerClient, task: str, session: channels.Session, stdin_fd: int) -> int:
    """Run the session to its end: the command's exit code; ApiError when it could not run or the stream broke."""
    connection = await client.session(f"/v1/tasks/{task}/exec/session")
    loop = asyncio.get_running_loop()
    stdin: StdinReader | None = None
    watching_size = False
    sender: asyncio.Task[None] | None = None
    try:
        await connection.send(session.start_message())
        if session.stdin:
            stdin = StdinReader(stdin_fd)
        if session.tty:
            async def send_size(size: tuple[int, int]) -> None:
                with contextlib.suppress(Exception):  # the session may have ended meanwhile: its end says why
                    await connection.send(channels.resize(*size))

            def resized() -> None:
                size = terminal_size(stdin_fd) or terminal_size(sys.stdout.fileno())
                if size is not None:
                    asyncio.ensure_future(send_size(size))

            loop.add_signal_handler(signal.SIGWINCH, resized)
            watching_size = True

        async def send_input(reader: StdinReader) -> None:
            while (chunk := await reader.get()) is not None:
                await connection.send(channels.message(channels.STDIN, chunk))
            await connection.send(channels.close_stdin())

        if stdin is not None:
            sender = asyncio.create_task(send_input(stdin))
        return await _receive(connection)
    finally:
        if watching_size:
            loop.remove_signal_handler(signal.SIGWINCH)
        if stdin is not None:
            stdin.close()
        if sender is not None:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await sender
        await connection.close()


async def _receive(connection: Any) -> int:
    from websockets.exceptions import ConnectionClosed

    out, err = sys.stdout.buffer, sys.stderr.buffer
    try:
        async for item in connection:
            if isinstance(item, str):
                raise ApiError(f"the manager sent text where channel messages were expected: {item[:200]!r}")
            channel, payload = channels.split(item)
            if channel in (channels.STDOUT, channels.STDERR):
                stream = out if channel == channels.STDOUT else err
                stream.write(payload)
                stream.flush()
            elif channel == channels.STATUS:
                code, error = channels.parse_status(payload)
                if error is not None:
                    raise ApiError(error)
                assert code is not None
                return code
    except ConnectionClosed as closed:
        raise ApiError(f"lost the manager: {closed}") from None
    except ValueError as wrong:
        raise ApiError(f"the manager sent a message that is not of the exec protocol: {wrong}") from None
    raise ApiError("the session ended without the command's exit code")


def session_for(command: list[str], interactive: bool, want_tty: bool, stdin_fd: int) -> tuple[channels.Session, bool]:
    """The session to ask for, and whether the local terminal goes raw; `-t` without a terminal on stdin gives
    none (as kubectl: a warning, then the command runs without one)."""
    local_tty = os.isatty(stdin_fd)
    if want_tty and interactive and not local_tty:
        print("Unable to use a TTY - input is not a terminal or the right kind of file", file=sys.stderr)
        want_tty = False
    size = (terminal_size(stdin_fd) or terminal_size(sys.stdout.fileno())) if want_tty else None
    session = channels.Session(
        command=tuple(command), tty=want_tty, stdin=interactive,
        rows=size[0] if size else None, cols=size[1] if size else None,
    )
    return session, want_tty and interactive and local_tty
