"""The store's records of named volumes: listing them, asking for their removal, forgetting removed ones.

A record (`model.volume.Volume`, key `volumes/NODE/NAME`) is written by the
controller when the task that first needs the volume is placed; the
scheduler reads them to keep each slot on the node with its data. Nothing
removes a volume implicitly. Removal is asked for (`corral volume rm`,
`corral stack rm --volumes`): the record is marked `removing`, the node's
agent removes the engine's volume once no container uses it, and reports
it; then the record goes. A user's removal of a volume a live task uses is
refused; the stack's removal marks its volumes while its tasks stop (the
agent waits until they have). The record of a volume on a node no longer in
the cluster (`corral node rm`) is dropped at once: no agent is left to ask,
and the slot it held is free to start elsewhere.
"""

from collections.abc import Container, Iterable, Sequence

from corral.manager import keys
from corral.manager.cache import StateCache, Versioned
from corral.manager.context import ManagerContext
from corral.manager.writes import dump, write_with_retry
from corral.model import Task
from corral.model.errors import Conflict, NotFound
from corral.model.volume import Volume, volume_name
from corral.store import Op


class VolumeInUse(Conflict):
    """A live task uses the volume: it cannot be removed now."""


def users(volume: Volume, tasks: Iterable[Task]) -> list[Task]:
    """The live tasks (not ended) on the volume's node that mount it."""
    found = []
    for task in tasks:
        if task.terminal or task.node != volume.node:
            continue
        if any(m.type == "volume" and volume_name(m, task.slot, task.node) == volume.name for m in task.spec.volumes):
            found.append(task)
    return found


def matching(cache: StateCache, name: str | None = None, node: str | None = None, stack: str | None = None) -> list[Versioned[Volume]]:
    """The records with that name, node and stack (each None: any), by node and name."""
    found = [
        v for v in cache.volumes.values()
        if (name is None or v.obj.name == name) and (node is None or v.obj.node == node) and (stack is None or v.obj.stack == stack)
    ]
    return sorted(found, key=lambda v: (v.obj.node, v.obj.name))


def removal_ops(records: Iterable[Versioned[Volume]], nodes: Container[str]) -> list[Op]:
    """Mark each record `removing`, or drop it if its node is not in `nodes` (compare-and-swap against the copy read)."""
    ops = []
    for v in records:
        key = keys.volume_key(v.obj.node, v.obj.name)
        if v.obj.node not in nodes:
            ops.append(Op.delete(key, expect=v.revision))
        elif not v.obj.removing:
            ops.append(Op.put(key, dump(v.obj.model_copy(update={"removing": True})), expect=v.revision))
    return ops


async def ask_removal(ctx: ManagerContext, name: str, node: str | None) -> list[Volume]:
    """Mark volume `name` (on `node`, or on every node that holds one by that name) for removal by its agent.

    NotFound if there is none; VolumeInUse (409), and nothing marked, if a live task uses one of them.
    """
    cache = ctx.cache

    def plan() -> tuple[Sequence[Op], list[Volume]]:
        found = matching(cache, name=name, node=node)
        if not found:
            where = f" on node {node}" if node else ""
            raise NotFound(f"volume {name!r} not found{where} (see `corral volume ls`)")
        for v in found:
            live = users(v.obj, cache.tasks_on(v.obj.node))
            if live:
                raise VolumeInUse(
                    f"volume {v.obj.name} on {v.obj.node} is in use by task {live[0].id} of service {live[0].service}; "
                    "remove or scale down the service first"
                )
        return removal_ops(found, cache.nodes), [v.obj.model_copy(update={"removing": True}) for v in found]

    volumes, _ = await write_with_retry(ctx.store, cache, plan, f"volume {name}")
    return volumes


async def forget_removed(ctx: ManagerContext, node: str, names: Sequence[str]) -> list[str]:
    """The node's agent removed these volumes: drop their records (only those marked for removal)."""
    cache = ctx.cache

    def plan() -> tuple[Sequence[Op], list[str]]:
        gone = [
            v for name in names
            if (v := cache.volumes.get(keys.volume_key(node, name))) is not None and v.obj.removing
        ]
        return [Op.delete(keys.volume_key(node, v.obj.name), expect=v.revision) for v in gone], [v.obj.name for v in gone]

    forgotten, _ = await write_with_retry(ctx.store, cache, plan, f"volumes of {node}")
    return forgotten
