"""`corral up --managers 3`: a local etcd cluster of three members, three managers on their own ports, agents given
all three; `corral manager ls` shows them, a deploy through any of them runs, and stopping `corral up` stops every
process it started (by PID) and removes the containers, keeping etcd's data for the next start."""

import json
import os
import signal
import ssl
import subprocess
from pathlib import Path

import httpx
import pytest

from corral.model.etcd_tls import EtcdTlsFiles
from tests.e2e.cluster import CORRAL, Cluster, wait_until
from tests.e2e.test_lifecycle import ONE as WEB  # two replicas of the demo image, port 8080
from tests.tls import cli_env


def _children(pid: int) -> dict[int, str]:
    """The processes whose parent is `pid`: their command lines."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            if ppid == pid:
                found[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, IndexError, ValueError):
            continue
    return found


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_up_with_three_managers_runs_them_and_stops_them(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path / "data", nodes=2, first_address="127.0.0.81", managers=3)
    children: dict[int, str] = {}
    try:
        cluster.start()
        assert cluster.proc is not None
        children = _children(cluster.proc.pid)
        urls = [f"https://127.0.0.1:{cluster.port + i}" for i in range(3)]
        env = cli_env(",".join(urls), cluster.data_dir)

        # Three etcd members and three managers, each a process of its own started by `corral up`.
        assert sorted(c.split()[0].rsplit("/", 1)[-1] for c in children.values() if " --name e" in c) == ["etcd"] * 3, children
        assert sorted(c.split(" --name ")[1].split()[0] for c in children.values() if " manager " in c) == ["m1", "m2", "m3"], children
        members = json.loads((cluster.data_dir / "etcd" / "members.json").read_text())
        assert [m["name"] for m in members] == ["e1", "e2", "e3"]
        # etcd over TLS: its own CA, client certificates required; the managers' store URL names theirs.
        tls = EtcdTlsFiles(cluster.data_dir / "etcd" / "tls")
        client = ssl.create_default_context(cafile=str(tls.ca))
        client.load_cert_chain(tls.client_cert, tls.client_key)
        for member in members:
            health = f"https://127.0.0.1:{member['client_port']}/health"
            assert httpx.get(health, timeout=2, verify=client).json()["health"] == "true"
            with pytest.raises(httpx.HTTPError):  # no client certificate: refused
                httpx.get(health, timeout=2, verify=ssl.create_default_context(cafile=str(tls.ca)))
        assert all(f"cert={tls.client_cert}" in c for c in children.values() if " manager " in c), children

        def listing() -> list[dict] | None:
            done = subprocess.run([*CORRAL, "manager", "ls", "--output", "json"], env=env, capture_output=True, text=True, timeout=30)
            assert done.returncode == 0, done.stderr
            rows: list[dict] = json.loads(done.stdout)
            return rows if sum(r["leader"] for r in rows) == 1 and all(r["healthy"] for r in rows) else None

        rows = wait_until(listing, 30, 0.5, what="three healthy managers, one leading")
        assert sorted((r["name"], r["url"]) for r in rows) == [("m1", urls[0]), ("m2", urls[1]), ("m3", urls[2])]
        shown = subprocess.run([*CORRAL, "manager", "ls"], env=env, capture_output=True, text=True, timeout=30).stdout
        assert all(url in shown for url in urls) and "*" in shown

        # The agents run a deploy made through the last manager (the state is in etcd, not in one manager).
        compose = tmp_path / "web.yaml"
        compose.write_text(WEB)
        cluster.cli("deploy", "-c", str(compose), "--name", "shop", env={"CORRAL_MANAGER": urls[2]})
        tasks = cluster.wait_running("shop_web", 2, timeout=90)
        for task in tasks:
            assert wait_until(lambda: httpx.get(f"http://{task['address']}/", timeout=5).status_code == 200, 20)
        assert [n["state"] for n in cluster.api("GET", "/v1/nodes")] == ["ready", "ready"]
        assert {m["name"]: m for m in cluster.api("GET", "/v1/managers")}.keys() == {"m1", "m2", "m3"}

        # Stopping `corral up` stops every process it started and removes the containers; etcd's data stays.
        cluster.stop()
        for pid, command in children.items():
            assert not _alive(pid), f"still running after `corral up` stopped: {pid} {command}"
        assert cluster.containers() == []
        assert all((cluster.data_dir / "etcd" / m["name"] / "member").is_dir() for m in members)
    finally:
        cluster.cleanup()
        for pid in children:  # what a failed `corral up` left behind, by the PIDs it started
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
