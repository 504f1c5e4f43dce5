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
from collections.abc import Iterator
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


def _read_stdin(fd: int, queue: "asyncio.Queue[bytes | None]") -> None:
    """Stdin's chunks onto `queue` as they come (None at its end): a reader on the loop, or a thread for a regular
    file (which the loop cannot watch, and which never blocks)."""
    loop = asyncio.get_running_loop()

    def ready() -> None:
        try:
            chunk = os.read(fd, CHUNK)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if not chunk:
            loop.remove_reader(fd)
        queue.put_nowait(chunk or None)

    try:
        loop.add_reader(fd, ready)
    except PermissionError:  # a regular file
        async def whole() -> None:
            while chunk := await loop.run_in_executor(None, os.read, fd, CHUNK):
                await queue.put(chunk)
            await queue.put(None)

        asyncio.ensure_future(whole())


async def run_session(client: ManagerClient, task: str, session: channels.Session, stdin_fd: int) -> int:
    """Run the session to its end: the command's exit code; ApiError when it could not run or the stream broke."""
    connection = await client.session(f"/v1/tasks/{task}/exec/session")
    loop = asyncio.get_running_loop()
    inbound: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=16)
    watching_size = False
    sender: asyncio.Task[None] | None = None
    try:
        await connection.send(session.start_message())
        if session.stdin:
            _read_stdin(stdin_fd, inbound)
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

        async def send_input() -> None:
            while (chunk := await inbound.get()) is not None:
                await connection.send(channels.message(channels.STDIN, chunk))
            await connection.send(channels.close_stdin())

        sender = asyncio.create_task(send_input())
        return await _receive(connection)
    finally:
        if watching_size:
            loop.remove_signal_handler(signal.SIGWINCH)
        if session.stdin:
            with contextlib.suppress(Exception):
                loop.remove_reader(stdin_fd)
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
