"""`corral exec TASK|SERVICE [--slot N] [-i] [-t] -- CMD...`: run a command in a task's container, through the manager and its agent.

Its output is streamed as it comes (stdout to stdout, stderr to stderr) and
`corral exec` exits with the command's exit code. For a service, the command
runs in one of its running replicas (`--slot N` chooses which). `-i` passes
stdin on, `-t` gives the command a terminal (`-it`: a shell, as `kubectl exec
-it`): those go over a WebSocket (terminal.py), the rest is one POST.
"""

import sys
from typing import Any

import typer

from corral.cli.output import ManagerOption, call, fail
from corral.client import ApiError, ManagerClient


def choose_task(tasks: list[dict[str, Any]], service: str, slot: int | None) -> str:
    """The id of a running task of the service (in `slot` when given); ValueError saying why there is none."""
    running = [t for t in tasks if t["state"] == "running" and t["desired_state"] == "running"]
    if slot is not None:
        running = [t for t in running if t["slot"] == slot]
    if not running:
        where = f" in slot {slot}" if slot is not None else ""
        raise ValueError(f"service {service} has no running task{where} (see `corral service ps {service}`)")
    return str(min(running, key=lambda t: (t["slot"] if t["slot"] is not None else 0, t["node"] or ""))["id"])


async def resolve_task(client: ManagerClient, target: str, slot: int | None) -> str:
    """The task to run in: a running replica of the service `target`, else `target` itself (a task reference)."""
    try:
        tasks = await client.get(f"/v1/services/{target}/tasks")
    except ApiError as err:
        if err.status != 404 or slot is not None:
            raise
        task = target  # not a service: a task id (or prefix, or SERVICE.SLOT)
    else:
        try:
            task = choose_task(tasks, target, slot)
        except ValueError as err:
            raise ApiError(str(err)) from None
    return task


async def run_command(client: ManagerClient, target: str, slot: int | None, command: list[str]) -> int:
    task = await resolve_task(client, target, slot)
    code: int | None = None
    async for item in client.stream_post(f"/v1/tasks/{task}/exec", {"command": command}):
        if "exit_code" in item:
            code = int(item["exit_code"])
            continue
        out = sys.stderr if item.get("stream") == "stderr" else sys.stdout
        out.write(item.get("data", ""))
        out.flush()
    if code is None:
        raise ApiError("the command's stream ended without its exit code")
    return code


def exec_command(
    target: str = typer.Argument(..., help="a task (id, id prefix, SERVICE.SLOT) or a service"),
    command: list[str] = typer.Argument(..., help="the command and its arguments, after --"),
    slot: int | None = typer.Option(None, "--slot", min=0, help="for a service: the replica to run in"),
    interactive: bool = typer.Option(False, "--interactive", "-i", help="pass stdin to the command"),
    tty: bool = typer.Option(False, "--tty", "-t", help="give the command a terminal (-it: an interactive shell)"),
    manager: str | None = ManagerOption,
) -> None:
    """Run a command in a task's container and exit with its exit code (as `kubectl exec`; `-it` for a shell)."""
    if not command:
        fail("give the command to run after --, e.g. corral exec web -- cat /etc/hostname")
    if interactive or tty:
        code = _interactive(manager, target, slot, command, interactive, tty)
    else:
        code = call(manager, lambda client: run_command(client, target, slot, command))
    raise typer.Exit(code)


def _interactive(manager: str | None, target: str, slot: int | None, command: list[str], interactive: bool, tty: bool) -> int:
    from corral.cli import terminal

    stdin_fd = sys.stdin.fileno()
    session, raw = terminal.session_for(command, interactive, tty, stdin_fd)

    async def run(client: ManagerClient) -> int:
        task = await resolve_task(client, target, slot)
        if not raw:
            return await terminal.run_session(client, task, session, stdin_fd)
        return await terminal.while_raw(stdin_fd, terminal.run_session(client, task, session, stdin_fd))

    return call(manager, run)
