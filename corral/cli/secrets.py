"""`corral secret create|ls|inspect|rm` and `corral config create|ls|inspect|rm`: one shape, two groups.

A value comes from a file (`-f FILE`) or standard input (`-f -`), never from
the command line (where `ps` and the shell history would show it). Secrets
are shown as metadata only; a config's inspect shows its value too.
"""

import base64
import sys
from pathlib import Path
from typing import Literal

import typer

from corral.cli.output import ManagerOption, OutputOption, ago, call, check_output, emit, emit_one, fail, size

Kind = Literal["secret", "config"]


def _read_value(source: str) -> bytes:
    if source == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(source).read_bytes()
    except OSError as err:
        fail(f"--file: cannot read {source}: {err.strerror or err}")


def _group(kind: Kind) -> typer.Typer:
    group = typer.Typer(help=f"{kind.capitalize()}s: values services see as files.", no_args_is_help=True)
    where = "/run/secrets/NAME (a tmpfs)" if kind == "secret" else "/NAME"

    @group.command("create", help=f"Store a {kind} (it never changes: a new value is a new name). Services see it at {where}.")
    def create(
        name: str = typer.Argument(..., help=f"the {kind}'s name"),
        file: str = typer.Option(..., "--file", "-f", help="read the value from FILE, or from standard input with -"),
        manager: str | None = ManagerOption,
    ) -> None:
        value = _read_value(file)
        body = {"name": name, "data": base64.b64encode(value).decode()}
        created = call(manager, lambda c: c.post(f"/v1/{kind}s", body))
        typer.echo(created["name"])

    @group.command("ls", help=f"List {kind}s (names and sizes; never values).")
    def list_values(output: str = OutputOption, manager: str | None = ManagerOption) -> None:
        check_output(output)
        rows = call(manager, lambda c: c.get(f"/v1/{kind}s"))
        emit(
            rows,
            output,
            [
                ("NAME", lambda r: r["name"]),
                ("STACK", lambda r: r.get("stack") or "-"),
                ("SIZE", lambda r: size(r["size"])),
                ("CREATED", lambda r: ago(r["created_at"])),
            ],
        )

    shown = "metadata (never its value)" if kind == "secret" else "metadata and its value (base64)"

    @group.command("inspect", help=f"Show a {kind}'s {shown}.")
    def inspect(name: str, manager: str | None = ManagerOption) -> None:
        emit_one(call(manager, lambda c: c.get(f"/v1/{kind}s/{name}")))

    @group.command("rm", help=f"Remove {kind}s no service uses.")
    def remove(names: list[str] = typer.Argument(..., help=f"the {kind}s to remove"), manager: str | None = ManagerOption) -> None:
        for name in names:
            path = f"/v1/{kind}s/{name}"
            typer.echo(call(manager, lambda c: c.request("DELETE", path))["name"])
    return group


secret_app = _group("secret")
config_app = _group("config")
