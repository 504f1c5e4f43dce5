"""`corral volume ls|inspect|rm`: the named volumes the nodes hold for services' slots.

Volumes outlive their containers and their stacks: nothing removes one but
`corral volume rm` or `corral stack rm --volumes`. A removal is done by the
volume's node (its agent), so it shows `removing` until the node has done it.
"""

from typing import Any

import typer

from corral.cli.pages import stream
from corral.cli.output import ManagerOption, OutputOption, ago, call, check_output, emit, emit_one

app = typer.Typer(help="Volumes: data each slot of a service keeps on its node.", no_args_is_help=True)

NodeOption = typer.Option(None, "--node", help="only the volume on this node")


def _state(row: dict[str, Any]) -> str:
    if row["removing"]:
        return "removing"
    return "in use" if row["in_use_by"] else "idle"


@app.command("ls")
def list_volumes(
    stack: str | None = typer.Option(None, "--stack", help="only this stack's"),
    node: str | None = NodeOption,
    output: str = OutputOption,
    manager: str | None = ManagerOption,
) -> None:
    """List volumes with their node, stack, service and slot."""
    check_output(output)
    stream(
        manager,
        "/v1/volumes",
        output,
        [
            ("NAME", lambda r: r["name"]),
            ("NODE", lambda r: r["node"]),
            ("STACK", lambda r: r["stack"] or "-"),
            ("SERVICE", lambda r: r["service"]),
            ("SLOT", lambda r: r["slot"] if r["slot"] is not None else "-"),
            ("STATE", _state),
            ("CREATED", lambda r: ago(r["created_at"])),
        ],
        stack=stack or None,
        node=node or None,
    )


@app.command("inspect")
def inspect(name: str, node: str | None = NodeOption, manager: str | None = ManagerOption) -> None:
    """Show a volume (on each node that holds one by that name)."""
    params = {"node": node} if node else {}
    emit_one(call(manager, lambda c: c.get(f"/v1/volumes/{name}", **params)))


@app.command("rm")
def remove(
    names: list[str] = typer.Argument(..., help="the volumes to remove"), node: str | None = NodeOption, manager: str | None = ManagerOption
) -> None:
    """Remove volumes no running task uses (their nodes delete the data)."""
    params = {"node": node} if node else None
    for name in names:
        path = f"/v1/volumes/{name}"
        for volume in call(manager, lambda c: c.request("DELETE", path, params=params)):
            typer.echo(f"{volume['name']} (on {volume['node']}): removing")
