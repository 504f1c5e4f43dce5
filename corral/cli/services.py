"""`corral service ls|ps|inspect|scale|rm`."""

import typer

from corral.cli.output import ManagerOption, OutputOption, ago, call, check_output, emit, emit_one, fail

app = typer.Typer(help="Services: replicated containers.", no_args_is_help=True)


@app.command("ls")
def list_services(
    stack: str | None = typer.Option(None, "--stack", help="only this stack's services"),
    output: str = OutputOption,
    manager: str | None = ManagerOption,
) -> None:
    """List services with their replicas running / desired."""
    check_output(output)
    rows = call(manager, lambda c: c.get("/v1/services", stack=stack))
    emit(
        rows,
        output,
        [
            ("NAME", lambda r: r["name"]),
            ("MODE", lambda r: r["mode"]),
            ("REPLICAS", lambda r: f"{r['running']}/{r['replicas']}"),
            ("IMAGE", lambda r: r["image"]),
            ("PORTS", lambda r: ", ".join(r["ports"]) or "-"),
            ("VERSION", lambda r: r["version"]),
        ],
    )


@app.command("ps")
def service_tasks(
    service: str,
    all_tasks: bool = typer.Option(False, "--all", "-a", help="include ended tasks"),
    output: str = OutputOption,
    manager: str | None = ManagerOption,
) -> None:
    """List a service's tasks: where each replica runs, its state, and why."""
    check_output(output)
    rows = call(manager, lambda c: c.get(f"/v1/services/{service}/tasks"))
    if not all_tasks:
        rows = [r for r in rows if r["desired_state"] == "running" or r["state"] not in _ENDED]
    emit(
        rows,
        output,
        [
            ("ID", lambda r: r["id"][:12]),
            ("NAME", lambda r: f"{r['service']}.{r['slot'] if r['slot'] is not None else r['node']}"),
            ("IMAGE", lambda r: r["image"]),
            ("NODE", lambda r: r["node"] or "-"),
            ("DESIRED", lambda r: r["desired_state"]),
            ("STATE", lambda r: f"{r['state']} {ago(r['updated_at'])}"),
            ("ADDRESS", lambda r: r["address"] or "-"),
            ("ERROR", lambda r: r["error"] or ""),
        ],
    )


_ENDED = {"complete", "failed", "shutdown", "rejected", "lost", "orphaned"}


@app.command("inspect")
def inspect_service(service: str, manager: str | None = ManagerOption) -> None:
    """Show a service's full spec and status as JSON."""
    emit_one(call(manager, lambda c: c.get(f"/v1/services/{service}")))


@app.command("scale")
def scale(assignments: list[str] = typer.Argument(..., help="SERVICE=REPLICAS ..."), manager: str | None = ManagerOption) -> None:
    """Set the number of replicas of one or more services."""
    wanted: list[tuple[str, int]] = []
    for item in assignments:
        name, sep, count = item.partition("=")
        if not sep or not name or not count.isdigit():
            fail(f"invalid scale {item!r}: expected SERVICE=REPLICAS with a non-negative integer")
        wanted.append((name, int(count)))

    async def run(client):  # type: ignore[no-untyped-def]
        for name, count in wanted:
            await client.post(f"/v1/services/{name}/scale", {"replicas": count})
            typer.echo(f"{name} scaled to {count}")

    call(manager, run)


@app.command("rm")
def remove(services: list[str], manager: str | None = ManagerOption) -> None:
    """Remove services."""

    async def run(client):  # type: ignore[no-untyped-def]
        for name in services:
            await client.request("DELETE", f"/v1/services/{name}")
            typer.echo(name)

    call(manager, run)
