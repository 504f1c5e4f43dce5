"""The CLI follows a paged list and prints it page by page (corral/cli/pages.py), against a real manager over HTTPS."""

import io
import json
import subprocess
from pathlib import Path
from typing import Any

import httpx

from corral.cli.pages import StreamPrinter
from corral.client.http import PAGE
from tests.tls import admin_headers, cli_env, verify
from test_cli_access import manager
from test_manager_stops import CORRAL, _free_port

COLUMNS = [("NAME", lambda r: r["name"]), ("TASKS", lambda r: r["tasks"])]


def test_pages_print_as_they_come_and_json_is_the_one_array_it_always_was() -> None:
    out = io.StringIO()
    table = StreamPrinter("table", COLUMNS, out)
    table.add([{"name": "a", "tasks": 1}, {"name": "bb", "tasks": 22}])
    assert out.getvalue() == "NAME  TASKS\na     1\nbb    22\n", "the first page is out before the next is asked for"
    table.add([{"name": "a-much-longer-name", "tasks": 3}])  # a later, wider page widens its column
    table.end()
    assert out.getvalue().splitlines()[-1] == "a-much-longer-name  3"

    rows: list[dict[str, Any]] = [{"name": "a", "labels": {"k": "v\nw"}}, {"name": "b", "labels": {}}, {"name": "c", "labels": {}}]
    for pages in ([rows[:2], rows[2:]], [rows], [[], rows], []):
        out = io.StringIO()
        printer = StreamPrinter("json", COLUMNS, out)
        for page in pages:
            printer.add(page)
        printer.end()
        expected = json.dumps([row for page in pages for row in page], indent=2) + "\n"
        assert out.getvalue() == expected

    empty = io.StringIO()
    StreamPrinter("table", COLUMNS, empty).end()
    assert empty.getvalue() == "NAME  TASKS\n"


def test_node_ls_follows_every_page(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with manager(data, _free_port()) as url:
        join = subprocess.run([*CORRAL, "join-token", "--data-dir", str(data)], capture_output=True, text=True, check=True).stdout.strip()
        count = PAGE * 2 + 3  # three pages
        with httpx.Client(base_url=url, verify=verify(data)) as api:
            for i in range(count):
                body = {"name": f"n{i:04d}", "address": "127.0.0.2", "resources": {"cpus": 2, "memory": 2**30}}
                answer = api.post("/v1/agent/register", json=body, headers={"Authorization": f"Bearer {join}"})
                assert answer.status_code == 200, answer.text
            whole = api.get("/v1/nodes", headers=admin_headers(data)).json()
        env = cli_env(url, data)
        listed = subprocess.run([*CORRAL, "node", "ls", "-o", "json"], capture_output=True, text=True, env=env, timeout=60)
        assert listed.returncode == 0, listed.stderr
        nodes = json.loads(listed.stdout)
        assert [n["name"] for n in nodes] == [n["name"] for n in whole] == [f"n{i:04d}" for i in range(count)]
        assert nodes[-1]["resources"] == whole[-1]["resources"]
        table = subprocess.run([*CORRAL, "node", "ls"], capture_output=True, text=True, env=env, timeout=60)
        assert table.returncode == 0, table.stderr
        lines = table.stdout.splitlines()
        assert lines[0].split()[:3] == ["NAME", "ADDRESS", "STATE"] and len(lines) == count + 1
        assert [line.split()[0] for line in lines[1:]] == [f"n{i:04d}" for i in range(count)]
