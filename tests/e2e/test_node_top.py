"""`corral node top` on real containers: each node's CPU and memory used by its containers (non-zero where a task
runs), beside what its tasks reserve and its capacity, for a viewer token; one node, an unknown node, the table."""

import json
import subprocess

from tests.e2e.cluster import CORRAL, Cluster, stop_process, wait_until

STACK = """
services:
  busy:
    image: corral-demo:latest
    command: ["sh", "-c", "while true; do i=0; while [ $$i -lt 2000 ]; do i=$$((i+1)); done; sleep 0.2; done"]
    stop_grace_period: 1s
    deploy:
      replicas: 2
      resources: {reservations: {cpus: "0.25", memory: 32m}}
"""


def test_node_top_shows_use_reservations_and_capacity(cluster: Cluster, compose_file) -> None:
    cluster.cli("deploy", "-c", str(compose_file(STACK)), "--name", "top")
    tasks = cluster.wait_running("top_busy", 2)
    busy = {t["node"] for t in tasks}
    assert len(busy) == 2  # spread: one replica a node, the third node idle
    admin = (cluster.data_dir / "admin-token").read_text().strip()
    viewer = cluster.cli("token", "create", "--role", "viewer", "--name", "top-viewer").stdout.strip().split()[-1]
    as_viewer = {"CORRAL_TOKEN": viewer}
    assert viewer != admin

    def sample() -> list[dict] | None:
        rows = json.loads(cluster.cli("node", "top", "--output", "json", env=as_viewer).stdout)
        return rows if all(r["used"] and r["used"]["cpus"] > 0 for r in rows if r["node"] in busy) else None

    # the figures are there and not zero for each node that runs a task
    rows = wait_until(sample, 30, 1, what="non-zero CPU on the busy nodes")
    assert [r["node"] for r in rows] == ["node-1", "node-2", "node-3"]
    for row in rows:
        assert "error" not in row, row
        assert row["resources"]["cpus"] > 0 and row["resources"]["memory"] > 0
        assert 0 < row["window"] < 30
        if row["node"] in busy:
            assert row["used"]["memory"] > 0 and row["containers"] == 1 and row["tasks"] == 1
            assert row["reserved"] == {"cpus": 0.25, "memory": 32 << 20}
            assert row["used"]["cpus"] < 1.5  # a light loop, not a runaway figure
        else:
            assert row["used"] == {"cpus": 0.0, "memory": 0} and row["containers"] == 0
            assert row["reserved"] == {"cpus": 0.0, "memory": 0}

    # one node; an unknown node is an error naming it
    [one] = cluster.cli_json("node", "top", sorted(busy)[0])
    assert one["node"] == sorted(busy)[0] and one["used"]["memory"] > 0
    missing = cluster.cli("node", "top", "node-9", check=False)
    assert missing.returncode == 1 and "node 'node-9' not found" in missing.stderr

    # the table refreshes until interrupted
    proc = subprocess.Popen([*CORRAL, "node", "top", "--interval", "0.5"], env={**cluster.cli_env(), **as_viewer},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        tables: list[list[str]] = []
        for line in proc.stdout:
            if line.startswith("NAME"):
                tables.append([])
                if len(tables) == 3:
                    break
            if tables:
                tables[-1].append(line)
        header, *rows_shown = tables[1]
        assert "CPU(cores)" in header and "MEMORY RESERVED" in header
        assert [r.split()[0] for r in rows_shown] == ["node-1", "node-2", "node-3"]
        assert all("0.25/" in r for r in rows_shown if r.split()[0] in busy)
    finally:
        stop_process(proc)
