"""`corral exec TASK|SERVICE [--slot N] -- CMD...`: run a command in a task's container, through the manager and its agent.

Its output is streamed as it comes (stdout to stdout, stderr to stderr) and
`corral exec` exits with the command's exit code. For a service, the command
runs in one of its running replicas (`--slot N` chooses which).
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


async def run_command(client: ManagerClient, target: str, slot: int | None, command: list[str]) -> int:
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
    manager: str | None = ManagerOption,
) -> None:
    """Run a command in a task's container and exit with its exit code (as `kubectl exec`)."""
    if not command:
        fail("give the command to run after --, e.g. corral exec web -- cat /etc/hostname")
    code = call(manager, lambda client: run_command(client, target, slot, command))
    raise typer.Exit(code)
