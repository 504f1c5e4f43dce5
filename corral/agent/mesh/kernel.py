"""The kernel data path: TCP listeners as iptables NAT rules, as kube-proxy's iptables mode does.

Each TCP listener becomes DNAT rules in the nat table: `statistic --mode nth`
spreads new connections over the backends in turn, conntrack keeps every
established connection on its backend whatever the rules become. Two chains
hold them, one per way in:

- `CORRAL-MESH-<cluster>`, jumped to from OUTPUT (connections made on this
  node, loopback ones included), DNATs to the backends' published addresses;
- `CORRAL-MESH-<cluster>-PRE`, jumped to from PREROUTING (connections from
  other hosts), DNATs a backend that is a container of this node straight to
  the container's own address (the shortcuts the agent learns from the
  engine: published address -> container address), as Docker's own
  PREROUTING DNAT of a published port does, so the connection does not pass
  the engine's userland proxy; other backends keep their published address.

Packets redirected to a published address are marked, and those leaving by an
interface other than loopback are masqueraded (`-POST`), so that the replies
of a backend on another node come back through this one. Packets redirected
to a container of this node are not: the container answers by its default
route, this node's bridge, where conntrack undoes the DNAT, and it sees the
client's own address (Docker's published ports behave the same). The filter
table's FORWARD verdict for them is the engine's own for its published port
(Docker's DOCKER-USER, then the DOCKER chain's ACCEPT of that container port):
the packet is the same as after Docker's DNAT, so nothing is added there.
Connections made on the node itself never go to a container address: a
loopback source DNATed off loopback needs `route_localnet`, which corral does
not set (CVE-2020-8558).

The whole ruleset is rewritten in one `iptables-restore --noflush` (atomic per
table); `remove` deletes the jumps and the chains. What the kernel cannot do
is retry a refused connection: see docs/architecture.md, "Routing mesh".
`render` is pure; the rest runs iptables.
"""

import asyncio
import re
from collections.abc import Mapping, Sequence

from corral.agent.mesh.table import Backend, Table

MARK = "0x4000/0x4000"


class KernelPathError(Exception):
    """iptables refused a command (not root, no nat table, ...)."""


def chain_names(cluster: str) -> tuple[str, str, str]:
    """The cluster's chains for OUTPUT, PREROUTING and POSTROUTING (iptables allows 28 characters)."""
    name = re.sub(r"[^A-Za-z0-9_-]", "", cluster)[:11] or "default"
    return f"CORRAL-MESH-{name}", f"CORRAL-MESH-{name}-PRE", f"CORRAL-MESH-{name}-POST"


def render(cluster: str, table: Table, shortcuts: Mapping[Backend, Backend] | None = None) -> str:
    """iptables-restore input that makes the cluster's chains hold exactly `table`'s TCP listeners.

    `shortcuts` (published address -> the container's own, for this node's
    containers) apply to connections from other hosts only.
    """
    local = {
        published: container for published, container in (shortcuts or {}).items() if ":" not in container.ip
    }
    output, prerouting, post = chain_names(cluster)
    lines = ["*nat", f":{output} - [0:0]", f":{prerouting} - [0:0]", f":{post} - [0:0]"]
    for listener, backends in sorted(table.items()):
        if listener.protocol != "tcp" or not backends or ":" in listener.ip:
            continue
        match = f"-d {listener.ip}/32 -p tcp -m tcp --dport {listener.port}"
        lines.extend(_spread(f"-A {output} {match}", [], list(backends)))
        lines.extend(_spread(
            f"-A {prerouting} {match}",
            [local[backend] for backend in backends if backend in local],
            [backend for backend in backends if backend not in local],
        ))
    lines.append(f"-A {post} -m mark --mark {MARK} ! -o lo -j MASQUERADE")
    lines.append("COMMIT")
    return "\n".join(lines) + "\n"


def _spread(match: str, containers: Sequence[Backend], published: Sequence[Backend]) -> list[str]:
    """DNAT rules taking 1/n of the new connections each: the containers of this node first, unmarked,
    then the mark (masquerade) and the published addresses."""
    # rule i sees the connections rules 0..i-1 let through and takes every (n-i)th of them: 1/n each
    rules = []
    targets = [*containers, *published]
    for index, backend in enumerate(targets):
        if index == len(containers):
            rules.append(f"{match} -j MARK --set-xmark {MARK}")
        left = len(targets) - index
        nth = f" -m statistic --mode nth --every {left} --packet 0" if left > 1 else ""
        rules.append(f"{match}{nth} -j DNAT --to-destination {backend.ip}:{backend.port}")
    return rules


class KernelPath:
    def __init__(self, cluster: str) -> None:
        self.cluster = cluster
        self.dnat, self.pre, self.post = chain_names(cluster)
        self._jumps = [("OUTPUT", self.dnat), ("PREROUTING", self.pre), ("POSTROUTING", self.post)]

    async def apply(self, table: Table, shortcuts: Mapping[Backend, Backend] | None = None) -> None:
        await run_command(["iptables-restore", "-w", "--noflush"], render(self.cluster, table, shortcuts))
        for parent, chain in self._jumps:
            try:
                await run_command(["iptables", "-w", "-t", "nat", "-C", parent, "-j", chain])
            except KernelPathError:
                await run_command(["iptables", "-w", "-t", "nat", "-I", parent, "1", "-j", chain])

    async def remove(self) -> None:
        """Delete the jumps and the chains; what is already gone is fine."""
        for parent, chain in [*self._jumps, ("PREROUTING", self.dnat)]:  # the last: earlier versions' jump
            while await command_succeeds(["iptables", "-w", "-t", "nat", "-D", parent, "-j", chain]):
                pass
        for chain in (self.dnat, self.pre, self.post):
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
