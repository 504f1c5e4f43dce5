"""`corral events`: a live stream of what the cluster does."""

import datetime
import json

import typer

from corral.cli.output import ManagerOption, call, console
from corral.client import ManagerClient


def events(
    since: int | None = typer.Option(None, "--since", help="replay from this store revision (default: from now)"),
    output: str = typer.Option("table", "--output", "-o", help="table or json (one object per line)"),
    manager: str | None = ManagerOption,
) -> None:
    """Follow cluster events (services, tasks, nodes) until interrupted."""

    async def run(client: ManagerClient) -> None:
        params = {} if since is None else {"since": since}
        async for event in client.stream("/v1/events", **params):
            if output == "json":
                typer.echo(json.dumps(event))
            else:
                when = datetime.datetime.fromtimestamp(event["time"]).strftime("%H:%M:%S") if event["time"] else "--:--:--"
                console.print(f"{when} {event['type']:<7} {event['action']:<16} {event['message']}", highlight=False)

    call(manager, run)
