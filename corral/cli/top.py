"""`corral service top SERVICE`: live CPU and memory of each running task (as `kubectl top`), a table that refreshes.

CPU is the difference of two samples of the task's CPU seconds over the time between them; the manager
and the agents keep nothing between calls. `--output json` prints one sample (two reads a second apart).
"""

import asyncio
import json
import sys
from typing import Any

import typer

from corral.cli.output import ManagerOption, OutputOption, call, check_output, emit, size
from corral.client import ManagerClient


def with_cpu(now: list[dict[str, Any]], before: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Each row of `now` with `cpu_percent` (of one core) since its row in `before` (None without one)."""
    rows = []
    for row in now:
        earlier = before.get(row["task"])
        percent = None
        if earlier and "cpu_seconds" in row and "cpu_seconds" in earlier and row["time"] > earlier["time"]:
            percent = round(100 * (row["cpu_seconds"] - earlier["cpu_seconds"]) / (row["time"] - earlier["time"]), 1)
        rows.append({**row, "cpu_percent": percent})
    return rows


COLUMNS = [
    ("NAME", lambda r: r["name"]),
    ("NODE", lambda r: r["node"]),
    ("CPU %", lambda r: "-" if r.get("cpu_percent") is None else f"{r['cpu_percent']:.1f}"),
    ("MEMORY", lambda r: size(r["memory_working_set"]) if "memory_working_set" in r else "-"),
    ("NET RX/TX", lambda r: f"{size(r['rx_bytes'])}/{size(r['tx_bytes'])}" if "rx_bytes" in r else "-"),
    ("ERROR", lambda r: r.get("error", "")),
]


def service_top(
    service: str,
    interval: float = typer.Option(2.0, "--interval", min=0.5, help="seconds between refreshes"),
    output: str = OutputOption,
    manager: str | None = ManagerOption,
) -> None:
    """Show the CPU and memory of a service's running tasks, refreshed until interrupted (--output json: once)."""
    check_output(output)
    path = f"/v1/services/{service}/top"

    async def run(client: ManagerClient) -> None:
        before = {row["task"]: row for row in await client.get(path)}
        while True:
            await asyncio.sleep(1.0 if output == "json" else interval)
            rows = with_cpu(await client.get(path), before)
            if output == "json":
                sys.stdout.write(json.dumps(rows, indent=2) + "\n")
                return
            if sys.stdout.isatty():
                sys.stdout.write("\x1b[H\x1b[2J")
            emit(rows, "table", COLUMNS)
            before = {row["task"]: row for row in rows}

    call(manager, run)
