"""`corral deploy` and `corral stack ls|rm`."""

import os
from pathlib import Path
from typing import Any

import typer

from corral.cli.builds import built_compose
from corral.cli.compose_files import ComposeFileOption, EnvFileOption, read_project, warn
from corral.cli.output import ManagerOption, OutputOption, call, check_output, console, emit, fail
from corral.cli.rollouts import WatchOption, should_watch, watch
from corral.compose import parse_compose, read_values
from corral.model.errors import InvalidSpec
from corral.model.spec_diff import show

app = typer.Typer(help="Stacks: groups of services deployed from one compose file.", no_args_is_help=True)


def deploy(
    compose_files: list[str] = ComposeFileOption,
    name: str = typer.Option(..., "--name", "-n", help="the stack's name; services are named STACK_SERVICE"),
    env_files: list[Path] | None = EnvFileOption,
    dry_run: bool = typer.Option(False, "--dry-run", help="validate and show what would change, field by field; change nothing"),
    prune: bool = typer.Option(False, "--prune", help="remove the stack's services the file no longer has"),
    watch_flag: bool | None = WatchOption,
    manager: str | None = ManagerOption,
    build: bool = typer.Option(False, "--build", help="build the services that have build: here, push them to the cluster's registry"),
) -> None:
    """Create or update a stack's services from compose files (as `docker stack deploy`), merged and interpolated here."""
    project = read_project(compose_files, env_files)
    text = project.text
    if build:  # after interpolation and merging: the builds are those of the file corral deploys
        text = built_compose(text, name, project.directory, manager, dry_run)
    secrets, configs = _values(text, name, project.directory)
    body = {"compose": text, "dry_run": dry_run, "prune": prune, "secrets": secrets, "configs": configs}
    result = call(manager, lambda c: c.post(f"/v1/stacks/{name}/deploy", body))
    warn(result["warnings"])
    if dry_run:
        print_changes(result)
        return
    for label, key in (("Created", "created"), ("Updated", "updated"), ("Removed", "removed")):
        for service in result[key]:
            console.print(f"{label} service {service}", highlight=False)
    for service in result["unchanged"]:
        console.print(f"Unchanged service {service}", highlight=False)
    for kind in ("secret", "config"):
        for stored in result.get(f"created_{kind}s", []):
            console.print(f"Created {kind} {stored}", highlight=False)
    changed = [*result["created"], *result["updated"]]
    if changed and should_watch(watch_flag) and not call(manager, lambda c: watch(c, changed)):
        raise typer.Exit(1)


def print_changes(result: dict[str, Any]) -> None:
    """A dry run's answer as `kubectl diff` shows one: per service, each changed field, old -> new."""
    changes = result.get("changes", {})
    for verb, key, mark in (("would create", "created", "+"), ("would update", "updated", "~")):
        for service in result[key]:
            console.print(f"{mark} {verb} service {service}", highlight=False, markup=False)
            for change in changes.get(service, []):
                console.print(f"    {change['field']}: {show(change['old'])} -> {show(change['new'])}", highlight=False, markup=False)
    for service in result["removed"]:
        console.print(f"- would remove service {service}", highlight=False, markup=False)
    for service in result["unchanged"]:
        console.print(f"  unchanged service {service}", highlight=False, markup=False)
    for kind in ("secret", "config"):
        for stored in result.get(f"created_{kind}s", []):
            console.print(f"+ would create {kind} {stored}", highlight=False, markup=False)
    console.print("Dry run: nothing was changed.")


def _values(text: str, stack: str, directory: Path) -> tuple[dict[str, str], dict[str, str]]:
    """The `file:` and `environment:` values of the compose file's secrets and configs, read here (base64).

    A file the manager would refuse anyway sends none: its error comes from the manager, as for any file.
    """
    try:
        parsed = parse_compose(text, stack, allow_privileged=None)  # the manager's policy decides
    except InvalidSpec:
        return {}, {}
    try:
        return read_values(parsed.definitions(), directory, os.environ).encoded()
    except InvalidSpec as err:
        fail(str(err))


@app.command("ls")
def list_stacks(output: str = OutputOption, manager: str | None = ManagerOption) -> None:
    """List stacks."""
    check_output(output)
    rows = call(manager, lambda c: c.get("/v1/stacks"))
    emit(rows, output, [("NAME", lambda r: r["name"]), ("SERVICES", lambda r: r["services"]), ("TASKS", lambda r: r["tasks"])])


@app.command("rm")
def remove_stack(
    name: str,
    volumes: bool = typer.Option(False, "--volumes", help="remove its named volumes too (kept by default: a redeploy finds its data)"),
    manager: str | None = ManagerOption,
) -> None:
    """Remove a stack: its services, and so its containers; its volumes stay unless --volumes."""
    params = {"volumes": "true"} if volumes else None
    result = call(manager, lambda c: c.request("DELETE", f"/v1/stacks/{name}", params=params))
    for service in result["removed"]:
        console.print(f"Removing service {service}", highlight=False)
