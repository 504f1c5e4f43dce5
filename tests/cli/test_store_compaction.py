"""`corral manager --store-history 200` under thousands of revisions (hollow nodes running and
stopping tasks): the store file stays bounded, `corral events --since 1` fails naming the oldest
revision left, `corral events --since <recent>` follows. Real processes, real SQLite file."""

import json
import os
import select
import sqlite3
import subprocess
from pathlib import Path

import httpx

from tests.tls import admin_headers, admin_token, ca_file, verify
from typer.testing import CliRunner

from corral.cli.main import app

from test_manager_stops import CORRAL, _free_port, _wait_for

HISTORY = 200
WEB = "services:\n  web:\n    image: corral-demo:latest\n    deploy: {replicas: 1}\n"


def _store(path: Path) -> tuple[int, int, int]:
    """(revision, oldest revision kept, log rows), read from the manager's file as another reader."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        revision = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'log'").fetchone()[0]
        found = db.execute("SELECT value FROM meta WHERE name = 'compacted'").fetchone()
        rows = db.execute("SELECT count(*) FROM log").fetchone()[0]
    finally:
        db.close()
    return int(revision), int(found[0]) if found else 0, int(rows)


def _size(path: Path) -> int:
    wal = path.with_name(path.name + "-wal")
    return path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)


def test_store_history_bounds_the_file_and_events_since_a_compacted_revision_fail(tmp_path: Path) -> None:
    port = _free_port()
    url = f"https://127.0.0.1:{port}"
    db = tmp_path / "store.db"
    procs: list[subprocess.Popen[str]] = []
    try:
        procs.append(subprocess.Popen(
            [*CORRAL, "manager", "--data-dir", str(tmp_path), "--listen", f"127.0.0.1:{port}", "--no-registry",
             "--store-history", str(HISTORY)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        ))
        token_file = tmp_path / "join-token"
        assert _wait_for(token_file.exists, 30), "the manager did not start"
        fleet = subprocess.Popen(
            [*CORRAL, "agent", "--manager", url, "--token-file", str(token_file), "--engine", "hollow",
             "--count", "20", "--name-prefix", "hist-", "--address", "127.0.0.1", "--hollow-delay", "1-5"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        procs.append(fleet)
        assert fleet.stdout is not None and "joined" in fleet.stdout.readline(), "the fleet did not join"

        # Thousands of revisions: 300 tasks started and stopped, again and again (each a few writes).
        peak, sizes = 0, []
        with httpx.Client(base_url=url, timeout=30, verify=verify(tmp_path), headers=admin_headers(tmp_path)) as api:
            assert api.post("/v1/stacks/shop/deploy", json={"compose": WEB}).status_code == 200
            for replicas in (300, 0, 300, 0, 300, 0):
                assert api.post("/v1/services/shop_web/scale", json={"replicas": replicas}).status_code == 200
                settled = lambda: sum(s["running"] for s in api.get("/v1/services").json()) == replicas  # noqa: E731
                assert _wait_for(settled, 60), f"{replicas} replicas did not settle"
                peak = max(peak, _size(db))
                sizes.append(_store(db))
        revision, oldest, rows = _store(db)
        assert revision > 3000, sizes
        # The compactor runs every 10 s: wait for a round that compacted up to (about) the end.
        assert _wait_for(lambda: _store(db)[1] >= revision - HISTORY, 30), _store(db)
        assert _wait_for(lambda: _size(db) < peak / 2, 10), (peak, _size(db))  # the round gave the space back
        revision, oldest, rows = _store(db)
        live = 300 + 20 + 10  # keys: at most a task per slot (and a few stopped), nodes, services and cluster
        assert rows <= (revision - oldest) + live, (revision, oldest, rows)

        cli_env = {**os.environ, "CORRAL_CA": str(ca_file(tmp_path)), "CORRAL_TOKEN": admin_token(tmp_path)}
        gone = subprocess.run(
            [*CORRAL, "events", "--manager", url, "--since", "1"], capture_output=True, text=True, timeout=30, env=cli_env
        )
        assert gone.returncode != 0
        message = " ".join((gone.stderr + gone.stdout).split())
        assert "revision 1 has been compacted" in message, message
        named = int(message.split("the oldest available is ")[1].split(":")[0])
        assert oldest <= named <= revision and f"--since {named}" in message

        recent = _store(db)[0]
        follow = subprocess.Popen(
            [*CORRAL, "events", "--manager", url, "--since", str(recent), "-o", "json"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**cli_env, "PYTHONUNBUFFERED": "1"},
        )
        procs.append(follow)
        with httpx.Client(base_url=url, timeout=30, verify=verify(tmp_path), headers=admin_headers(tmp_path)) as api:  # news after `recent`
            assert api.post("/v1/services/shop_web/scale", json={"replicas": 2}).status_code == 200
        assert follow.stdout is not None
        assert select.select([follow.stdout], [], [], 30)[0], "no event within 30 s"
        first = json.loads(follow.stdout.readline())
        assert first["revision"] > recent and (first["type"], first["action"]) == ("service", "update"), first
        assert follow.poll() is None  # and it goes on following
    finally:
        for proc in reversed(procs):  # by PID, whatever happened
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def test_store_history_must_keep_a_revision(tmp_path: Path) -> None:
    for command in ("manager", "up"):
        result = CliRunner().invoke(app, [command, "--data-dir", str(tmp_path / command), "--store-history", "0"])
        assert result.exit_code != 0
        assert "--store-history: must be at least 1 revision, got 0" in " ".join(result.output.split())
        assert not (tmp_path / command).exists()  # refused before anything started
