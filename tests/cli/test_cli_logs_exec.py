"""The pure parts of `service logs`, `exec` and `service ps`: --since, line prefixes, which replica, filters and history rows."""

import datetime

import pytest

from corral.cli.execs import choose_task
from corral.cli.logs import LineFormat, parse_since
from corral.cli.top import NODE_COLUMNS, with_cpu
from corral.cli.services import _task_name_column, matches, parse_filters, slot_order

NOW = 1_800_000_000.0


def test_since_takes_a_duration_ago_or_a_time() -> None:
    assert parse_since("10m", NOW) == NOW - 600
    assert parse_since("1h30m", NOW) == NOW - 5400
    assert parse_since("2026-12-02T13:00:00Z", NOW) == datetime.datetime(2026, 12, 2, 13, tzinfo=datetime.UTC).timestamp()
    assert parse_since("2026-12-02T14:00:00+01:00", NOW) == datetime.datetime(2026, 12, 2, 13, tzinfo=datetime.UTC).timestamp()
    with pytest.raises(ValueError, match="--since: 'soon' is neither a duration"):
        parse_since("soon", NOW)


ITEM = {"task": "t1", "name": "web.2", "node": "node-1", "stream": "stdout", "time": "2026-12-02T13:00:00.1Z", "line": "hi"}


def test_lines_are_prefixed_with_task_and_node_unless_asked_not_to() -> None:
    assert LineFormat().render(ITEM, 14) == "web.2@node-1   | hi"
    assert LineFormat(timestamps=True).render(ITEM, 0) == "web.2@node-1 | 2026-12-02T13:00:00.1Z hi"
    assert LineFormat(prefix=False).render(ITEM, 14) == "hi"
    assert LineFormat(raw=True, timestamps=True).render(ITEM, 14) == "hi"
    notice = {"task": "t1", "name": "web.2", "node": "node-1", "notice": "lost node node-1's stream; resuming"}
    assert LineFormat().render(notice, 0) == "web.2@node-1 | [lost node node-1's stream; resuming]"


def test_each_task_keeps_its_own_colour_on_a_terminal() -> None:
    fmt = LineFormat(colour=True)
    first, again = fmt.render(ITEM, 0), fmt.render(ITEM, 0)
    other = fmt.render({**ITEM, "task": "t2", "name": "web.3"}, 0)
    assert first == again and first.startswith("\x1b[36m") and other.startswith("\x1b[33m")


def _row(id: str, slot: int | None, state: str = "running", desired: str = "running", node: str = "node-1", created: float = 0) -> dict:
    return {"id": id, "service": "web", "slot": slot, "node": node, "state": state, "desired_state": desired, "created_at": created}


def test_exec_picks_a_running_replica_or_says_why_not() -> None:
    rows = [_row("a", 1, "failed", "shutdown"), _row("b", 2), _row("c", 3), _row("d", 1, "starting")]
    assert choose_task(rows, "web", None) == "b"
    assert choose_task(rows, "web", 3) == "c"
    with pytest.raises(ValueError, match="service web has no running task in slot 1"):
        choose_task(rows, "web", 1)


def test_ps_filters_and_history_rows() -> None:
    rows = [_row("new", 1, created=2), _row("old", 1, "failed", "shutdown", created=1), _row("two", 2)]
    wanted = parse_filters(["desired-state=running"])
    assert [r["id"] for r in rows if matches(r, wanted)] == ["new", "two"]
    assert [r["id"] for r in rows if matches(r, parse_filters(["state=failed", "state=running", "node=node-1"]))] == ["new", "old", "two"]
    with pytest.raises(ValueError, match="--filter: invalid filter 'colour=red'"):
        parse_filters(["colour=red"])
    name = _task_name_column(rows)
    assert [name(r) for r in rows] == ["web.1", " \\_ web.1", "web.2"]


def test_top_cpu_is_the_difference_of_two_samples() -> None:
    before = {"t1": {"task": "t1", "time": 10.0, "cpu_seconds": 4.0}}
    now = [{"task": "t1", "time": 12.0, "cpu_seconds": 5.0}, {"task": "t2", "time": 12.0, "cpu_seconds": 1.0}, {"task": "t3", "error": "x", "time": 12.0}]
    assert [r["cpu_percent"] for r in with_cpu(now, before)] == [50.0, None, None]


def test_ps_puts_the_task_meant_to_run_first_in_its_slot() -> None:
    rows = [_row("failed-newer", 1, "failed", "shutdown", created=5), _row("current", 1, created=1), _row("older", 1, "shutdown", "shutdown", created=0)]
    assert [r["id"] for r in sorted(rows, key=slot_order)] == ["current", "failed-newer", "older"]


def test_node_top_shows_use_beside_reservations_and_capacity() -> None:
    base = {"node": "node-1", "tasks": 3, "resources": {"cpus": 4, "memory": 8 << 30}, "reserved": {"cpus": 1.5, "memory": 1 << 30}}
    measured = {**base, "used": {"cpus": 0.5, "memory": 2 << 30}}
    shown = {title: show(measured) for title, show in NODE_COLUMNS}
    assert shown == {
        "NAME": "node-1", "CPU(cores)": "0.50", "CPU%": "12%", "CPU RESERVED": "1.5/4", "MEMORY": "2.0GiB", "MEMORY%": "25%",
        "MEMORY RESERVED": "1.0GiB/8.0GiB", "TASKS": 3, "ERROR": "",
    }
    failed = {title: show({**base, "used": None, "error": "node is down"}) for title, show in NODE_COLUMNS}
    assert (failed["CPU(cores)"], failed["CPU%"], failed["MEMORY"], failed["ERROR"]) == ("-", "-", "-", "node is down")
