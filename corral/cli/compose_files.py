"""The compose files a command is given (`-c FILE` repeated, `-c -` for standard input) made one project.

Reading, `.env` and `--env-file`, interpolation and merging happen here, on
the deploying machine (corral/compose/project.py); the manager receives the
result. Warnings are printed here; problems end the command with every one
of them, one line each.
"""

import os
import sys
from pathlib import Path

import typer

from corral.cli.output import errors, fail
from corral.compose.project import ComposeSource, Project, load_project
from corral.model.errors import InvalidSpec

ComposeFileOption = typer.Option(
    ..., "--compose-file", "-c", help="a compose file; repeat to merge override files in order; - reads standard input"
)
EnvFileOption = typer.Option(
    None, "--env-file", help="a file of variables for interpolation, instead of .env beside the first file; repeatable"
)


def read_project(files: list[str], env_files: list[Path] | None) -> Project:
    """The project of `files`; on any problem, every one is printed and the command exits 1."""
    sources = [_read(name) for name in files]
    first = files[0] if files else "-"
    directory = Path.cwd() if first == "-" else Path(first).resolve().parent
    try:
        project = load_project(sources, directory, dict(os.environ), env_files or None)
    except InvalidSpec as err:
        fail(str(err) if not err.path or str(err).startswith(err.path) else f"{err.path}: {err}")
    warn(project.warnings)
    return project


def warn(warnings: list[str]) -> None:
    for warning in warnings:
        errors.print(f"[yellow]warning:[/yellow] {warning}", highlight=False)


def _read(name: str) -> ComposeSource:
    if name == "-":
        return ComposeSource("-", sys.stdin.buffer.read())
    try:
        return ComposeSource(name, Path(name).read_bytes())
    except OSError as err:
        fail(f"cannot read {name}: {err.strerror}")
