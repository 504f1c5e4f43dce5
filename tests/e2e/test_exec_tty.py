"""`corral exec -it` on real containers: a shell on a terminal whose size follows the local one, its exit code;
`-i` with piped stdin; who may open a session."""

import fcntl
import json
import os
import pty
import re
import select
import struct
import sys
import termios
import time

from tests.e2e.cluster import CORRAL, Cluster

STACK = """
services:
  web:
    image: corral-demo:latest
    stop_grace_period: 1s
    deploy: {replicas: 2}
"""


def _set_size(fd: int, rows: int, cols: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


class Terminal:
    """The CLI run on a pseudo-terminal of its own (its controlling terminal, so it gets SIGWINCH)."""

    def __init__(self, argv: list[str], env: dict[str, str], rows: int, cols: int) -> None:
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: its stdin/stdout/stderr are the terminal
            try:
                _set_size(0, rows, cols)
                os.execve(sys.executable, argv, env)
            finally:
                os._exit(127)
        self.seen = b""
        self.at = 0  # where the next read_until looks from

    def type(self, text: str) -> None:
        os.write(self.fd, text.encode())

    def resize(self, rows: int, cols: int) -> None:
        _set_size(self.fd, rows, cols)  # the kernel sends the CLI SIGWINCH

    def read_until(self, pattern: bytes, timeout: float, retype: str | None = None) -> re.Match[bytes]:
        """Read output until `pattern` matches what came after the last call; type `retype` again each second."""
        start, deadline, next_type = self.at, time.monotonic() + timeout, time.monotonic() + 1
        while time.monotonic() < deadline:
            found = re.search(pattern, self.seen[start:])
            if found:
                self.at = start + found.end()
                return found
            if retype is not None and time.monotonic() > next_type:
                self.type(retype)
                next_type = time.monotonic() + 1
            ready, _, _ = select.select([self.fd], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(self.fd, 4096)
                except OSError:  # the child closed the terminal
                    break
                self.seen += chunk
        raise AssertionError(f"{pattern!r} not seen in {timeout} s; the terminal showed:\n{self.seen[start:].decode(errors='replace')}")

    def wait(self, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if select.select([self.fd], [], [], 0.1)[0]:
                try:
                    self.seen += os.read(self.fd, 4096)
                except OSError:
                    pass
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.pid = 0
                return os.waitstatus_to_exitcode(status)
        raise AssertionError(f"the CLI did not end in {timeout} s; the terminal showed:\n{self.seen.decode(errors='replace')}")

    def close(self) -> None:
        if self.pid:
            os.kill(self.pid, 9)
            os.waitpid(self.pid, 0)
        os.close(self.fd)


def test_exec_it_terminal_resize_exit_code_and_piped_stdin(cluster: Cluster, compose_file) -> None:
    cluster.cli("deploy", "-c", str(compose_file(STACK)), "--name", "tt")
    tasks = {t["slot"]: t for t in cluster.wait_running("tt_web", 2)}

    # -it on a terminal of 33x101: `stty size` in the container says so, then follows a resize to 40x120; `exit 3` is the CLI's code
    terminal = Terminal([*CORRAL, "exec", "tt_web", "--slot", "2", "-it", "--", "sh"], cluster.cli_env(), 33, 101)
    try:
        terminal.read_until(rb"[#$] ", 20)  # the shell's prompt
        terminal.type("stty size; hostname\r")
        terminal.read_until(rb"\r\n33 101\r\n", 10)
        host = terminal.read_until(rb"([0-9a-f]{12})\r\n", 10).group(1).decode()
        container = next(c for c in cluster.containers(service="tt_web") if c.labels["corral.slot"] == "2")
        assert container.id.startswith(host), (host, container.id)  # the replica --slot asked for
        terminal.resize(40, 120)
        terminal.read_until(rb"\r\n40 120\r\n", 10, retype="stty size\r")
        terminal.type("exit 3\r")
        assert terminal.wait(15) == 3
    finally:
        terminal.close()

    # -i, stdin piped (no terminal): `cat` gets it all, then its end; the command's exit code comes back
    echoed = cluster.cli("exec", "-i", tasks[1]["id"], "--", "cat", stdin="hi\nthere\n")
    assert echoed.stdout == "hi\nthere\n", echoed
    big = "".join(f"line {n:06d}\n" for n in range(250_000))  # 3 MB: far more than the CLI reads ahead (16 chunks)
    assert cluster.cli("exec", "-i", "tt_web", "--", "cat", stdin=big).stdout == big
    counted = cluster.cli("exec", "-i", "tt_web", "--", "sh", "-c", "wc -l; echo oops >&2; exit 4", stdin=big, check=False)
    assert (counted.returncode, counted.stdout.strip(), counted.stderr.strip()) == (4, "250000", "oops"), counted
    # -it without a terminal on stdin: a warning, then the command runs without one (as kubectl)
    no_tty = cluster.cli("exec", "-it", "tt_web", "--", "sh", "-c", "test -t 0 || echo no terminal", stdin="")
    assert no_tty.stdout == "no terminal\n" and "Unable to use a TTY" in no_tty.stderr, no_tty
    # -t alone: a terminal, no stdin
    assert cluster.cli("exec", "-t", "tt_web", "--", "sh", "-c", "test -t 1 && echo terminal").stdout == "terminal\n"  # (\r\n: text mode)

    # what cannot run says why, exit code 1
    missing = cluster.cli("exec", "-i", "tt_web", "--", "/no/such/program", stdin="", check=False)
    assert missing.returncode != 0 and "no/such/program" in (missing.stderr + missing.stdout), missing
    none = cluster.cli("exec", "-it", "nosuch.1", "--", "sh", stdin="", check=False)
    assert none.returncode == 1 and "nosuch" in none.stderr, none

    # a session is for admins: a viewer token is refused, with the role it needs
    viewer = json.loads(cluster.cli("token", "create", "--name", "look", "--role", "viewer", "-o", "json").stdout)
    refused = cluster.cli("exec", "-i", "tt_web", "--", "cat", stdin="x", check=False, env={"CORRAL_TOKEN": viewer["token"]})
    assert refused.returncode == 1 and "admin" in refused.stderr, refused
    refused = cluster.cli("exec", "-i", "tt_web", "--", "cat", stdin="x", check=False, env={"CORRAL_TOKEN": "not-a-token"})
    assert refused.returncode == 1 and "malformed token" in refused.stderr, refused  # (tests/manager: the session's own check)
