"""`corral deploy` and `corral stack ls|rm`."""

from pathlib import Path

import typer

from corral.cli.output import ManagerOption, OutputOption, call, check_output, console, emit, errors, fail
from corral.cli.rollouts import WatchOption, should_watch, watch

app = typer.Typer(help="Stacks: groups of services deployed from one compose file.", no_args_is_help=True)


def deploy(
    compose_file: Path = typer.Option(..., "--compose-file", "-c", help="the compose file"),
    name: str = typer.Option(..., "--name", "-n", help="the stack's name; services are named STACK_SERVICE"),
    dry_run: bool = typer.Option(False, "--dry-run", help="validate and show what would change; change nothing"),
    prune: bool = typer.Option(False, "--prune", help="remove the stack's services the file no longer has"),
    watch_flag: bool | None = WatchOption,
    manager: str | None = ManagerOption,
) -> None:
    """Create or update a stack's services from a compose file (as `docker stack deploy`)."""
    try:
        text = compose_file.read_text()
    except OSError as err:
        fail(f"cannot read {compose_file}: {err.strerror}")
    result = call(
        manager,
        lambda c: c.post(f"/v1/stacks/{name}/deploy", {"compose": text, "dry_run": dry_run, "prune": prune}),
    )
    for warning in result["warnings"]:
        errors.print(f"[yellow]warning:[/yellow] {warning}", highlight=False)
    verb = "would " if dry_run else ""
    for label, key in (("create", "created"), ("update", "updated"), ("remove", "removed")):
        for service in result[key]:
            past = {"create": "Created", "update": "Updated", "remove": "Removed"}[label]
            console.print(f"{verb + label if dry_run else past} service {service}", highlight=False)
    for service in result["unchanged"]:
        console.print(f"Unchanged service {service}", highlight=False)
    if dry_run:
        console.print("Dry run: nothing was changed.")
        return
    changed = [*result["created"], *result["updated"]]
    if changed and should_watch(watch_flag) and not call(manager, lambda c: watch(c, changed)):
        raise typer.Exit(1)


@app.command("ls")
def list_stacks(output: str = OutputOption, manager: str | None = ManagerOption) -> None:
    """List stacks."""
    check_output(output)
    rows = call(manager, lambda c: c.get("/v1/stacks"))
    emit(rows, output, [("NAME", lambda r: r["name"]), ("SERVICES", lambda r: r["services"]), ("TASKS", lambda r: r["tasks"])])


@app.command("rm")
def remove_stack(name: str, manager: str | None = ManagerOption) -> None:
    """Remove a stack: its services, and so its containers."""
    result = call(manager, lambda c: c.request("DELETE", f"/v1/stacks/{name}"))
    for service in result["removed"]:
        console.print(f"Removing service {service}", highlight=False)
