"""`corral node ls|inspect|drain|activate|pause|label|rm`."""

from typing import TYPE_CHECKING

import typer

from corral.cli.output import ManagerOption, OutputOption, ago, call, check_output, emit_one, fail, size
from corral.cli.pages import stream

if TYPE_CHECKING:
    from corral.client import ManagerClient

app = typer.Typer(help="Nodes: the servers that run containers.", no_args_is_help=True)


@app.command("ls")
def list_nodes(output: str = OutputOption, manager: str | None = ManagerOption) -> None:
    """List nodes with their state, availability, resources and last heartbeat."""
    check_output(output)
    stream(
        manager,
        "/v1/nodes",
        output,
        [
            ("NAME", lambda r: r["name"]),
            ("ADDRESS", lambda r: r["address"]),
            ("STATE", lambda r: r["state"]),
            ("HEALTH", lambda r: r.get("health", "-")),
            ("AVAILABILITY", lambda r: r["availability"]),
            ("TASKS", lambda r: r["tasks"]),
            ("CPU", lambda r: f"{r['reserved']['cpus']:g}/{r['resources']['cpus']:g}"),
            ("MEMORY", lambda r: f"{size(r['reserved']['memory'])}/{size(r['resources']['memory'])}"),
            ("HEARTBEAT", lambda r: ago(r["last_heartbeat"])),
            ("LABELS", lambda r: ",".join(f"{k}={v}" for k, v in sorted(r["labels"].items())) or "-"),
        ],
    )


@app.command("inspect")
def inspect_node(name: str, manager: str | None = ManagerOption) -> None:
    """Show a node as JSON."""
    emit_one(call(manager, lambda c: c.get(f"/v1/nodes/{name}")))


def _set_availability(name: str, availability: str, manager: str | None) -> None:
    call(manager, lambda c: c.request("PATCH", f"/v1/nodes/{name}", json_body={"availability": availability}))
    typer.echo(f"{name} {availability}")


@app.command("drain")
def drain(name: str, manager: str | None = ManagerOption) -> None:
    """Move a node's tasks elsewhere and give it no new ones."""
    _set_availability(name, "drain", manager)


@app.command("activate")
def activate(name: str, manager: str | None = ManagerOption) -> None:
    """Let a node take tasks again."""
    _set_availability(name, "active", manager)


@app.command("pause")
def pause(name: str, manager: str | None = ManagerOption) -> None:
    """Keep a node's tasks but give it no new ones."""
    _set_availability(name, "pause", manager)


@app.command("label")
def label(
    name: str,
    labels: list[str] = typer.Argument(..., help="KEY=VALUE to set, KEY- to remove"),
    manager: str | None = ManagerOption,
) -> None:
    """Set or remove node labels (used by placement constraints)."""

    async def run(client: "ManagerClient") -> None:
        node = await client.get(f"/v1/nodes/{name}")
        current = dict(node["labels"])
        for item in labels:
            if item.endswith("-") and "=" not in item:
                current.pop(item[:-1], None)
                continue
            key, sep, value = item.partition("=")
            if not sep or not key:
                fail(f"invalid label {item!r}: expected KEY=VALUE or KEY-")
            current[key] = value
        await client.request("PATCH", f"/v1/nodes/{name}", json_body={"labels": current})
        typer.echo(",".join(f"{k}={v}" for k, v in sorted(current.items())))

    call(manager, run)


@app.command("rm")
def remove(name: str, force: bool = typer.Option(False, "--force"), manager: str | None = ManagerOption) -> None:
    """Remove a node that is down (or, with --force, one that is up)."""
    call(manager, lambda c: c.request("DELETE", f"/v1/nodes/{name}", params={"force": str(force).lower()}))
    typer.echo(name)
