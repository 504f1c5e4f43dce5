"""Watching rollouts: a live progress line per service until each converges, pauses or rolls back.

Used by `corral service update|rollback|promote --watch` and `corral deploy`.
It only reads `GET /v1/services/{name}` (the service's update_status and
running/desired counts); it decides nothing.
"""

import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import typer

from corral.cli.output import rich_console

if TYPE_CHECKING:
    from corral.client import ManagerClient

WatchOption = typer.Option(
    None, "--watch/--detach", help="follow the rollout until it converges (default on a terminal), or return at once"
)


def should_watch(flag: bool | None) -> bool:
    return sys.stdout.isatty() if flag is None else flag


@dataclass(frozen=True)
class Outcome:
    ok: bool
    message: str


def outcome(service: dict[str, Any], rolling_back: bool = False) -> Outcome | None:
    """How the service's rollout ended, or None while it goes on. `rolling_back`: a rollback was asked for."""
    status: dict[str, Any] = service.get("update_status") or {}
    state = status["state"] if status else None
    converged = service["running"] == service["replicas"]
    if state in (None, "completed"):
        return Outcome(True, "converged" if state is None else "update completed") if converged else None
    if state == "rollback_completed":
        if rolling_back:
            return Outcome(True, "rollback completed") if converged else None
        return Outcome(False, status["message"] or "update rolled back")
    if state in ("paused", "rollback_paused"):
        return Outcome(False, status["message"] or state.replace("_", " "))
    if state == "canary_hold":
        return Outcome(True, status["message"] or "canary holding")
    return None


def progress_of(service: dict[str, Any]) -> tuple[int, int, str]:
    """(updated, total, phase) for the progress line."""
    status = service.get("update_status")
    if status is None:
        return service["running"], service["replicas"], "starting"
    return status["updated"], status["total"], status["state"].replace("_", " ")


async def watch(client: "ManagerClient", names: list[str], rolling_back: bool = False, interval: float = 0.5) -> bool:
    """Follow the rollouts of `names`; prints how each ended. True when every one converged."""
    import asyncio

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn  # rich: only a watch

    console, errors = rich_console("console"), rich_console("errors")
    results: dict[str, Outcome] = {}
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[phase]}"), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=not console.is_terminal) as progress:
        lines = {name: progress.add_task(name, total=None, phase="") for name in names}
        while len(results) < len(names):
            for name in names:
                if name in results:
                    continue
                service = await client.get(f"/v1/services/{name}")
                updated, total, phase = progress_of(service)
                progress.update(lines[name], completed=updated, total=max(total, 1), phase=phase)
                ended = outcome(service, rolling_back)
                if ended is not None:
                    results[name] = ended
            if len(results) < len(names):
                await asyncio.sleep(interval)
    for name in names:
        result = results[name]
        if result.ok:
            console.print(f"{name}: {result.message}", highlight=False)
        else:
            errors.print(f"[red]error:[/red] {name}: {result.message}", highlight=False)
    return all(result.ok for result in results.values())
