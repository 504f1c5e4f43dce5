"""`corral ui`: a one-time login link to the web UI, opened in a browser where there is one."""

import webbrowser

import typer

from corral.cli.output import ManagerOption, call, console
from corral.client import ManagerClient


def ui(
    print_url: bool = typer.Option(False, "--print-url", help="only print the link, do not open a browser"),
    manager: str | None = ManagerOption,
) -> None:
    """Open the web UI, signed in with your token's role, through a link that works once, for a minute."""

    async def run(client: ManagerClient) -> None:
        answer = await client.post("/v1/ui/codes")
        url = client.url + answer["path"]
        if print_url:
            typer.echo(url)
            return
        console.print(f"the web UI (this link works once, for a minute): {url}", highlight=False, soft_wrap=True)
        webbrowser.open(url)

    call(manager, run)
