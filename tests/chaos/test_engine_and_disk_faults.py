"""The Docker daemon restarted under the agents, and the manager's disk full.

- Docker restart: a private dockerd of the test's own (the machine's is shared with other
  work and never touched), SIGTERMed and started again by its PID; its containers die with it,
  the agents notice, and the replicas are started again: converged, nodes ready throughout.
- Disk full: the manager's data dir is a small tmpfs the test mounts; once it is filled,
  every write is refused with 507 and a message saying the disk is full, nothing is
  corrupted, the cluster runs on as it was, and writes resume once space is freed.
"""

import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.chaos.harness import GRACE, LEASE, ChaosCluster, Figure, Figures, PrivateDocker, Sampler

pytestmark = pytest.mark.e2e

@pytest.fixture
def private_docker() -> Iterator[PrivateDocker]:
    engine = PrivateDocker()
    try:
        engine.start()
    except (AssertionError, OSError) as err:
        engine.cleanup()
        pytest.skip(f"a private dockerd cannot run here: {err}")
    try:
        engine.load_demo_image()
        yield engine
    finally:
        engine.cleanup()


def test_docker_restarted_under_the_agents(private_docker: PrivateDocker, tmp_path: Path) -> None:
    figures = Figures(tmp_path / "figures.json")
    cluster = ChaosCluster(tmp_path / "cluster", nodes=3, first_address=44, docker_host=private_docker.socket)
    try:
        cluster.start()
        cluster.deploy_stack(web=6, api=1)
        with Sampler(cluster, "app_web") as sampler:
            sampler.expect(6)
            began = time.monotonic()
            private_docker.stop()
            stop_s = time.monotonic() - began
            # with the engine away, the nodes stay ready (their agents beat) and writes are acknowledged
            cluster.scale("app_api", 2)
            seen = cluster.states_for(LEASE + GRACE + 1)
            starting = time.monotonic()
            private_docker.start()
            ended = time.monotonic()
            converged = cluster.wait_settled({"app_web": 6, "app_api": 2}, timeout=90)
            figures.add(Figure("Docker daemon restart", round(ended - began, 1), None, round(converged, 2),
                               sampler.above, sampler.below,
                               {"daemon_stop_s": round(stop_s, 1), "daemon_start_s": round(ended - starting, 1)}))
        assert seen == {"ready"}
        # every container of a task that is over is cleared away or stopped: only the live ones run
        running = [c for c in cluster.containers() if c.status == "running"]
        assert len(running) == 8
    finally:
        cluster.cleanup()


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "cluster" / "manager"
    mount.mkdir(parents=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m,mode=0700", "tmpfs", str(mount)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        if subprocess.run(["umount", str(mount)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def _fill(disk: Path) -> Path:
    filler = disk / "filler"
    with filler.open("wb") as out:
        try:
            while True:
                out.write(b"\0" * (1 << 16))
                out.flush()
        except OSError:
            pass
    return filler


def test_the_managers_disk_full(small_disk: Path, tmp_path: Path) -> None:
    figures = Figures(tmp_path / "figures.json")
    cluster = ChaosCluster(tmp_path / "cluster", nodes=2, first_address=47)
    try:
        cluster.start()
        compose = cluster.deploy_stack(web=4, api=1)
        with Sampler(cluster, "app_web") as sampler:
            sampler.expect(4)
            began = time.monotonic()
            filler = _fill(small_disk)
            refused = cluster.request("POST", "/v1/services/app_web/scale", {"replicas": 5})
            assert refused.status_code == 507, refused.text
            assert "disk is full" in refused.json()["error"]
            bigger = compose.read_text().replace("replicas: 4", "replicas: 7")
            deploy = cluster.request("POST", "/v1/stacks/app/deploy", {"compose": bigger})
            assert deploy.status_code == 507 and "disk is full" in deploy.json()["error"]
            # the cluster runs on as it was: nodes ready (leases are in memory), replicas untouched
            seen = cluster.states_for(LEASE + GRACE + 1)
            assert cluster.api("GET", "/v1/services/app_web")["replicas"] == 4
            filler.unlink()
            ended = time.monotonic()
            above, below = sampler.above, sampler.below  # over the fault (the scale below changes what is wanted)
            cluster.scale("app_web", 5)
            converged = cluster.wait_settled({"app_web": 5, "app_api": 1})
            figures.add(Figure("manager disk full", round(ended - began, 1), None, round(converged, 2), above, below,
                               {"refused_with": 507}))
        assert seen == {"ready"}
        store = small_disk / "store.db"
        check = sqlite3.connect(f"file:{store}?mode=ro", uri=True).execute("PRAGMA integrity_check").fetchone()
        assert check == ("ok",)
        # the acknowledged write survives a restart of the manager
        cluster.kill_manager()
        cluster.start_manager()
        assert cluster.api("GET", "/v1/services/app_web")["replicas"] == 5
        cluster.wait_settled({"app_web": 5, "app_api": 1})
    finally:
        cluster.cleanup()
