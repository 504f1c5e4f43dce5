"""The `corral` command: assembles the command groups."""

import os

import typer

from corral.cli import (
    access, compose_config, daemons, discovery, events, execs, images, jobs, logs, managers, nodes, secrets, services, stacks, top, ui,
    volumes,
)

app = typer.Typer(
    help="corral: a container orchestrator small enough to read in an afternoon.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def main(
    ca: str | None = typer.Option(None, "--ca", envvar="CORRAL_CA", help="the CA certificate file to trust for the manager's HTTPS API"),
) -> None:
    """corral: a container orchestrator small enough to read in an afternoon."""
    if ca:
        os.environ["CORRAL_CA"] = ca  # read by corral/cli/trust.py


app.command()(daemons.up)
app.add_typer(managers.app, name="manager")
app.command()(daemons.agent)
app.command("join-token")(daemons.join_token)
app.command()(stacks.deploy)
app.command()(events.events)
app.command()(ui.ui)
app.add_typer(stacks.app, name="stack")
services.app.command("endpoints")(discovery.endpoints)
services.app.command("logs")(logs.service_logs)
services.app.command("top")(top.service_top)
app.add_typer(logs.task_app, name="task")
app.command("exec")(execs.exec_command)
app.add_typer(services.app, name="service")
nodes.app.command("top")(top.node_top)
app.add_typer(nodes.app, name="node")
app.add_typer(images.app, name="image")
app.add_typer(images.registry_app, name="registry")
app.add_typer(secrets.secret_app, name="secret")
secrets.config_app.callback(invoke_without_command=True)(compose_config.config)
app.add_typer(secrets.config_app, name="config")
app.add_typer(jobs.app, name="job")
app.add_typer(access.token_app, name="token")
app.command()(access.login)
app.command()(access.logout)
app.command()(access.whoami)
app.add_typer(volumes.app, name="volume")

if __name__ == "__main__":
    app()
