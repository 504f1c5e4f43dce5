"""The Docker engine driver against the real engine: it hears of its own containers' changes from the engine's
event stream at once (no listing on a timer), ignores other containers, and lists running containers without an
inspect each (ports and addresses from the listing)."""

import asyncio
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from corral.agent.clock import SYSTEM_CLOCK
from corral.agent.engines.docker import DockerEngine

pytestmark = pytest.mark.e2e

IMAGE = "corral-demo:latest"


def docker(*args: str) -> str:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=True).stdout.strip()


@pytest.fixture
def cluster() -> Iterator[str]:
    cluster_id = f"events-{uuid.uuid4().hex[:8]}"
    yield cluster_id
    ids = docker("ps", "-aq", "--filter", f"label=corral.cluster={cluster_id}").split()
    if ids:
        subprocess.run(["docker", "rm", "-f", *ids], capture_output=True)


def run(cluster_id: str, node: str, task: str) -> str:
    return docker(
        "run", "-d", "--label", f"corral.cluster={cluster_id}", "--label", f"corral.node={node}",
        "--label", f"corral.task={task}", "-p", "127.0.0.1::8080", IMAGE, "httpd", "-f", "-p", "8080",
    )


async def until(check, what: str, within: float) -> float:  # type: ignore[no-untyped-def]
    """Seconds until `check()` is true (real time: the engine is real)."""
    loop = asyncio.get_running_loop()
    began = loop.time()
    while not check():
        if loop.time() - began > within:
            raise AssertionError(f"no {what} within {within}s")
        await asyncio.sleep(0.02)
    return loop.time() - began


async def test_engine_events_tell_of_a_kill_a_start_and_a_removal_at_once(cluster: str, tmp_path: Path) -> None:
    engine = DockerEngine(cluster, "n1", files_root=tmp_path)
    wakes: list[float] = []
    loop = asyncio.get_running_loop()
    following = asyncio.create_task(engine.follow(lambda: wakes.append(loop.time()), SYSTEM_CLOCK))
    try:
        await until(lambda: engine.following, "subscription", 10)
        container_id = await asyncio.to_thread(run, cluster, "n1", "t1")
        other = await asyncio.to_thread(run, cluster, "n2", "t9")  # another node's: no event for this one
        await until(lambda: len(wakes) >= 2, "start event", 5)  # the subscription's own look, then the start
        [info] = await engine.list()
        assert (info.id, info.task_id, info.running) == (container_id, "t1", True)
        [port] = info.ports
        assert (port.target, port.protocol, port.host_ip) == (8080, "tcp", "127.0.0.1") and port.host_port > 0
        assert info.ip  # its address on the engine's network, for probes

        before = len(wakes)
        killed_at = loop.time()
        await asyncio.to_thread(docker, "kill", container_id)
        await until(lambda: len(wakes) > before, "die event", 5)
        assert wakes[before] - killed_at < 2.0  # at once, not on a timer
        [dead] = await engine.list()
        assert (dead.running, dead.exit_code) == (False, 137)

        await asyncio.to_thread(docker, "kill", other)  # not this node's: nothing
        await asyncio.sleep(0.5)
        assert len(wakes) == before + 1

        await asyncio.to_thread(docker, "rm", container_id)
        await until(lambda: len(wakes) > before + 1, "destroy event", 5)
        assert await engine.list() == []
        assert engine.following
    finally:
        following.cancel()
        await asyncio.gather(following, return_exceptions=True)
        await engine.close()
    assert not engine.following
