"""The services' virtual IPs as addresses of this host, so the mesh can listen on them.

Every service VIP is a /32 on the loopback interface, labelled with the
cluster (a dummy interface would be tidier, but not every kernel has the
module). Containers reach a VIP through their default route (the engine's
bridge gateway, which is this host); the host accepts it as one of its own
addresses, and the mesh's VIP listener forwards the connection to a healthy
replica. Several agents on one host (a local cluster) share the addresses
and the listeners (SO_REUSEPORT).

`ensure` runs at every change of the mesh routes, and each `ip` process is a
fork of the agent on its event loop (a quarter of a `corral up` process's busy
time during a run of deploys went to such forks). So the addresses it last
brought in line are taken as the host's for `recheck` seconds: a change of the
routes that adds no VIP and drops none runs no process, one that does runs
only its `ip addr add`/`del`; after `recheck` seconds (or a failure) the
addresses are listed again, which heals one removed by hand.
"""

import asyncio
import logging

from corral.agent.clock import SYSTEM_CLOCK, Clock

log = logging.getLogger(__name__)


class VipError(Exception):
    pass


class VipInterface:
    """The VIPs of one cluster: /32 addresses on `lo`, under a label of their own (`lo:crl<cluster>`)."""

    def __init__(self, cluster_id: str, clock: Clock = SYSTEM_CLOCK, recheck: float = 30.0) -> None:
        self.label = f"lo:crl{cluster_id[:8]}"
        self.clock = clock
        self.recheck = recheck
        self._held: frozenset[str] | None = None  # what the last `ensure` left on the host (None: list it)
        self._listed_at = 0.0

    async def ensure(self, vips: set[str]) -> None:
        """This host holds exactly `vips` under the cluster's label."""
        held = self._held if self.clock.now() - self._listed_at < self.recheck else None
        if held == frozenset(vips):
            return
        have = set(held) if held is not None else await self.addresses()
        if held is None:
            self._listed_at = self.clock.now()
        self._held = None  # until this pass has succeeded whole
        for vip in sorted(vips - have):
            await _ip("addr", "add", f"{vip}/32", "dev", "lo", "label", self.label, ok_if="already assigned")
        for vip in sorted(have - vips):
            await _ip("addr", "del", f"{vip}/32", "dev", "lo", ok_if="Cannot assign")
        self._held = frozenset(vips)

    async def addresses(self) -> set[str]:
        out = await _ip("-o", "-4", "addr", "show", "dev", "lo", "label", self.label)
        return {line.split()[3].split("/")[0] for line in out.splitlines() if " inet " in line}

    async def remove(self) -> None:
        self._held = None  # what is on the host now, whatever was ensured before
        await self.ensure(set())


async def _ip(*args: str, ok_if: str = "") -> str:
    proc = await asyncio.create_subprocess_exec(
        "ip", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await proc.communicate()
    if proc.returncode != 0:
        message = err.decode(errors="replace").strip()
        if ok_if and ok_if in message:
            return ""
        raise VipError(f"ip {' '.join(args)}: {message or f'exit code {proc.returncode}'}")
    return out.decode(errors="replace")
