"""`corral service logs SERVICE` and `corral task logs TASK`: the output of tasks on every node, in one stream.

Each line is prefixed with its task and node (`web.2@node-1 | ...`, one colour
per task on a terminal); container stderr goes to stderr. `--output json`
prints one object per line with `stream` (stdout or stderr) kept apart.
Lines are written as they come and flushed within 50 ms, not per line, so a
fast stream is not held up by one write call per line.
"""

import datetime
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

import typer

from corral.cli.output import ManagerOption, OutputOption, call, check_output, fail

if TYPE_CHECKING:
    import asyncio

    from corral.client import ManagerClient

task_app = typer.Typer(help="Tasks: one replica's container.", no_args_is_help=True)

COLOURS = (36, 33, 32, 35, 34, 91, 96, 93, 92, 95, 94)  # ANSI foreground codes, one per task in order of appearance
FLUSH_AFTER = 0.05


def parse_since(value: str, now: float) -> float:
    """Epoch seconds of `--since`: a duration ago (`10m`, `1h30m`, `90s`) or an RFC 3339 time."""
    from corral.compose.durations import parse_duration  # corral.compose: not for every `corral service` command
    from corral.model.errors import InvalidSpec

    try:
        return now - parse_duration(value, "--since")
    except InvalidSpec:
        pass
    try:
        moment = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"--since: {value!r} is neither a duration (10m, 1h30m) nor an RFC 3339 time (2026-12-02T13:00:00Z)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return moment.timestamp()


@dataclass
class LineFormat:
    prefix: bool = True
    timestamps: bool = False
    raw: bool = False
    colour: bool = False

    def __post_init__(self) -> None:
        self._colours: dict[str, int] = {}

    def render(self, item: dict[str, Any], width: int) -> str:
        """One line as people read it (without its newline)."""
        text = item["line"] if "line" in item else f"[{item.get('notice', '')}]"
        if self.raw:
            return str(text)
        parts = []
        if self.prefix:
            label = f"{item['name']}@{item['node']}".ljust(width)
            if self.colour:
                code = self._colours.setdefault(item["task"], COLOURS[len(self._colours) % len(COLOURS)])
                label = f"\x1b[{code}m{label}\x1b[0m"
            parts.append(f"{label} | ")
        if self.timestamps and item.get("time"):
            parts.append(f"{item['time']} ")
        parts.append(str(text))
        return "".join(parts)


class Printer:
    """Writes lines to stdout and stderr, flushing both at most FLUSH_AFTER seconds after a write."""

    def __init__(self, out: TextIO, err: TextIO) -> None:
        self.out, self.err = out, err
        self._pending: "asyncio.TimerHandle | None" = None

    def write(self, stream: TextIO, text: str) -> None:
        stream.write(text)
        if self._pending is None:
            import asyncio  # imported by the running loop already: free here, not at every CLI start

            self._pending = asyncio.get_running_loop().call_later(FLUSH_AFTER, self.flush)

    def flush(self) -> None:
        self._pending = None
        self.out.flush()
        self.err.flush()


async def print_logs(client: "ManagerClient", path: str, params: dict[str, Any], output: str, fmt: LineFormat) -> None:
    printer = Printer(sys.stdout, sys.stderr)
    width = 0
    try:
        async for item in client.stream(path, **params):
            if output == "json":
                printer.write(sys.stdout, json.dumps(item) + "\n")
                continue
            width = max(width, len(f"{item['name']}@{item['node']}"))
            to = sys.stderr if item.get("stream") == "stderr" or "notice" in item else sys.stdout
            printer.write(to, fmt.render(item, width) + "\n")
    finally:
        printer.flush()


def _logs_command(path_of: Callable[[str], str], what: str) -> Callable[..., None]:
    def command(
        target: str = typer.Argument(..., help=what),
        follow: bool = typer.Option(False, "--follow", "-f", help="go on with new lines (and new replicas) until interrupted"),
        tail: int | None = typer.Option(None, "--tail", "-n", min=0, help="only the last N lines of each task"),
        since: str | None = typer.Option(None, "--since", help="only lines since a duration ago (10m) or a time (RFC 3339)"),
        timestamps: bool = typer.Option(False, "--timestamps", "-t", help="show the engine's time of each line"),
        no_prefix: bool = typer.Option(False, "--no-prefix", help="no task@node prefix"),
        raw: bool = typer.Option(False, "--raw", help="the lines only, as the containers wrote them"),
        output: str = OutputOption,
        manager: str | None = ManagerOption,
    ) -> None:
        check_output(output)
        params: dict[str, Any] = {"follow": "true" if follow else "false"}
        if tail is not None:
            params["tail"] = tail
        if since is not None:
            try:
                params["since"] = parse_since(since, time.time())
            except ValueError as err:
                fail(str(err))
        fmt = LineFormat(prefix=not no_prefix, timestamps=timestamps, raw=raw, colour=sys.stdout.isatty())
        call(manager, lambda client: print_logs(client, path_of(target), params, output, fmt))

    command.__doc__ = f"Show the output of {what}, prefixed with task and node (as `docker service logs`)."
    return command


service_logs = _logs_command(lambda name: f"/v1/services/{name}/logs", "every task of a service, on every node")
task_app.command("logs")(_logs_command(lambda ref: f"/v1/tasks/{ref}/logs", "one task (id, id prefix, or SERVICE.SLOT)"))
