"""The mesh in front of real containers: corral-demo's httpd, published on loopback by Docker."""

import asyncio
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest

from corral.agent.mesh import Mesh

from mesh_backends import free_port, until

pytestmark = pytest.mark.e2e

LABEL = f"corral.test.mesh={uuid.uuid4().hex[:8]}"
# each container serves its own hostname (= short container id), so answers say who answered
SERVE_HOSTNAME = "mkdir -p /tmp/w && hostname > /tmp/w/index.html && exec httpd -f -p 8080 -h /tmp/w"


def docker(*args: str) -> str:
    return subprocess.run(["docker", *args], check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def containers() -> Iterator[dict[str, tuple[str, int]]]:
    """Three corral-demo containers: hostname -> published (ip, port)."""
    try:
        published: dict[str, tuple[str, int]] = {}
        for _ in range(3):
            cid = docker("run", "-d", "-p", "127.0.0.1::8080", "--label", LABEL, "corral-demo:latest", "sh", "-c", SERVE_HOSTNAME)
            ip, port = docker("port", cid, "8080").splitlines()[0].rsplit(":", 1)
            published[cid[:12]] = (ip, int(port))
        for hostname, (ip, port) in published.items():
            deadline = time.monotonic() + 10
            while True:
                try:
                    if httpx.get(f"http://{ip}:{port}/").text.strip() == hostname:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, f"container {hostname} does not answer"
                time.sleep(0.1)
        yield published
    finally:
        ids = docker("ps", "-aq", "--filter", f"label={LABEL}").split()
        if ids:
            docker("rm", "-f", *ids)


def own_addresses(containers: dict[str, tuple[str, int]]) -> dict[tuple[str, int], tuple[str, int]]:
    """Published address -> the container's own (bridge IP, 8080), as the agent learns them from the engine."""
    return {
        published: (docker("inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", hostname), 8080)
        for hostname, published in containers.items()
    }


@pytest.fixture
async def mesh():
    running = Mesh()
    yield running
    await running.close()


async def test_requests_reach_every_container_in_turn(mesh: Mesh, containers) -> None:
    front = ("127.0.0.7", free_port("127.0.0.7"), "tcp")
    assert await mesh.apply({front: list(containers.values())}) == {}
    async with httpx.AsyncClient(base_url=f"http://{front[0]}:{front[1]}") as client:
        answers = [(await client.get("/")).text.strip() for _ in range(30)]
    assert Counter(answers) == {hostname: 10 for hostname in containers}
    # Published addresses where nothing listens, with shortcuts to the containers: only the shortcuts can answer.
    shortcuts = own_addresses(containers)
    nowhere = {published: ("127.0.0.1", free_port()) for published in shortcuts}
    mesh.set_shortcuts({nowhere[published]: own for published, own in shortcuts.items()})
    await mesh.apply({front: list(nowhere.values())})
    async with httpx.AsyncClient(base_url=f"http://{front[0]}:{front[1]}") as client:
        answers = [(await client.get("/")).text.strip() for _ in range(30)]
    assert Counter(answers) == {hostname: 10 for hostname in containers}
    assert mesh.counters()[next(iter(mesh.listeners))].retries == 0


def load(url: str, stop: threading.Event, record: list[tuple[float, str]], failures: list[httpx.HTTPError]) -> None:
    with httpx.Client(timeout=5) as client:
        while not stop.is_set():
            try:
                response = client.get(url)
                response.raise_for_status()
                record.append((time.monotonic(), response.text.strip()))
            except httpx.HTTPError as error:
                failures.append(error)


def cut_short(error: httpx.HTTPError) -> bool:
    """An answer the killed container had begun (its headers relayed) and never finished: no proxy can take back
    bytes already sent, so such a request, in flight at the kill, is the one failure a kill may cost."""
    return isinstance(error, httpx.RemoteProtocolError) and "without sending complete message body" in str(error)


@pytest.mark.parametrize("shortcuts", [False, True], ids=["published", "stale-shortcuts"])
async def test_a_container_killed_under_load_costs_no_request(mesh: Mesh, containers, shortcuts: bool) -> None:
    front = ("127.0.0.7", free_port("127.0.0.7"), "tcp")
    await mesh.apply({front: list(containers.values())})
    if shortcuts:  # and never updated after the kill: the worst case, where the agent has not seen it yet
        mesh.set_shortcuts(own_addresses(containers))
    victim = next(iter(containers))
    stop = threading.Event()
    record: list[tuple[float, str]] = []
    failures: list[httpx.HTTPError] = []
    workers = [
        asyncio.create_task(asyncio.to_thread(load, f"http://{front[0]}:{front[1]}/", stop, record, failures))
        for _ in range(4)
    ]
    # Under load, every container answering, before and after the kill (conditions, not durations):
    await until(lambda: set(Counter(name for _, name in record)) == set(containers) and len(record) > 50, "load on every container", 30)
    await asyncio.to_thread(docker, "kill", victim)
    killed_at = time.monotonic()
    await until(lambda: sum(1 for at, _ in record if at > killed_at + 0.5) > 100, "100 answers after the kill", 30)
    stop.set()
    await asyncio.gather(*workers)

    # No connection refused, reset or timed out: the mesh tried another container. At most the answers in flight
    # at the kill (one per worker) were cut short by the container's death itself.
    assert [repr(error) for error in failures if not cut_short(error)] == []
    assert len(failures) <= len(workers)
    assert len(record) > 100
    before = Counter(name for at, name in record if at < killed_at)
    after = Counter(name for at, name in record if at > killed_at + 0.5)
    assert set(before) == set(containers)
    assert set(after) == set(containers) - {victim}
