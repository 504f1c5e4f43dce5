"""The kernel data path: iptables DNAT rules rendered (pure) and installed for real on loopback."""

import asyncio
import os
import re
import shutil
import subprocess
import uuid
from collections import Counter

import pytest

from corral.agent.mesh import Mesh, MeshSettings, parse_table
from corral.agent.mesh.kernel import KernelPath, chain_names, render

from mesh_backends import ask, free_port


def test_render_spreads_each_tcp_listener_over_its_backends() -> None:
    table = parse_table({
        ("127.0.0.5", 80, "tcp"): [("127.0.0.1", 1), ("127.0.0.1", 2), ("127.0.0.1", 3)],
        ("127.0.0.5", 81, "tcp"): [],  # nothing to send to: left to the userspace listener
        ("127.0.0.5", 53, "udp"): [("127.0.0.1", 4)],  # UDP stays in userspace
    })
    rules = render("c1", table).splitlines()
    assert rules[:3] == ["*nat", ":CORRAL-MESH-c1 - [0:0]", ":CORRAL-MESH-c1-POST - [0:0]"]
    dnat = [rule for rule in rules if "DNAT" in rule]
    assert [re.search(r"--every (\d)", rule) and re.search(r"--every (\d)", rule).group(1) for rule in dnat] == ["3", "2", None]
    assert [rule.rsplit(" ", 1)[1] for rule in dnat] == ["127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"]
    assert all("--dport 80 " in rule for rule in dnat)
    assert rules[-1] == "COMMIT"


def test_chain_names_fit_iptables() -> None:
    dnat, post = chain_names("a very long cluster name!")
    assert (dnat, post) == ("CORRAL-MESH-averylongcl", "CORRAL-MESH-averylongcl-POST")
    assert len(post) <= 28


needs_root = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("iptables-restore") is None, reason="the kernel data path needs root and iptables"
)


def nat_rules() -> str:
    return subprocess.run(["iptables", "-w", "-t", "nat", "-S"], check=True, capture_output=True, text=True).stdout


def dnat_packets(chain: str) -> int:
    out = subprocess.run(
        ["iptables", "-w", "-t", "nat", "-L", chain, "-n", "-v", "-x"], check=True, capture_output=True, text=True
    ).stdout
    return sum(int(line.split()[0]) for line in out.splitlines() if "DNAT" in line)


@pytest.fixture
async def kernel_mesh():
    cluster = f"t{uuid.uuid4().hex[:8]}"
    mesh = Mesh(MeshSettings(data_path="kernel", cluster=cluster))
    try:
        yield mesh
    finally:
        await mesh.close()
        await KernelPath(cluster).remove()  # whatever a failed test left


@needs_root
async def test_connections_are_spread_by_the_kernel(kernel_mesh: Mesh, named_servers) -> None:
    servers = await named_servers(3)
    front = ("127.0.0.8", free_port("127.0.0.8"), "tcp")
    assert await kernel_mesh.apply({front: [s.address for s in servers]}) == {}
    answers = [await ask(front[:2]) for _ in range(30)]
    assert Counter(answer.split(":")[0] for answer in answers) == {"b0": 10, "b1": 10, "b2": 10}
    assert dnat_packets(kernel_mesh.kernel.dnat) == 30  # the kernel redirected them, not the proxy
    assert kernel_mesh.listeners  # the userspace listener still holds the port


@needs_root
async def test_updates_keep_established_connections_and_close_removes_the_chains(kernel_mesh: Mesh, named_servers) -> None:
    a, b = await named_servers(2)
    front = ("127.0.0.8", free_port("127.0.0.8"), "tcp")
    await kernel_mesh.apply({front: [a.address]})
    reader, writer = await asyncio.open_connection(*front[:2])
    writer.write(b"one\n")
    assert await reader.readline() == b"b0:one\n"

    await kernel_mesh.apply({front: [b.address]})
    assert [await ask(front[:2]) for _ in range(3)] == ["b1:hi"] * 3
    writer.write(b"two\n")
    assert await reader.readline() == b"b0:two\n"  # conntrack keeps it on its backend
    writer.close()

    chain = kernel_mesh.kernel.dnat
    assert f"-N {chain}" in nat_rules()
    await kernel_mesh.close()
    assert "CORRAL-MESH-" + chain.removeprefix("CORRAL-MESH-") not in nat_rules()
