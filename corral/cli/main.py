"""The `corral` command: assembles the command groups.

Each command is registered by name, one-line help and a loader; its module is imported only when it runs
(corral/cli/lazy.py), so `corral --help` and `corral service ls` start without the manager, the agent or FastAPI.
Register a new command with one `LazyCommand` line; import nothing here at the top.
"""

import os
import sys
from collections.abc import Callable
from functools import cache
from importlib import import_module
from typing import Any

import typer

from corral.cli.lazy import LazyCommand, lazy_group


def _attr(where: str) -> Callable[[], Any]:
    """A loader of `module:attribute`."""
    module, name = where.split(":")
    return lambda: getattr(import_module(module), name)


@cache  # wires the commands once per process (tests invoke the app many times)
def _service() -> typer.Typer:
    from corral.cli import discovery, logs, services, top

    services.app.command("endpoints")(discovery.endpoints)
    services.app.command("logs")(logs.service_logs)
    services.app.command("top")(top.service_top)
    return services.app


@cache
def _node() -> typer.Typer:
    from corral.cli import nodes, top

    nodes.app.command("top")(top.node_top)
    return nodes.app


@cache
def _config() -> typer.Typer:
    from corral.cli import compose_config, secrets

    secrets.config_app.callback(invoke_without_command=True)(compose_config.config)
    return secrets.config_app


COMMANDS = [
    LazyCommand("up", "Run a whole local cluster in the foreground: a manager and NODES agents on loopback addresses.", _attr("corral.cli.daemons:up")),
    LazyCommand("agent", "Run a node agent in the foreground. SIGTERM stops the agent and leaves its containers running.", _attr("corral.cli.daemons:agent")),
    LazyCommand("join-token", "Print the join token agents need, read from the manager's data dir (it is not served over HTTP).", _attr("corral.cli.daemons:join_token")),
    LazyCommand("deploy", "Create or update a stack's services from compose files (as `docker stack deploy`), merged and interpolated here.", _attr("corral.cli.stacks:deploy")),
    LazyCommand("events", "Follow cluster events (services, tasks, nodes) until interrupted.", _attr("corral.cli.events:events")),
    LazyCommand("ui", "Open the web UI, signed in with your token's role, through a link that works once, for a minute.", _attr("corral.cli.ui:ui")),
    LazyCommand("exec", "Run a command in a task's container and exit with its exit code (as `kubectl exec`).", _attr("corral.cli.execs:exec_command")),
    LazyCommand("login", "Store a token for URL and pin the cluster CA it shows; later commands use them (and URL by default).", _attr("corral.cli.access:login")),
    LazyCommand("logout", "Forget the token and the pinned CA of URL.", _attr("corral.cli.access:logout")),
    LazyCommand("whoami", "The token the CLI uses: its name, role and expiry.", _attr("corral.cli.access:whoami")),
    LazyCommand("manager", "Run a manager, or list the managers of the control plane.", _attr("corral.cli.managers:app")),
    LazyCommand("stack", "Stacks: groups of services deployed from one compose file.", _attr("corral.cli.stacks:app")),
    LazyCommand("task", "Tasks: one replica's container.", _attr("corral.cli.logs:task_app")),
    LazyCommand("service", "Services: replicated containers.", _service),
    LazyCommand("node", "Nodes: the servers that run containers.", _node),
    LazyCommand("image", "Images in the cluster's registry.", _attr("corral.cli.images:app")),
    LazyCommand("registry", "The cluster's image registry.", _attr("corral.cli.images:registry_app")),
    LazyCommand("secret", "Secrets: values services see as files.", _attr("corral.cli.secrets:secret_app")),
    LazyCommand("config", "Configs: values services see as files.", _config),
    LazyCommand("job", "Jobs: services whose tasks run to completion.", _attr("corral.cli.jobs:app")),
    LazyCommand("token", "API tokens: who may use the API, with which role (admin only).", _attr("corral.cli.access:token_app")),
    LazyCommand("volume", "Volumes: data each slot of a service keeps on its node.", _attr("corral.cli.volumes:app")),
]

app = typer.Typer(
    cls=lazy_group(COMMANDS),
    help="corral: a container orchestrator small enough to read in an afternoon.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,  # click's plain help: typer's rich help imports rich.markdown, markdown_it... (~70% of `--help`)
)


@app.callback()
def main(
    ca: str | None = typer.Option(None, "--ca", envvar="CORRAL_CA", help="the CA certificate file to trust for the manager's HTTPS API"),
) -> None:
    """corral: a container orchestrator small enough to read in an afternoon."""
    if ca:
        os.environ["CORRAL_CA"] = ca  # read by corral/cli/trust.py


def run() -> None:
    """The `corral` process (pyproject's script): the app, without trio.

    httpcore imports trio when it is installed (selenium's dependency, a test extra here), to tell a trio loop from
    asyncio's: ~40 ms of every CLI call that talks to the manager. The CLI runs asyncio only; in-process callers
    (tests with CliRunner) call `app` and keep trio.
    """
    sys.modules.setdefault("trio", None)  # type: ignore[arg-type]  # httpcore takes its ImportError fallback
    app()


if __name__ == "__main__":
    run()
