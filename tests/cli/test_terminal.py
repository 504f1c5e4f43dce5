"""The local end of `corral exec -i/-t`: raw mode is undone whatever happens; -t without a terminal gives none."""

import asyncio
import os
import termios

import pytest

from corral.cli import terminal


@pytest.fixture
def pty_pair():
    master, slave = os.openpty()
    try:
        yield master, slave
    finally:
        os.close(master)
        os.close(slave)


def test_raw_mode_is_undone_even_when_the_session_fails(pty_pair) -> None:
    _, slave = pty_pair
    before = termios.tcgetattr(slave)
    assert before[3] & termios.ICANON and before[3] & termios.ECHO
    with pytest.raises(RuntimeError):
        with terminal.raw_mode(slave):
            inside = termios.tcgetattr(slave)
            assert not inside[3] & (termios.ICANON | termios.ECHO | termios.ISIG)  # every key goes to the container, Ctrl-C too
            raise RuntimeError("the manager went away")
    assert termios.tcgetattr(slave) == before


def test_the_session_asked_for(pty_pair, capsys) -> None:
    _, slave = pty_pair
    import fcntl
    import struct

    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 33, 101, 0, 0))
    session, raw = terminal.session_for(["sh"], interactive=True, want_tty=True, stdin_fd=slave)
    assert (session.tty, session.stdin, session.rows, session.cols, raw) == (True, True, 33, 101, True)
    session, raw = terminal.session_for(["sh"], interactive=False, want_tty=True, stdin_fd=slave)
    assert (session.tty, session.stdin, raw) == (True, False, False)  # -t alone: a terminal, the local one left as it is

    read_end, write_end = os.pipe()
    try:
        session, raw = terminal.session_for(["cat"], interactive=True, want_tty=True, stdin_fd=read_end)
    finally:
        os.close(read_end)
        os.close(write_end)
    assert (session.tty, session.stdin, session.rows, raw) == (False, True, None, False)
    assert "Unable to use a TTY" in capsys.readouterr().err


async def _drain(reader, pause: float = 0) -> bytes:
    got = b""
    while (chunk := await reader.get()) is not None:
        got += chunk
        if pause:
            await asyncio.sleep(pause)  # a slow session: stdin must wait for it, not be dropped
    return got


async def test_stdin_is_read_whole_from_a_regular_file(tmp_path) -> None:
    data = b"".join(b"line %06d\n" % n for n in range(10_000))
    path = tmp_path / "input"
    path.write_bytes(data)
    with path.open("rb") as regular:
        reader = terminal.StdinReader(regular.fileno())  # the loop cannot watch a regular file: a thread reads it
        assert await asyncio.wait_for(_drain(reader), 10) == data


@pytest.mark.parametrize("pause", [0, 0.002])
async def test_stdin_from_a_pipe_is_read_whole_and_never_more_than_the_limit_ahead(pause: float) -> None:
    data = b"".join(b"line %06d\n" % n for n in range(200_000))  # 2.4 MB: many times the limit of 16 chunks
    read_end, write_end = os.pipe()
    try:
        reader = terminal.StdinReader(read_end, limit=4)
        most = [0]
        real_get = reader._queue.get

        async def get():
            most[0] = max(most[0], reader._queue.qsize())
            return await real_get()

        reader._queue.get = get

        def feed() -> None:
            with os.fdopen(write_end, "wb") as pipe:
                pipe.write(data)

        writer = asyncio.get_running_loop().run_in_executor(None, feed)  # a full pipe blocks the writer, not the loop
        assert await asyncio.wait_for(_drain(reader, pause), 60) == data
        await writer
        assert most[0] <= 4
        reader.close()
    finally:
        os.close(read_end)


def test_sigterm_during_a_raw_session_undoes_raw_mode_and_exits_143() -> None:
    """A real process on its own pty: raw mode on, SIGTERM arrives, the terminal is as it was and the code is 128+15."""
    import pty
    import signal
    import sys
    import time

    program = (
        "import asyncio, sys\n"
        "from corral.cli import terminal\n"
        "async def session():\n"
        "    print('RAW', flush=True)\n"
        "    await asyncio.sleep(60)\n"
        "    return 0\n"
        "sys.exit(asyncio.run(terminal.while_raw(0, session())))\n"
    )
    pid, master = pty.fork()
    if pid == 0:
        os.execv(sys.executable, [sys.executable, "-c", program])
    try:
        before = termios.tcgetattr(master)  # the master reports the terminal's settings (Linux)
        seen, deadline = b"", time.monotonic() + 20
        while b"RAW" not in seen and time.monotonic() < deadline:
            seen += os.read(master, 1024)
        assert b"RAW" in seen, seen
        assert not termios.tcgetattr(master)[3] & termios.ICANON
        os.kill(pid, signal.SIGTERM)
        _, status = os.waitpid(pid, 0)
        pid = 0
        assert os.waitstatus_to_exitcode(status) == 143
        assert termios.tcgetattr(master)[3] & termios.ICANON and termios.tcgetattr(master)[3] == before[3]
    finally:
        if pid:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        os.close(master)
