"""Hearing a heartbeat: the lease is renewed, and a node that was down is ready again.

The heartbeat route (`POST /v1/agent/heartbeats`, for one node or many)
comes here. A node is declared down when its lease
runs out (health.py); its agent may well be alive (a partition, a stopped
process, a manager that could not listen). The first heartbeat heard from it
again brings it back: the lease first (so no health pass sees it ready with
its old, expired lease), then the node record, `ready`, in one write for all
the nodes of the call. Its tasks were lost when it went down and are replaced
elsewhere; the agent, told its node `recovered`, lists its tasks afresh and
stops the containers of the lost ones. A write that loses a race is left to
the next heartbeat (the node is still down then, and is brought back then).
"""

from collections.abc import Iterable
from dataclasses import dataclass, field

from corral.manager import keys
from corral.manager.cluster import back_up
from corral.manager.context import ManagerContext
from corral.manager.writes import dump
from corral.model import NodeState
from corral.store import Op


@dataclass
class Heard:
    unknown: list[str] = field(default_factory=list)  # not registered: they must register again
    recovered: list[str] = field(default_factory=list)  # were down, are ready again


async def hear(ctx: ManagerContext, nodes: Iterable[str]) -> Heard:
    now = ctx.clock()
    heard = Heard()
    ops: list[Op] = []
    back: list[str] = []
    for name in nodes:
        found = ctx.cache.nodes.get(name)
        if found is None:
            heard.unknown.append(name)
            continue
        ctx.leases.renew(name, now)
        if found.obj.state == NodeState.down:
            ops.append(Op.put(keys.node_key(name), dump(back_up(found.obj, now)), expect=found.revision))
            back.append(name)
    if ops:
        revision, skipped = await ctx.store.txn_each(ops)
        lost: set[int] = set(skipped)
        heard.recovered = [name for at, name in enumerate(back) if at not in lost]
        if revision:
            await ctx.cache.wait_for(revision)  # the reply says ready: the API says so too from now on
    return heard
