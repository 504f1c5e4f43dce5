"""How the CLI talks to people and scripts: tables, JSON, and the one error printer."""

import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar, cast

import typer

from corral.cli import credentials
from corral.cli.credentials import DEFAULT_MANAGER
from corral.client import ApiError, ManagerClient

T = TypeVar("T")

DEFAULT_MANAGER = "https://127.0.0.1:7070"
if TYPE_CHECKING:
    from rich.console import Console


class _LazyConsole:
    """A rich Console made at its first use: rich costs 2.2 MiB and ~30 ms, which a daemon (`corral agent`) that only
    logs, or a command that prints JSON, need not pay."""

    def __init__(self, stderr: bool) -> None:
        self._stderr = stderr
        self._console: "Console | None" = None

    def __getattr__(self, name: str) -> Any:
        if self._console is None:
            from rich.console import Console

            stream = sys.stderr if self._stderr else sys.stdout
            # Scripts and pipes get whole lines, never columns cut at 80 characters.
            self._console = Console(stderr=self._stderr, width=None if stream.isatty() else 250)
        return getattr(self._console, name)


console = cast("Console", _LazyConsole(stderr=False))
errors = cast("Console", _LazyConsole(stderr=True))

ManagerOption = typer.Option(None, "--manager", envvar="CORRAL_MANAGER", help=f"manager URL (default {DEFAULT_MANAGER})")
OutputOption = typer.Option("table", "--output", "-o", help="table or json")


def call(manager: str | None, fn: Callable[[ManagerClient], Awaitable[T]]) -> T:
    """Run one API interaction; an API error becomes a message and exit code 1."""

    async def run() -> T:
        async with credentials.client(manager) as client:  # the URL, token and CA: corral/cli/credentials.py
            return await fn(client)

    try:
        return asyncio.run(run())
    except ApiError as err:
        said = credentials.explain(err, credentials.manager_url(manager))
        fail(f"{err.path}: {said}" if err.path and not said.startswith(err.path) else said)
    except KeyboardInterrupt:
        raise typer.Exit(130)


def fail(message: str, code: int = 1) -> NoReturn:
    errors.print(f"[red]error:[/red] {message}", highlight=False, markup=True)
    raise typer.Exit(code)


_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def duration(value: str, option: str) -> float:
    number, unit = (value[:-1], value[-1]) if value and value[-1] in _UNITS else (value, "s")
    try:
        seconds = float(number) * _UNITS[unit]
    except ValueError:
        fail(f"{option}: invalid duration {value!r}: expected e.g. 90d, 12h, 30m or 600s")
    if not seconds > 0:
        fail(f"{option}: must be more than 0, got {value!r}")
    return seconds


def check_output(output: str) -> None:
    if output not in ("table", "json"):
        fail(f"--output: unknown format {output!r}: expected table or json")


def emit(rows: Sequence[dict[str, Any]], output: str, columns: list[tuple[str, Callable[[dict[str, Any]], Any]]]) -> None:
    """Print rows as a JSON array (every field) or a table (the chosen columns)."""
    if output == "json":
        sys.stdout.write(json.dumps(list(rows), indent=2) + "\n")
        return
    from rich.table import Table

    table = Table(box=None, pad_edge=False, header_style="bold")
    for title, _ in columns:
        table.add_column(title)
    for row in rows:
        table.add_row(*[str(get(row)) for _, get in columns])
    console.print(table)


def emit_one(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj, indent=2) + "\n")


def ago(timestamp: float) -> str:
    if not timestamp:
        return "-"
    seconds = max(0.0, time.time() - timestamp)
    if seconds < 60:
        return f"{seconds:.0f}s ago"
    if seconds < 3600:
        return f"{seconds / 60:.0f}m ago"
    return f"{seconds / 3600:.1f}h ago"


def size(value: int) -> str:
    amount = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if amount < 1024 or unit == "TiB":
            return f"{amount:.0f}{unit}" if unit == "B" else f"{amount:.1f}{unit}"
        amount /= 1024
    return str(amount)
