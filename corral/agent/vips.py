"""The services' virtual IPs as addresses of this host, so the mesh can listen on them.

Every service VIP is a /32 on the loopback interface, labelled with the
cluster (a dummy interface would be tidier, but not every kernel has the
module). Containers reach a VIP through their default route (the engine's
bridge gateway, which is this host); the host accepts it as one of its own
addresses, and the mesh's VIP listener forwards the connection to a healthy
replica. Several agents on one host (a local cluster) share the addresses
and the listeners (SO_REUSEPORT).
"""

import asyncio
import logging

log = logging.getLogger(__name__)


class VipError(Exception):
    pass


class VipInterface:
    """The VIPs of one cluster: /32 addresses on `lo`, under a label of their own (`lo:crl<cluster>`)."""

    def __init__(self, cluster_id: str) -> None:
        self.label = f"lo:crl{cluster_id[:8]}"

    async def ensure(self, vips: set[str]) -> None:
        """This host holds exactly `vips` under the cluster's label."""
        have = await self.addresses()
        for vip in sorted(vips - have):
            await _ip("addr", "add", f"{vip}/32", "dev", "lo", "label", self.label, ok_if="already assigned")
        for vip in sorted(have - vips):
            await _ip("addr", "del", f"{vip}/32", "dev", "lo", ok_if="Cannot assign")

    async def addresses(self) -> set[str]:
        out = await _ip("-o", "-4", "addr", "show", "dev", "lo", "label", self.label)
        return {line.split()[3].split("/")[0] for line in out.splitlines() if " inet " in line}

    async def remove(self) -> None:
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
