"""How the CLI talks to people and scripts: tables, JSON, and the one error printer.

Every command imports this module, so it imports nothing heavy at its top (issue 21: `corral service ls` under
150 ms): rich (~25 ms) comes with the first use of `console` or `errors` (a module `__getattr__`) or of `emit`,
asyncio (~20 ms) with the first `call`. `call_plain` runs a call with the standard-library client and no event loop.
"""

import json
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import typer

from corral.cli import credentials
from corral.cli.credentials import DEFAULT_MANAGER
from corral.client import ApiError

if TYPE_CHECKING:
    from rich.console import Console

    from corral.client import ManagerClient, PlainClient

    console: Console  # made on first use, by __getattr__
    errors: Console

T = TypeVar("T")


def rich_console(name: str) -> "Console":
    """The rich console `console` (stdout) or `errors` (stderr), made when a command first prints with it."""
    if name not in globals():
        from rich.console import Console

        globals().update({  # scripts and pipes get whole lines, never columns cut at 80 characters
            "console": Console(width=None if sys.stdout.isatty() else 250),
            "errors": Console(stderr=True, width=None if sys.stderr.isatty() else 250),
        })
    found: Console = globals()[name]
    return found


def __getattr__(name: str) -> "Console":
    """`from corral.cli.output import console` (or `errors`): made here, on first use."""
    if name not in ("console", "errors"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return rich_console(name)


ManagerOption = typer.Option(None, "--manager", envvar="CORRAL_MANAGER", help=f"manager URL (default {DEFAULT_MANAGER})")
OutputOption = typer.Option("table", "--output", "-o", help="table or json")


def call(manager: str | None, fn: "Callable[[ManagerClient], Awaitable[T]]") -> T:
    """Run one API interaction; an API error becomes a message and exit code 1."""
    import asyncio

    async def run() -> T:
        async with credentials.client(manager) as client:  # the URL, token and CA: corral/cli/credentials.py
            return await fn(client)

    return _answered(manager, lambda: asyncio.run(run()))


def call_plain(manager: str | None, fn: "Callable[[PlainClient], T]") -> T:
    """`call` for one-off listings: the blocking standard-library client (corral/client/plain.py), no event loop."""

    def run() -> T:
        with credentials.plain_client(manager) as client:  # found as `call`'s client
            return fn(client)

    return _answered(manager, run)


def _answered(manager: str | None, run: Callable[[], T]) -> T:
    try:
        return run()
    except ApiError as err:
        said = credentials.explain(err, credentials.manager_url(manager))
        fail(f"{err.path}: {said}" if err.path and not said.startswith(err.path) else said)
    except KeyboardInterrupt:
        raise typer.Exit(130)


RED, PLAIN = "\033[31m", "\033[0m"


def fail(message: str, code: int = 1) -> NoReturn:
    """`error: message` on stderr (`error:` in red on a terminal), and exit with `code`."""
    label = f"{RED}error:{PLAIN}" if sys.stderr.isatty() else "error:"
    sys.stderr.write(f"{label} {message}\n")
    sys.stderr.flush()
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
    from rich.table import Table  # rich's tables wrap to the terminal's width

    table = Table(box=None, pad_edge=False, header_style="bold")
    for title, _ in columns:
        table.add_column(title)
    for row in rows:
        table.add_row(*[str(get(row)) for _, get in columns])
    rich_console("console").print(table)


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
