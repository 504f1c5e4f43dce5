"""`corral service ls|ps|inspect|scale|update|rollback|promote|rm`."""

from typing import TYPE_CHECKING, Any

import typer

from corral.cli.jobs import RUN_COLUMNS, run_rows
from corral.cli.pages import collect, stream
from corral.cli.output import ManagerOption, OutputOption, ago, call, check_output, emit, emit_one, fail
from corral.cli.rollouts import WatchOption, should_watch, watch

if TYPE_CHECKING:
    from corral.client import ManagerClient

app = typer.Typer(help="Services: replicated containers.", no_args_is_help=True)


@app.command("ls")
def list_services(
    stack: str | None = typer.Option(None, "--stack", help="only this stack's services"),
    output: str = OutputOption,
    manager: str | None = ManagerOption,
) -> None:
    """List services with their replicas running / desired."""
    check_output(output)
    stream(
        manager,
        "/v1/services",
        output,
        [
            ("NAME", lambda r: r["name"]),
            ("MODE", lambda r: r["mode"]),
            ("REPLICAS", replicas_column),
            ("IMAGE", lambda r: r["image"]),
            ("PORTS", ports_column),
            ("VERSION", lambda r: r["version"]),
            ("UPDATE", _update_column),
        ],
        stack=stack,
    )


def replicas_column(row: dict[str, Any]) -> str:
    """`2/3`; a job's own summary; `2/2 completed` or `1/2, 1 completed` when replicas ran to completion and rest."""
    if row.get("job"):
        return str(row["job"])
    running, wanted, completed = row["running"], row["replicas"], row.get("completed", 0)
    if completed and not running and completed >= wanted:
        return f"{completed}/{wanted} completed"
    return f"{running}/{wanted}, {completed} completed" if completed else f"{running}/{wanted}"


def ports_column(row: dict[str, Any]) -> str:
    """The published ports, and where the routing mesh could not listen on one: `8080:80/tcp (8080/tcp not bound on node-2)`."""
    text = ", ".join(row["ports"]) or "-"
    for port, nodes in sorted((row.get("unbound_ports") or {}).items()):
        where = ", ".join(nodes) if len(nodes) <= 3 else f"{len(nodes)} nodes"
        text += f" ({port} not bound on {where})"
    return text


def _update_column(row: dict[str, Any]) -> str:
    status = row.get("update_status")
    if not status:
        return "-"
    return f"{status['state']} {status['updated']}/{status['total']}"


@app.command("ps")
def service_tasks(
    service: str,
    all_tasks: bool = typer.Option(False, "--all", "-a", help="(the default now) include each slot's previous tasks"),
    filters: list[str] = typer.Option([], "--filter", "-f", help="desired-state=running|shutdown, state=STATE, node=NODE (repeatable)"),
    output: str = OutputOption,
    manager: str | None = ManagerOption,
) -> None:
    """List a service's tasks: where each replica runs, its state, and why; under each, the slot's previous tasks."""
    check_output(output)
    try:
        wanted = parse_filters(filters)
    except ValueError as err:
        fail(str(err))
    rows = [r for r in call(manager, lambda c: collect(c, f"/v1/services/{service}/tasks")) if matches(r, wanted)]
    rows.sort(key=slot_order)
    runs = run_rows(call(manager, lambda c: c.get(f"/v1/services/{service}"))) if output != "json" else []
    emit(
        rows,
        output,
        [
            ("ID", lambda r: r["id"][:12]),
            ("NAME", _task_name_column(rows)),
            ("IMAGE", lambda r: r["image"]),
            ("NODE", lambda r: r["node"] or "-"),
            ("DESIRED", lambda r: r["desired_state"]),
            ("STATE", lambda r: f"{r['state']} {ago(r['updated_at'])}"),
            ("ADDRESS", lambda r: r["address"] or "-"),
            ("ERROR", lambda r: r["error"] or (f"exit code {r['exit_code']}" if r["exit_code"] else "")),
        ],
    )
    if runs:  # a job: its runs and their outcome under its tasks
        typer.echo("")
        emit(runs, output, RUN_COLUMNS)


_FILTER_KEYS = ("desired-state", "state", "node")


def parse_filters(filters: list[str]) -> dict[str, set[str]]:
    """`KEY=VALUE` filters (as `docker service ps --filter`); ValueError naming the one that is wrong."""
    wanted: dict[str, set[str]] = {}
    for item in filters:
        key, sep, value = item.partition("=")
        if not sep or key not in _FILTER_KEYS or not value:
            raise ValueError(f"--filter: invalid filter {item!r}: expected one of {', '.join(k + '=VALUE' for k in _FILTER_KEYS)}")
        wanted.setdefault(key.replace("-", "_"), set()).add(value)
    return wanted


def matches(row: dict[str, Any], wanted: dict[str, set[str]]) -> bool:
    return all(str(row.get(key) or "") in values for key, values in wanted.items())


def slot_order(row: dict[str, Any]) -> tuple[int, str, bool, float]:
    """Slot by slot; in each, the task meant to run first (a rolled-back update's newer failed tasks go below it), then newest first."""
    slot = row["slot"] if row["slot"] is not None else 0
    return slot, "" if row["slot"] is not None else row["node"] or "", row["desired_state"] != "running", -row["created_at"]


def _task_name_column(rows: list[dict[str, Any]]) -> Any:
    """The slot's name on its first (newest) row; ` \\_ name` on the previous tasks under it, as `docker service ps`."""
    first: dict[str, str] = {}
    for row in rows:
        first.setdefault(_slot_name(row), row["id"])

    def name(row: dict[str, Any]) -> str:
        slot = _slot_name(row)
        return slot if first[slot] == row["id"] else f" \\_ {slot}"

    return name


def _slot_name(row: dict[str, Any]) -> str:
    return f"{row['service']}.{row['slot'] if row['slot'] is not None else row['node']}"


@app.command("inspect")
def inspect_service(service: str, manager: str | None = ManagerOption) -> None:
    """Show a service's full spec and status as JSON."""
    emit_one(call(manager, lambda c: c.get(f"/v1/services/{service}")))


@app.command("scale")
def scale(assignments: list[str] = typer.Argument(..., help="SERVICE=REPLICAS ..."), manager: str | None = ManagerOption) -> None:
    """Set the number of replicas of one or more services."""
    wanted: list[tuple[str, int]] = []
    for item in assignments:
        name, sep, count = item.partition("=")
        if not sep or not name or not count.isdigit():
            fail(f"invalid scale {item!r}: expected SERVICE=REPLICAS with a non-negative integer")
        wanted.append((name, int(count)))

    async def run(client: "ManagerClient") -> None:
        for name, count in wanted:
            await client.post(f"/v1/services/{name}/scale", {"replicas": count})
            typer.echo(f"{name} scaled to {count}")

    call(manager, run)


@app.command("update")
def update(
    service: str,
    image: str | None = typer.Option(None, "--image", help="the new image"),
    env: list[str] = typer.Option([], "--env", "-e", help="set an environment variable, K=V (repeatable)"),
    env_rm: list[str] = typer.Option([], "--env-rm", help="remove an environment variable (repeatable)"),
    replicas: int | None = typer.Option(None, "--replicas", min=0, help="the number of replicas"),
    canary: int | None = typer.Option(None, "--canary", min=0, help="update only N replicas, then hold (0: no canary)"),
    parallelism: int | None = typer.Option(None, "--update-parallelism", min=0, help="slots updated at once (0: all)"),
    delay: float | None = typer.Option(None, "--update-delay", min=0, help="seconds between batches"),
    order: str | None = typer.Option(None, "--update-order", help="stop-first or start-first"),
    monitor: float | None = typer.Option(None, "--update-monitor", min=0, help="seconds a new task is watched for failure"),
    failure_action: str | None = typer.Option(None, "--update-failure-action", help="pause, continue or rollback"),
    max_failure_ratio: float | None = typer.Option(None, "--update-max-failure-ratio", min=0, max=1),
    watch_flag: bool | None = WatchOption,
    manager: str | None = ManagerOption,
) -> None:
    """Change a service; a new spec rolls out per its update_config (as `docker service update`)."""
    body: dict[str, Any] = {}
    if env:
        body["env"] = dict(_key_value(item) for item in env)
    if env_rm:
        body["env_remove"] = env_rm
    for key, value in (("image", image), ("replicas", replicas), ("canary", canary)):
        if value is not None:
            body[key] = value
    config = {
        key: value
        for key, value in (
            ("parallelism", parallelism), ("delay", delay), ("order", order), ("monitor", monitor),
            ("failure_action", failure_action), ("max_failure_ratio", max_failure_ratio),
        )
        if value is not None
    }
    if config:
        body["update_config"] = config
    if not body:
        fail("nothing to update: give --image, --env, --replicas, --canary or an --update-* option")
    _change(manager, service, "update", body, should_watch(watch_flag))


@app.command("rollback")
def rollback(service: str, watch_flag: bool | None = WatchOption, manager: str | None = ManagerOption) -> None:
    """Return a service to its previous spec, rolled out per its rollback_config."""
    _change(manager, service, "rollback", None, should_watch(watch_flag), rolling_back=True)


@app.command("promote")
def promote(service: str, watch_flag: bool | None = WatchOption, manager: str | None = ManagerOption) -> None:
    """Finish a canary rollout: update the remaining replicas."""
    _change(manager, service, "promote", None, should_watch(watch_flag))


def _key_value(item: str) -> tuple[str, str]:
    key, sep, value = item.partition("=")
    if not sep or not key:
        fail(f"invalid --env {item!r}: expected K=V")
    return key, value


def _change(manager: str | None, service: str, action: str, body: dict[str, Any] | None, follow: bool, rolling_back: bool = False) -> None:
    async def run(client: "ManagerClient") -> bool:
        result = await client.post(f"/v1/services/{service}/{action}", body)
        status = result.get("update_status") or {}
        typer.echo(f"{service}: version {result['version']}, {status.get('state', 'no rollout')}")
        return await watch(client, [service], rolling_back) if follow else True

    if not call(manager, run):
        raise typer.Exit(1)


@app.command("rm")
def remove(services: list[str], manager: str | None = ManagerOption) -> None:
    """Remove services."""

    async def run(client: "ManagerClient") -> None:
        for name in services:
            await client.request("DELETE", f"/v1/services/{name}")
            typer.echo(name)

    call(manager, run)
