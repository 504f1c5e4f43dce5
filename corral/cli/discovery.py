"""`corral service endpoints`: where a service's healthy replicas answer, and how the mesh serves it."""

import json
from typing import TYPE_CHECKING, Any

import typer

from corral.cli.output import ManagerOption, OutputOption, call, check_output, emit, rich_console

if TYPE_CHECKING:
    from corral.client import ManagerClient

COLUMNS = [
    ("TASK", lambda r: r["task"][:12]),
    ("SLOT", lambda r: r["slot"] if r["slot"] is not None else "-"),
    ("NODE", lambda r: r["node"] or "-"),
    ("ADDRESS", lambda r: r["address"]),
    ("PORTS", lambda r: ", ".join(f"{p['target']}/{p['protocol']}->{p['address']}" for p in r["ports"])),
]


def endpoints(
    service: str,
    watch: bool = typer.Option(False, "--watch", "-w", help="print the list again at every change, until interrupted"),
    output: str = OutputOption,
    manager: str | None = ManagerOption,
) -> None:
    """List a service's endpoints: its running, healthy tasks, as node address and host port."""
    check_output(output)
    if not watch:
        rows, mesh = call(manager, lambda c: _fetch(c, service))
        emit(rows, output, COLUMNS)
        if output != "json":
            _print_mesh(mesh)
        return

    async def follow(client: "ManagerClient") -> None:
        async for rows in client.stream(f"/v1/services/{service}/endpoints", watch="true"):
            if output == "json":
                typer.echo(json.dumps(rows))
            else:
                rich_console("console").print(f"-- {len(rows)} endpoint(s)", highlight=False)
                emit(rows, output, COLUMNS)

    call(manager, follow)


async def _fetch(client: "ManagerClient", service: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    return await client.get(f"/v1/services/{service}/endpoints"), await client.get(f"/v1/services/{service}/mesh")


def _print_mesh(mesh: dict[str, Any]) -> None:
    for route in mesh["routes"]:
        where = f"{route['vip']}:{route['port']}/{route['protocol']} (by name)" if route["vip"] else (
            f"{route['port']}/{route['protocol']} on every node"
        )
        rich_console("console").print(f"mesh: {where} -> {len(route['backends'])} endpoint(s)", highlight=False)
    for node, errors in mesh["errors"].items():
        for listener, error in errors.items():
            rich_console("console").print(f"mesh: node {node} cannot serve {listener}: {error}", style="yellow", highlight=False)
