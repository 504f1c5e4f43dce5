"""`corral deploy` and `corral stack ls|rm`."""

import os
from pathlib import Path

import typer

from corral.cli.builds import built_compose
from corral.cli.output import ManagerOption, OutputOption, call, check_output, console, emit, errors, fail
from corral.cli.rollouts import WatchOption, should_watch, watch
from corral.compose import parse_compose, read_values
from corral.model.errors import InvalidSpec

app = typer.Typer(help="Stacks: groups of services deployed from one compose file.", no_args_is_help=True)


def deploy(
    compose_file: Path = typer.Option(..., "--compose-file", "-c", help="the compose file"),
    name: str = typer.Option(..., "--name", "-n", help="the stack's name; services are named STACK_SERVICE"),
    dry_run: bool = typer.Option(False, "--dry-run", help="validate and show what would change; change nothing"),
    prune: bool = typer.Option(False, "--prune", help="remove the stack's services the file no longer has"),
    watch_flag: bool | None = WatchOption,
    manager: str | None = ManagerOption,
    build: bool = typer.Option(False, "--build", help="build the services that have build: here, push them to the cluster's registry"),
) -> None:
    """Create or update a stack's services from a compose file (as `docker stack deploy`)."""
    try:
        text = compose_file.read_text()
    except OSError as err:
        fail(f"cannot read {compose_file}: {err.strerror}")
    if build:
        text = built_compose(text, name, compose_file, manager, dry_run)
    secrets, configs = _values(text, name, compose_file)
    body = {"compose": text, "dry_run": dry_run, "prune": prune, "secrets": secrets, "configs": configs}
    result = call(manager, lambda c: c.post(f"/v1/stacks/{name}/deploy", body))
    for warning in result["warnings"]:
        errors.print(f"[yellow]warning:[/yellow] {warning}", highlight=False)
    verb = "would " if dry_run else ""
    for label, key in (("create", "created"), ("update", "updated"), ("remove", "removed")):
        for service in result[key]:
            past = {"create": "Created", "update": "Updated", "remove": "Removed"}[label]
            console.print(f"{verb + label if dry_run else past} service {service}", highlight=False)
    for service in result["unchanged"]:
        console.print(f"Unchanged service {service}", highlight=False)
    for kind in ("secret", "config"):
        for stored in result.get(f"created_{kind}s", []):
            console.print(f"{'would create' if dry_run else 'Created'} {kind} {stored}", highlight=False)
    if dry_run:
        console.print("Dry run: nothing was changed.")
        return
    changed = [*result["created"], *result["updated"]]
    if changed and should_watch(watch_flag) and not call(manager, lambda c: watch(c, changed)):
        raise typer.Exit(1)


def _values(text: str, stack: str, compose_file: Path) -> tuple[dict[str, str], dict[str, str]]:
    """The `file:` and `environment:` values of the compose file's secrets and configs, read here (base64).

    A file the manager would refuse anyway sends none: its error comes from the manager, as for any file.
    """
    try:
        parsed = parse_compose(text, stack)
    except InvalidSpec:
        return {}, {}
    try:
        return read_values(parsed.definitions(), compose_file.parent, os.environ).encoded()
    except InvalidSpec as err:
        fail(str(err))


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
