"""The kernel data path: TCP listeners as iptables NAT rules, as kube-proxy's iptables mode does.

Each TCP listener becomes DNAT rules in one chain of the nat table, jumped
to from OUTPUT (connections made on this node) and PREROUTING (connections
arriving from other hosts): `statistic --mode nth` spreads new connections
over the backends in turn, conntrack keeps every established connection on
its backend whatever the rules become. Packets so redirected are marked, and
those leaving by an interface other than loopback are masqueraded, so that
the replies of a backend on another node come back through this one.

The whole chain is rewritten in one `iptables-restore --noflush` (atomic per
table); `remove` deletes the jumps and the chains. What the kernel cannot do
is retry a refused connection: see docs/architecture.md, "Routing mesh".
`render` is pure; the rest runs iptables.
"""

import asyncio
import re
from collections.abc import Sequence

from corral.agent.mesh.table import Backend, Table

MARK = "0x4000/0x4000"


class KernelPathError(Exception):
    """iptables refused a command (not root, no nat table, ...)."""


def chain_names(cluster: str) -> tuple[str, str]:
    """The DNAT chain and the masquerade chain of a cluster (iptables allows 28 characters)."""
    name = re.sub(r"[^A-Za-z0-9_-]", "", cluster)[:11] or "default"
    return f"CORRAL-MESH-{name}", f"CORRAL-MESH-{name}-POST"


def render(cluster: str, table: Table) -> str:
    """iptables-restore input that makes the cluster's chains hold exactly `table`'s TCP listeners."""
    dnat, post = chain_names(cluster)
    lines = ["*nat", f":{dnat} - [0:0]", f":{post} - [0:0]"]
    for listener, backends in sorted(table.items()):
        if listener.protocol != "tcp" or not backends or ":" in listener.ip:
            continue
        match = f"-A {dnat} -d {listener.ip}/32 -p tcp -m tcp --dport {listener.port}"
        lines.append(f"{match} -j MARK --set-xmark {MARK}")
        lines.extend(_spread(match, backends))
    lines.append(f"-A {post} -m mark --mark {MARK} ! -o lo -j MASQUERADE")
    lines.append("COMMIT")
    return "\n".join(lines) + "\n"


def _spread(match: str, backends: Sequence[Backend]) -> list[str]:
    # rule i sees the connections rules 0..i-1 let through and takes every (n-i)th of them: 1/n each
    rules = []
    for index, backend in enumerate(backends):
        left = len(backends) - index
        nth = f" -m statistic --mode nth --every {left} --packet 0" if left > 1 else ""
        rules.append(f"{match}{nth} -j DNAT --to-destination {backend.ip}:{backend.port}")
    return rules


class KernelPath:
    def __init__(self, cluster: str) -> None:
        self.cluster = cluster
        self.dnat, self.post = chain_names(cluster)
        self._jumps = [("OUTPUT", self.dnat), ("PREROUTING", self.dnat), ("POSTROUTING", self.post)]

    async def apply(self, table: Table) -> None:
        await run_command(["iptables-restore", "-w", "--noflush"], render(self.cluster, table))
        for parent, chain in self._jumps:
            try:
                await run_command(["iptables", "-w", "-t", "nat", "-C", parent, "-j", chain])
            except KernelPathError:
                await run_command(["iptables", "-w", "-t", "nat", "-I", parent, "1", "-j", chain])

    async def remove(self) -> None:
        """Delete the jumps and the chains; what is already gone is fine."""
        for parent, chain in self._jumps:
            while await command_succeeds(["iptables", "-w", "-t", "nat", "-D", parent, "-j", chain]):
                pass
        for chain in (self.dnat, self.post):
            if await command_succeeds(["iptables", "-w", "-t", "nat", "-F", chain]):
                await command_succeeds(["iptables", "-w", "-t", "nat", "-X", chain])


async def run_command(command: list[str], stdin: str | None = None) -> None:
    try:
        process = await asyncio.create_subprocess_exec(
            *command,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
    except FileNotFoundError:
        raise KernelPathError(f"{command[0]} is not installed") from None
    _, stderr = await process.communicate(stdin.encode() if stdin is not None else None)
    if process.returncode != 0:
        raise KernelPathError(f"{' '.join(command)}: {stderr.decode().strip() or f'exit {process.returncode}'}")


async def command_succeeds(command: list[str]) -> bool:
    try:
        await run_command(command)
    except KernelPathError:
        return False
    return True
