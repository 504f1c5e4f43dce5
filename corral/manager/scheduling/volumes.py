"""Where a task may run because of its volumes: a slot sticks to the node that holds its data.

A task's sticky volumes (named, not external, not declared disposable) are
named per slot (`SOURCE.SLOT`). Once one of them is held by a node (a
`Volume` record in the store), every later task of that slot goes to that
node: after a crash, an update, a manager restart. If that node cannot take
it (down, drained, short of room), the task waits with a reason naming the
volume and the node, rather than start empty elsewhere. A slot whose volumes
no node holds yet goes wherever the other filters and the ranking say; the
controller then records its volumes on that node (`new_volumes`).

Pure functions over plain values: no store, no clock.
"""

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

from corral.manager.scheduling.filters import INSUFFICIENT_CPU, INSUFFICIENT_MEMORY
from corral.manager.scheduling.reasons import format_cpus, format_memory
from corral.model import Task
from corral.model.volume import Volume, volume_name

Bindings = Mapping[str, str]
"""Sticky volume name -> the node that holds it."""


@dataclass(frozen=True, slots=True)
class VolumePin:
    """The task must run on `node`, which holds its volume `volume`."""

    node: str
    volume: str


def needs_volumes(task: Task) -> bool:
    """Whether the task uses a named volume of corral's (sticky or not)."""
    return any(mount.type == "volume" and not mount.external for mount in task.spec.volumes)


def sticky_names(task: Task) -> list[str]:
    """The names of the task's volumes that hold data its slot must find again."""
    return [
        volume_name(mount, task.slot, task.node)
        for mount in task.spec.volumes
        if mount.type == "volume" and mount.sticky and not mount.external
    ]


def bindings_of(volumes: Iterable[Volume]) -> dict[str, str]:
    """The sticky volumes' nodes, from the store's records (the oldest record wins if a name is on two nodes)."""
    bound: dict[str, tuple[float, str]] = {}
    for volume in volumes:
        if not volume.sticky:
            continue
        held = bound.get(volume.name)
        if held is None or (volume.created_at, volume.node) < held:
            bound[volume.name] = (volume.created_at, volume.node)
    return {name: node for name, (_, node) in bound.items()}


def removing_of(volumes: Iterable[Volume]) -> set[str]:
    """The names of the sticky volumes being removed (a slot waits until they are gone, then starts afresh)."""
    return {volume.name for volume in volumes if volume.sticky and volume.removing}


def volume_pin(task: Task, bindings: Bindings, removing: Collection[str] = ()) -> VolumePin | str | None:
    """The node the task's volumes tie it to; None if none is held yet; a reason to wait if they are on different
    nodes or being removed."""
    return pin_of(sticky_names(task), bindings, removing)


def pin_of(names: list[str], bindings: Bindings, removing: Collection[str] = ()) -> VolumePin | str | None:
    """`volume_pin` for a task whose sticky volume names are `names` (the scheduler works them out once a task)."""
    node: str | None = None
    first = ""
    apart = False
    for name in names:
        if removing and name in removing:
            return f"volume {name} is being removed from {bindings.get(name, 'its node')}; the task starts once it is gone"
        held = bindings.get(name)
        if held is None:
            continue
        if node is None:
            node, first = held, name
        elif held != node:
            apart = True
    if node is None:
        return None
    if apart:
        where = ", ".join(f"{name} on {bindings[name]}" for name in names if name in bindings)
        return f"its volumes are on different nodes ({where}); remove one with `corral volume rm`"
    return VolumePin(node=node, volume=first)


def explain_volume(pin: VolumePin, reason: str | None, cpus: float = 0.0, memory: int = 0) -> str:
    """Why the task waits for the node holding its volume; `reason` is what the node's first rejecting filter
    said ("down", "drained", "insufficient cpu", ...), None when the node is not in the cluster."""
    head = f"volume {pin.volume} is on {pin.node}"
    if reason is None:
        return f"{head}, which is not in the cluster"
    if reason in ("down", "drained", "paused"):
        return f"{head}, which is {reason}"
    if reason == INSUFFICIENT_CPU:
        return f"{head}, which does not have {format_cpus(cpus)} free"
    if reason == INSUFFICIENT_MEMORY:
        return f"{head}, which does not have {format_memory(memory)} memory free"
    return f"{head}, which is not suitable: {reason}"


def new_volumes(task: Task, node: str, known: Iterable[tuple[str, str]], now: float) -> list[Volume]:
    """The records of the task's volumes that `node` will hold once it runs the task there and does not hold yet.

    known: (node, volume name) of every record stored. External volumes are not corral's: never recorded.
    """
    held = set(known)
    records = []
    for mount in task.spec.volumes:
        if mount.type != "volume" or mount.external:
            continue
        name = volume_name(mount, task.slot, node)
        if (node, name) in held:
            continue
        held.add((node, name))
        records.append(
            Volume(
                name=name, node=node, source=mount.source, stack=task.stack, service=task.service, slot=task.slot,
                sticky=mount.sticky, created_at=now,
            )
        )
    return records
