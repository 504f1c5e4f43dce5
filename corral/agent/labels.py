"""The one place that knows the labels corral puts on the containers it starts.

An agent only ever touches containers that carry its cluster's id and its
node's name: it never touches a container it did not start.
"""

TASK = "corral.task"
SERVICE = "corral.service"
STACK = "corral.stack"
NODE = "corral.node"
CLUSTER = "corral.cluster"
SLOT = "corral.slot"


def ownership_filter(cluster_id: str, node: str) -> list[str]:
    """Docker label filters that select exactly this agent's containers."""
    return [f"{CLUSTER}={cluster_id}", f"{NODE}={node}"]
VOLUME = "corral.volume"  # on a named volume: its name in the stack (SOURCE, without the slot)

NETWORK = "corral.network"  # on the engine's networks: the network's name in the cluster
INTERNAL = "corral.internal"  # on the engine's networks: "true" when nothing may leave the node from it
