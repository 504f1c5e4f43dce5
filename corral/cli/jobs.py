"""`corral job run|runs`: run a job again, and its last runs with their outcome."""

from datetime import datetime
from typing import TYPE_CHECKING, Any

import typer

from corral.cli.output import ManagerOption, OutputOption, call, check_output, emit

if TYPE_CHECKING:
    from corral.client import ManagerClient

app = typer.Typer(help="Jobs: services whose tasks run to completion.", no_args_is_help=True)


@app.command("run")
def run_job(service: str, manager: str | None = ManagerOption) -> None:
    """Run a job again (a new run with every completion to do)."""

    async def run(client: "ManagerClient") -> None:
        result = await client.post(f"/v1/services/{service}/run", None)
        typer.echo(f"{service}: run {result['job_status']['run']} started")

    call(manager, run)


@app.command("runs")
def job_runs(service: str, output: str = OutputOption, manager: str | None = ManagerOption) -> None:
    """List a job's current run and the runs before it, newest first."""
    check_output(output)
    found = call(manager, lambda c: c.get(f"/v1/services/{service}"))
    emit(run_rows(found), output, RUN_COLUMNS)


def run_rows(service: dict[str, Any]) -> list[dict[str, Any]]:
    """The runs of a service as the API gives it (none for a service that is not a job), newest first."""
    status = service.get("job_status")
    if not status or not status["run"]:
        return []
    current = {key: status[key] for key in ("run", "state", "started_at", "ended_at", "completed", "failed", "message")}
    return [current, *reversed(status["history"])]


def _when(moment: float | None) -> str:
    return datetime.fromtimestamp(moment).strftime("%H:%M:%S") if moment else "-"


RUN_COLUMNS: list[tuple[str, Any]] = [
    ("RUN", lambda r: r["run"]),
    ("OUTCOME", lambda r: r["state"]),
    ("STARTED", lambda r: _when(r["started_at"])),
    ("ENDED", lambda r: _when(r["ended_at"])),
    ("COMPLETED", lambda r: r["completed"]),
    ("FAILED", lambda r: r["failed"]),
    ("MESSAGE", lambda r: r["message"] or ""),
]
