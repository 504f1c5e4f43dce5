"""Why a task was not placed, in words a user can act on.

For a task any node could run, every node of the cluster is put through the
filter chain and the reason of the first filter rejecting it is counted:

    no node has 2 CPUs free (3 nodes: 2 insufficient cpu, 1 drained)

The headline names what was asked when resources were short ("2 CPUs",
"512MiB memory"), and is "no suitable node" otherwise. A task pinned to one
node (global services) gets that node's reason: "node n1 is not suitable:
drained", "node n1 does not have 2 CPUs free".
"""

from collections import Counter

from corral.manager.scheduling.demand import Demand
from corral.manager.scheduling.filters import INSUFFICIENT_CPU, INSUFFICIENT_MEMORY, Chain
from corral.manager.scheduling.snapshot import NodeSlot

NO_NODES = "no nodes in the cluster"
_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def format_cpus(cpus: float) -> str:
    """2 -> "2 CPUs", 1 -> "1 CPU", 0.5 -> "0.5 CPUs"."""
    return f"{cpus:g} CPU" + ("" if cpus == 1 else "s")


def format_memory(memory: int) -> str:
    """Bytes in the largest binary unit that keeps the number >= 1: 536870912 -> "512MiB"."""
    value = float(memory)
    unit = 0
    while value >= 1024 and unit < len(_UNITS) - 1:
        value /= 1024
        unit += 1
    return f"{round(value, 2):g}{_UNITS[unit]}"


def _headline(demand: Demand, short_cpu: bool, short_memory: bool) -> str:
    if short_cpu and short_memory:
        return f"no node has {format_cpus(demand.cpus)} and {format_memory(demand.memory)} memory free"
    if short_cpu:
        return f"no node has {format_cpus(demand.cpus)} free"
    if short_memory:
        return f"no node has {format_memory(demand.memory)} memory free"
    return "no suitable node"


def explain(nodes: list[NodeSlot], chain: Chain, demand: Demand) -> str:
    """Why no node of `nodes` (the whole node table) can take a task of `demand` now."""
    if not nodes:
        return NO_NODES
    counts: Counter[str] = Counter()
    position: dict[str, int] = {}
    for slot in nodes:
        rejection = chain.reject(slot)
        if rejection is None:  # cannot happen when the ranker ran out; say nothing wrong about it
            continue
        at, reason = rejection
        counts[reason] += 1
        position.setdefault(reason, at)
    parts = sorted(counts.items(), key=lambda item: (-item[1], position[item[0]], item[0]))
    total = len(nodes)
    detail = ", ".join(f"{count} {reason}" for reason, count in parts)
    headline = _headline(demand, INSUFFICIENT_CPU in counts, INSUFFICIENT_MEMORY in counts)
    return f"{headline} ({total} node{'' if total == 1 else 's'}: {detail})"


def explain_pinned(name: str, demand: Demand, reason: str | None) -> str:
    """Why node `name`, which a task is pinned to, cannot take it.

    `reason` is what the first rejecting filter said; None when the node is not
    in the node table at all.
    """
    if reason is None:
        return f"node {name} is not in the cluster"
    if reason == INSUFFICIENT_CPU:
        return f"node {name} does not have {format_cpus(demand.cpus)} free"
    if reason == INSUFFICIENT_MEMORY:
        return f"node {name} does not have {format_memory(demand.memory)} memory free"
    return f"node {name} is not suitable: {reason}"
