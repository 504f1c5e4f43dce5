"""Writing what agents and users change of nodes: registration, availability and labels, removal.

The rules are in `cluster` (pure); these write them with compare-and-swap
through `writes`, again after a lost race (agents and the controller write
nodes too).
"""

from corral.manager import keys
from corral.manager.cache import Versioned
from corral.manager.cluster import changed_node, check_removable, registered_node
from corral.manager.context import ManagerContext
from corral.manager.writes import put_with_retry, write_with_retry
from corral.model import Node, NodeAvailability, Resources
from corral.model.errors import NotFound
from corral.store import Op


def _found(name: str, found: Versioned[Node] | None) -> Versioned[Node]:
    if found is None:
        raise NotFound(f"node {name!r} not found (see `corral node ls`)")
    return found


async def register(
    ctx: ManagerContext, name: str, address: str, resources: Resources, labels: dict[str, str], engine: str,
    credential_digest: str, certificate_serial: str | None = None, agent_port: int | None = None,
) -> Node:
    """Register (or re-register) an agent's node with the digest of its credential; its lease is renewed first.

    `certificate_serial`: of the certificate just issued to it, the only one it may connect with from now
    on (None: the node keeps the ones it had; a fleet's other nodes share its first node's certificate)."""
    now = ctx.clock()
    # The lease first: no controller pass may see the node ready again with its old, expired lease.
    ctx.leases.renew(name, now)
    return await put_with_retry(
        ctx.store,
        ctx.cache,
        keys.node_key(name),
        lambda: ctx.cache.nodes.get(name),
        lambda current: registered_node(
            current.obj if current else None, name, address, resources, labels, engine, now
        ).model_copy(update={"credential": credential_digest, "agent_port": agent_port, **({"certificates": [certificate_serial]} if certificate_serial else {})}),
        f"node {name}",
        attempts=5,
    )


async def renew_certificate(ctx: ManagerContext, name: str, serial: str) -> Node:
    """The node's agent got a new certificate: it and the one before it are the node's (the old one for
    connections still open); older ones are refused."""
    return await put_with_retry(
        ctx.store,
        ctx.cache,
        keys.node_key(name),
        lambda: ctx.cache.nodes.get(name),
        lambda found: _found(name, found).obj.model_copy(update={"certificates": [*_found(name, found).obj.certificates, serial][-2:]}),
        f"node {name}",
    )


async def change(ctx: ManagerContext, name: str, availability: NodeAvailability | None, labels: dict[str, str] | None) -> Node:
    """Set a node's availability and/or its user labels."""
    return await put_with_retry(
        ctx.store,
        ctx.cache,
        keys.node_key(name),
        lambda: ctx.cache.nodes.get(name),
        lambda found: changed_node(_found(name, found).obj, availability, labels),
        f"node {name}",
    )


async def remove(ctx: ManagerContext, name: str, force: bool) -> Node:
    """Remove a node (one that is up only with `force`) and forget its lease; returns the node removed."""

    def plan() -> tuple[list[Op], Node]:
        found = _found(name, ctx.cache.nodes.get(name))
        check_removable(found.obj, force)
        return [Op.delete(keys.node_key(name), expect=found.revision)], found.obj

    node, _ = await write_with_retry(ctx.store, ctx.cache, plan, f"node {name}")
    ctx.leases.forget(name)
    return node
