"""`corral manager` (run a manager: `daemons.manager`) and `corral manager ls` (the managers of the control plane)."""

import typer

from corral.cli import daemons
from corral.cli.output import ManagerOption, OutputOption, call, check_output, emit

app = typer.Typer(help="Run a manager, or list the managers of the control plane.")
app.callback(invoke_without_command=True)(daemons.manager)


@app.command("ls")
def list_managers(output: str = OutputOption, manager: str | None = ManagerOption) -> None:
    """List the managers: their URL, which one leads (`leader` in --output json), whether each answers now."""
    check_output(output)
    rows = call(manager, lambda c: c.get("/v1/managers"))
    emit(
        rows,
        output,
        [
            ("NAME", lambda r: r["name"]),
            ("URL", lambda r: r["url"]),
            ("LEADER", lambda r: "*" if r["leader"] else ""),
            ("HEALTH", lambda r: "healthy" if r["healthy"] else f"unhealthy: {r['error']}"),
        ],
    )
