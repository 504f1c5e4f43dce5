"""The kernel data path for a client on another host: a network namespace of the test's own, a real container.

The namespace reaches this host only by its veth pair (tests/netns.py); the
mesh listens on the host side's address, the container's port is published on
the same address (a node's address, as on a real node), and the mesh knows the
container's own address as a shortcut (as the agent learns it from the engine).
"""

import asyncio
import subprocess
import uuid
from collections.abc import Iterator

import pytest

from corral.agent.mesh import Mesh, MeshSettings
from corral.agent.mesh.kernel import KernelPath

from mesh_backends import free_port
from tests.netns import ClientNetns, client_netns
from test_mesh_kernel import needs_root, nat_rules

pytestmark = [pytest.mark.e2e, needs_root]

LABEL = f"corral.test.mesh-kernel={uuid.uuid4().hex[:8]}"


def docker(*args: str) -> str:
    return subprocess.run(["docker", *args], check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def netns() -> Iterator[ClientNetns]:
    with client_netns() as ns:
        yield ns


@pytest.fixture
def container(netns: ClientNetns) -> Iterator[tuple[tuple[str, int], tuple[str, int]]]:
    """corral-demo published on the namespace's node address: (published address, its own address)."""
    try:
        cid = docker("run", "-d", "-p", f"{netns.host_ip}::8080", "--label", LABEL, "corral-demo:latest")
        port = int(docker("port", cid, "8080").splitlines()[0].rsplit(":", 1)[1])
        own = docker("inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", cid)
        yield (netns.host_ip, port), (own, 8080)
    finally:
        ids = docker("ps", "-aq", "--filter", f"label={LABEL}").split()
        if ids:
            docker("rm", "-f", *ids)


async def get_from(netns: ClientNetns, url: str) -> str:
    """`timeout 5 wget` inside the namespace (in a subprocess: the mesh's event loop keeps running)."""
    process = await asyncio.create_subprocess_exec(
        *netns.command("timeout", "5", "wget", "-q", "-O-", url),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode == 0, f"wget {url} from {netns.name}: exit {process.returncode}: {err.decode()}"
    return out.decode()


def chain_counts(chain: str) -> dict[str, int]:
    """Packets per target of `chain` ('DNAT 172.17.0.2:8080', 'MARK', ...)."""
    out = subprocess.run(
        ["iptables", "-w", "-t", "nat", "-L", chain, "-n", "-v", "-x"], check=True, capture_output=True, text=True
    ).stdout
    counts: dict[str, int] = {}
    for line in out.splitlines()[2:]:
        fields = line.split()
        target = fields[2] + (" " + fields[-1].removeprefix("to:") if fields[2] == "DNAT" else "")
        counts[target] = counts.get(target, 0) + int(fields[0])
    return counts


async def test_a_client_on_another_host_reaches_this_nodes_container_at_its_own_address(
    netns: ClientNetns, container: tuple[tuple[str, int], tuple[str, int]]
) -> None:
    published, own = container
    cluster = f"n{uuid.uuid4().hex[:8]}"
    mesh = Mesh(MeshSettings(data_path="kernel", cluster=cluster))
    front = (netns.host_ip, free_port(netns.host_ip), "tcp")
    url = f"http://{front[0]}:{front[1]}/"
    try:
        assert await mesh.apply({front: [published]}) == {}
        kernel = mesh.kernel
        assert kernel is not None
        # without a shortcut, the other host's connection goes to the published address (Docker's DNAT after ours)
        assert "hello from corral" in await get_from(netns, url)
        assert chain_counts(kernel.pre).get(f"DNAT {published[0]}:{published[1]}") == 1

        mesh.set_shortcuts({published: own})  # the engine listing names the container's own address
        await mesh.kernel_synced()
        for _ in range(3):
            assert "hello from corral" in await get_from(netns, url)
        counts = chain_counts(kernel.pre)
        assert counts.get(f"DNAT {own[0]}:{own[1]}") == 3  # straight to the container, past Docker's forwarder
        assert counts.get("MARK", 0) == 0  # not masqueraded: it answers through this node's bridge
        # the way in for connections made on this node still names the published address only
        assert own[0] not in subprocess.run(
            ["iptables", "-w", "-t", "nat", "-S", kernel.dnat], check=True, capture_output=True, text=True
        ).stdout
        reader, writer = await asyncio.open_connection(*front[:2])  # and it answers (OUTPUT -> docker-proxy)
        writer.write(f"GET / HTTP/1.0\r\nHost: {front[0]}\r\n\r\n".encode())
        assert b"hello from corral" in await asyncio.wait_for(reader.read(), 5)
        writer.close()
    finally:
        await mesh.close()
        await KernelPath(cluster).remove()  # whatever a failed test left
    assert f"CORRAL-MESH-{cluster}" not in nat_rules()  # chains and jumps gone
    with pytest.raises(AssertionError):  # the port was the mesh's and nothing serves it now
        await get_from(netns, url)
