"""`corral config -c FILE`: the compose files as corral understands them (as `docker compose config`).

Merged, interpolated, env files read, then parsed: every service is printed
as the spec corral would deploy, defaults included (`--format spec`), or the
merged and interpolated compose file the manager would receive
(`--format compose`). Warnings go to standard error; a file with problems
prints them all and exits 1. Nothing is sent to a manager. It is the callback
of the `corral config` group (whose commands manage stored configs), run
when no command follows.
"""

import re
import sys
from pathlib import Path

import typer
import yaml

from corral.cli.compose_files import EnvFileOption, read_project, warn
from corral.cli.output import fail
from corral.compose import parse_compose
from corral.model.errors import InvalidSpec


def config(
    ctx: typer.Context,
    compose_files: list[str] | None = typer.Option(
        None, "--compose-file", "-c", help="print these compose files as corral understands them (repeat to merge; - is stdin)"
    ),
    env_files: list[Path] | None = EnvFileOption,
    name: str | None = typer.Option(None, "--name", "-n", help="the stack's name (default: the file's name: key, or its directory)"),
    output_format: str = typer.Option("spec", "--format", help="spec (what corral deploys, with defaults) or compose (the file sent)"),
) -> None:
    """Configs (see the commands below); with -c, print compose files as corral understands them (`docker compose config`)."""
    if ctx.invoked_subcommand is not None:
        return
    if not compose_files:
        typer.echo(ctx.get_help())
        raise typer.Exit(0)
    if output_format not in ("spec", "compose"):
        fail(f"--format: unknown format {output_format!r}: expected spec or compose")
    project = read_project(compose_files, env_files)
    if output_format == "compose":
        sys.stdout.write(project.text)
        return
    stack = name or _default_name(project.document.get("name"), project.directory)
    try:
        parsed = parse_compose(project.text, stack, allow_privileged=None)  # the manager's policy decides
    except InvalidSpec as err:
        fail(str(err) if not err.path or str(err).startswith(err.path) else f"{err.path}: {err}")
    warn(parsed.warnings)
    document = {
        "name": stack,
        "services": {spec.name.removeprefix(stack + "_"): spec.model_dump(mode="json", exclude={"name", "stack"}) for spec in parsed.services},
    }
    for kind, definitions in (("secrets", parsed.secrets), ("configs", parsed.configs)):
        if definitions:
            document[kind] = {key: {"name": d.name, "external": d.external} for key, d in definitions.items()}
    sys.stdout.write(yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=1_000_000))


def _default_name(declared: object, directory: Path) -> str:
    if isinstance(declared, str) and declared:
        return declared
    return re.sub(r"[^a-z0-9_-]", "", directory.name.lower()) or "stack"
