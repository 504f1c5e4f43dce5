"""`corral service top SERVICE`, `corral node top [NODE]`: live CPU and memory of each running task, or of each
node (as `kubectl top`), a table that refreshes.

service top: CPU is the difference of two samples of the task's CPU seconds over the time between them; the
manager and the agents keep nothing between calls. `--output json` prints one sample (two reads a second apart).
node top: the agents measure (the sum of their containers, CPU over their own two samples:
corral/agent/node_usage.py), so one read is one sample; shown beside each node's capacity and reservations.
"""

import json
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import typer

from corral.cli.output import ManagerOption, OutputOption, call, check_output, emit, size

if TYPE_CHECKING:
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


def _shown(rows: list[dict[str, Any]], output: str, columns: list[tuple[str, Callable[[dict[str, Any]], Any]]]) -> bool:
    """Print a sample: as JSON, and the command is done (True); or as a table, over the last one on a terminal."""
    if output == "json":
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return True
    if sys.stdout.isatty():
        sys.stdout.write("\x1b[H\x1b[2J")
    emit(rows, "table", columns)
    sys.stdout.flush()
    return False


def service_top(
    service: str,
    interval: float = typer.Option(2.0, "--interval", min=0.5, help="seconds between refreshes"),
    output: str = OutputOption,
    manager: str | None = ManagerOption,
) -> None:
    """Show the CPU and memory of a service's running tasks, refreshed until interrupted (--output json: once)."""
    check_output(output)
    path = f"/v1/services/{service}/top"

    async def run(client: "ManagerClient") -> None:
        import asyncio  # imported by `call`: free here, not at every CLI start

        before = {row["task"]: row for row in await client.get(path)}
        while True:
            await asyncio.sleep(1.0 if output == "json" else interval)
            rows = with_cpu(await client.get(path), before)
            if _shown(rows, output, COLUMNS):
                return
            before = {row["task"]: row for row in rows}

    call(manager, run)


def _share(part: float, whole: float) -> str:
    return f"{100 * part / whole:.0f}%" if whole > 0 else "-"


def _used(row: dict[str, Any], key: str, show: Callable[[Any], str]) -> str:
    return show(row["used"][key]) if row.get("used") else "-"


NODE_COLUMNS = [
    ("NAME", lambda r: r["node"]),
    ("CPU(cores)", lambda r: _used(r, "cpus", lambda v: f"{v:.2f}")),
    ("CPU%", lambda r: _used(r, "cpus", lambda v: _share(v, r["resources"]["cpus"]))),
    ("CPU RESERVED", lambda r: f"{r['reserved']['cpus']:g}/{r['resources']['cpus']:g}"),
    ("MEMORY", lambda r: _used(r, "memory", size)),
    ("MEMORY%", lambda r: _used(r, "memory", lambda v: _share(v, r["resources"]["memory"]))),
    ("MEMORY RESERVED", lambda r: f"{size(r['reserved']['memory'])}/{size(r['resources']['memory'])}"),
    ("TASKS", lambda r: r["tasks"]),
    ("ERROR", lambda r: r.get("error", "")),
]


def node_top(
    node: str | None = typer.Argument(None, help="only this node"),
    interval: float = typer.Option(2.0, "--interval", min=0.5, help="seconds between refreshes"),
    output: str = OutputOption,
    manager: str | None = ManagerOption,
) -> None:
    """Show each node's CPU and memory: used now, reserved, capacity; refreshed until interrupted (--output json: once)."""
    check_output(output)

    async def run(client: "ManagerClient") -> None:
        import asyncio  # imported by `call`: free here, not at every CLI start

        while True:
            if _shown(await client.get("/v1/top/nodes", node=node), output, NODE_COLUMNS):
                return
            await asyncio.sleep(interval)

    call(manager, run)
