"""The kernel data path: iptables DNAT rules rendered (pure) and installed for real on loopback.

A client in a network namespace of its own, through a real container: test_mesh_kernel_netns.py.
"""

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
from corral.agent.mesh.table import Backend

from mesh_backends import ask, free_port


def test_render_spreads_each_tcp_listener_over_its_backends() -> None:
    table = parse_table({
        ("127.0.0.5", 80, "tcp"): [("127.0.0.1", 1), ("127.0.0.1", 2), ("127.0.0.1", 3)],
        ("127.0.0.5", 81, "tcp"): [],  # nothing to send to: left to the userspace listener
        ("127.0.0.5", 53, "udp"): [("127.0.0.1", 4)],  # UDP stays in userspace
    })
    rules = render("c1", table).splitlines()
    assert rules[:4] == ["*nat", ":CORRAL-MESH-c1 - [0:0]", ":CORRAL-MESH-c1-PRE - [0:0]", ":CORRAL-MESH-c1-POST - [0:0]"]
    for chain in ("CORRAL-MESH-c1", "CORRAL-MESH-c1-PRE"):  # without shortcuts, both ways in are the same
        own = [rule for rule in rules if rule.startswith(f"-A {chain} ")]
        assert "MARK" in own[0]  # every redirected connection is marked for the masquerade
        dnat = own[1:]
        assert [nth(rule) for rule in dnat] == ["3", "2", None]
        assert [rule.rsplit(" ", 1)[1] for rule in dnat] == ["127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"]
        assert all("--dport 80 " in rule and "-j DNAT" in rule for rule in dnat)
    assert rules[-2:] == ["-A CORRAL-MESH-c1-POST -m mark --mark 0x4000/0x4000 ! -o lo -j MASQUERADE", "COMMIT"]


def nth(rule: str) -> str | None:
    found = re.search(r"--every (\d)", rule)
    return found.group(1) if found else None


def test_connections_from_other_hosts_go_straight_to_this_nodes_containers() -> None:
    table = parse_table({
        ("10.0.0.5", 80, "tcp"): [("10.0.0.5", 30001), ("10.0.0.6", 30001), ("10.0.0.5", 30002)],
        ("10.0.0.5", 81, "tcp"): [("10.0.0.5", 30003)],
    })
    shortcuts = {
        Backend("10.0.0.5", 30001): Backend("172.17.0.2", 8080),
        Backend("10.0.0.5", 30002): Backend("172.17.0.3", 8080),
        Backend("10.0.0.5", 30003): Backend("172.17.0.4", 8080),
        Backend("10.0.0.5", 30009): Backend("fd00::9", 8080),  # an IPv6 container address: never in an IPv4 rule
    }
    rules = render("c1", table, shortcuts).splitlines()
    pre = [rule for rule in rules if rule.startswith("-A CORRAL-MESH-c1-PRE ")]
    port80 = [rule.split(" -j ", 1)[1] for rule in pre if "--dport 80 " in rule]
    # this node's containers first and unmarked (no masquerade: they answer through this node's bridge and see
    # the client), then the mark and the other node's published address; 1/3 each
    assert port80 == [
        "DNAT --to-destination 172.17.0.2:8080",
        "DNAT --to-destination 172.17.0.3:8080",
        "MARK --set-xmark 0x4000/0x4000",
        "DNAT --to-destination 10.0.0.6:30001",
    ]
    assert [nth(rule) for rule in pre if "--dport 80 " in rule and "DNAT" in rule] == ["3", "2", None]
    assert [rule.split(" -j ", 1)[1] for rule in pre if "--dport 81 " in rule] == ["DNAT --to-destination 172.17.0.4:8080"]
    # connections made on the node itself keep the published addresses (loopback: no route_localnet)
    assert render("c1", table, shortcuts).split(":CORRAL-MESH-c1-PRE")[0] == render("c1", table).split(":CORRAL-MESH-c1-PRE")[0]
    output = [rule for rule in rules if rule.startswith("-A CORRAL-MESH-c1 ")]
    assert output == [rule for rule in render("c1", table).splitlines() if rule.startswith("-A CORRAL-MESH-c1 ")]
    assert not any("172.17." in rule or "fd00" in rule for rule in output)


def test_chain_names_fit_iptables() -> None:
    names = chain_names("a very long cluster name!")
    assert names == ("CORRAL-MESH-averylongcl", "CORRAL-MESH-averylongcl-PRE", "CORRAL-MESH-averylongcl-POST")
    assert max(len(name) for name in names) <= 28


class RecordingKernelPath(KernelPath):
    """Records what it is asked to write instead of running iptables."""

    def __init__(self) -> None:
        super().__init__("rec")
        self.applied: list[dict[Backend, Backend]] = []

    async def apply(self, table, shortcuts=None) -> None:  # type: ignore[no-untyped-def]
        self.applied.append(dict(shortcuts or {}))

    async def remove(self) -> None:
        self.applied.append({})


async def test_new_shortcuts_rewrite_the_rules_and_equal_ones_do_not() -> None:
    mesh = Mesh(MeshSettings(data_path="kernel", cluster="rec"))
    kernel = mesh.kernel = RecordingKernelPath()
    mesh.set_shortcuts({("127.0.0.1", 1): ("172.17.0.2", 8080)})  # no rules yet: nothing to rewrite
    await mesh.kernel_synced()
    assert kernel.applied == []
    front = ("127.0.0.8", free_port("127.0.0.8"), "tcp")
    try:
        await mesh.apply({front: [("127.0.0.1", 1)]})
        assert kernel.applied == [{Backend("127.0.0.1", 1): Backend("172.17.0.2", 8080)}]
        mesh.set_shortcuts({("127.0.0.1", 1): ("172.17.0.2", 8080)})  # the same listing again
        await mesh.kernel_synced()
        assert len(kernel.applied) == 1
        mesh.set_shortcuts({("127.0.0.1", 1): ("172.17.0.9", 8080)})  # the container was replaced
        await mesh.kernel_synced()
        assert kernel.applied[-1] == {Backend("127.0.0.1", 1): Backend("172.17.0.9", 8080)}
    finally:
        await mesh.close()


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
