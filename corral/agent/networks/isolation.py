"""Stacks kept apart: which service VIPs the containers of each network may reach (iptables, filter table).

Containers of two different networks cannot reach each other's addresses: the engine's own rules
(Docker's DOCKER-ISOLATION chains) drop traffic between two bridges. What they could still reach
is every service VIP, since the VIPs are addresses of the host. So one chain per cluster,
`CORRAL-NET-<cluster>`, jumped to from `INPUT` for the service network, lets each network's bridge
reach the DNS responder and the VIPs of the services on that network (and a container on several
networks, from its address on each, the VIPs of them all: it sends by its default route, one of
them), and rejects the rest of the service network from any engine bridge. The chain is rewritten whole by one `iptables-restore
--noflush` (atomic) at every change; `remove` deletes the jump and the chain. Rules the same as the
last ones applied are not written again (no iptables process) for `recheck` seconds; then they are, which
heals a chain someone else flushed.

The VIP listeners are always the userspace mesh (the kernel data path serves published ports
only), so every connection to a VIP passes INPUT.
"""

import asyncio
from collections.abc import Mapping, Set

from corral.agent.clock import SYSTEM_CLOCK, Clock

from corral.agent.mesh.kernel import KernelPathError as IsolationError
from corral.agent.mesh.kernel import command_succeeds as _succeeds
from corral.agent.mesh.kernel import run_command as _run
from corral.agent.networks.view import NetworkView

__all__ = ["IsolationError", "Isolation", "chain_name", "render"]


def chain_name(cluster_id: str) -> str:
    return f"CORRAL-NET-{cluster_id[:8]}"


def forward_chain_name(cluster_id: str) -> str:
    return f"CORRAL-NETFWD-{cluster_id[:8]}"


def render(cluster_id: str, dns: str, view: NetworkView, allowed: Mapping[str, Set[str]]) -> str:
    """iptables-restore input: each network's bridge may reach the DNS responder and `allowed[network]` (VIPs)."""
    chain = chain_name(cluster_id)
    lines = ["*filter", f":{chain} - [0:0]"]
    if dns:
        lines += [f"-A {chain} -d {dns}/32 -p {protocol} --dport 53 -j ACCEPT" for protocol in ("udp", "tcp")]
    ordered = sorted(view.networks.values(), key=lambda n: (n.name, n.engine_id))
    for network in ordered:
        lines += [f"-A {chain} -i {network.bridge} -d {vip}/32 -j ACCEPT" for vip in sorted(allowed.get(network.name, ()))]
    # A container on several networks sends by one of them (its default route) to the VIPs of them all.
    reach: dict[str, set[str]] = {}
    for network in ordered:
        for member in network.members:
            reach.setdefault(member.container, set()).update(allowed.get(network.name, ()))
    for network in ordered:
        for member in network.members:
            for vip in sorted(reach[member.container] - set(allowed.get(network.name, ()))):
                lines.append(f"-A {chain} -i {network.bridge} -s {member.ip}/32 -d {vip}/32 -j ACCEPT")
    for interfaces in ("br-+", "docker0"):
        lines.append(f"-A {chain} -i {interfaces} -p tcp -j REJECT --reject-with tcp-reset")
        lines.append(f"-A {chain} -i {interfaces} -j REJECT --reject-with icmp-port-unreachable")
    forward = forward_chain_name(cluster_id)
    lines.append(f":{forward} - [0:0]")
    for network in ordered:
        if network.internal:  # new connections stay on the bridge (replies to ones made to it pass)
            lines.append(f"-A {forward} -i {network.bridge} ! -o {network.bridge} -m conntrack --ctstate NEW -j REJECT")
    lines.append("COMMIT")
    return "\n".join(lines) + "\n"


class Isolation:
    def __init__(self, cluster_id: str, clock: Clock = SYSTEM_CLOCK, recheck: float = 30.0) -> None:
        self.cluster_id = cluster_id
        self.chain = chain_name(cluster_id)
        self.forward = forward_chain_name(cluster_id)
        self.clock = clock
        self.recheck = recheck
        self._jump: list[str] = []
        self._applied: tuple[str, str] | None = None  # (rules, service network) last applied in full
        self._applied_at = 0.0
        self.writes = 0  # times the rules were written (tests)

    async def apply(self, service_network: str, dns: str, view: NetworkView, allowed: Mapping[str, Set[str]]) -> None:
        rules = render(self.cluster_id, dns, view, allowed)
        if self._applied == (rules, service_network) and self.clock.now() - self._applied_at < self.recheck:
            return
        self._applied = None  # until this write has succeeded whole
        self.writes += 1
        await _run(["iptables-restore", "-w", "--noflush"], rules)
        jump = ["INPUT", "-d", service_network, "-j", self.chain]
        if self._jump and self._jump != jump:
            await _succeeds(["iptables", "-w", "-D", *self._jump])
        for rule in (jump, ["FORWARD", "-j", self.forward]):
            if not await _succeeds(["iptables", "-w", "-C", *rule]):
                await _run(["iptables", "-w", "-I", rule[0], "1", *rule[1:]])
        self._jump = jump
        self._applied, self._applied_at = (rules, service_network), self.clock.now()

    async def remove(self) -> None:
        """The jumps to the chain (also those of an earlier run of the agent) and the chain."""
        self._applied = None
        for parent, chain in (("INPUT", self.chain), ("FORWARD", self.forward)):
            try:
                listed = await _output(["iptables", "-w", "-S", parent])
            except IsolationError:
                listed = ""
            for rule in listed.splitlines():
                if rule.startswith(f"-A {parent} ") and rule.endswith(f"-j {chain}"):
                    await _succeeds(["iptables", "-w", "-D", *rule.split()[1:]])
            if await _succeeds(["iptables", "-w", "-F", chain]):
                await _succeeds(["iptables", "-w", "-X", chain])


async def _output(command: list[str]) -> str:
    proc = await asyncio.create_subprocess_exec(*command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    out, _ = await proc.communicate()
    if proc.returncode != 0:
        raise IsolationError(f"{' '.join(command)}: exit {proc.returncode}")
    return out.decode(errors="replace")
