"""The local end of `corral exec -i/-t`: raw mode is undone whatever happens; -t without a terminal gives none."""

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


async def _drain(queue) -> bytes:
    got = b""
    while (chunk := await queue.get()) is not None:
        got += chunk
    return got


async def test_stdin_is_read_whole_from_a_pipe_and_from_a_regular_file(tmp_path) -> None:
    import asyncio

    data = b"".join(b"line %06d\n" % n for n in range(10_000))
    path = tmp_path / "input"
    path.write_bytes(data)
    with path.open("rb") as regular:
        queue: asyncio.Queue = asyncio.Queue()
        terminal._read_stdin(regular.fileno(), queue)  # the loop cannot watch a regular file: a thread reads it
        assert await asyncio.wait_for(_drain(queue), 10) == data

    read_end, write_end = os.pipe()
    try:
        queue = asyncio.Queue()
        terminal._read_stdin(read_end, queue)

        def feed() -> None:
            os.write(write_end, data[:5000])
            os.write(write_end, data[5000:])
            os.close(write_end)

        writer = asyncio.get_running_loop().run_in_executor(None, feed)  # a full pipe blocks the writer, not the loop
        assert await asyncio.wait_for(_drain(queue), 10) == data
        await writer
    finally:
        os.close(read_end)
