"""What the engine has of a cluster's networks on this host, and the questions asked of it (pure).

A `NetworkView` is a snapshot: each network's bridge interface, subnet and attached containers (their
task ids and addresses), made by `view_of` from two listings of the engine (its networks, its running
containers with their endpoints) whatever the number of networks. The DNS responder asks it which networks a querying address is on (the
container's source address tells it who asks) and which addresses a service's replicas have there.
"""

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

DOCKER_PREFIX = "crl"  # engine network names: crl<cluster[:8]>_<name>, so they never meet a user's own networks


def engine_name(cluster_id: str, network: str) -> str:
    """The engine's name of cluster network `network` (`shop_default` -> `crl1a2b3c4d_shop_default`)."""
    return f"{DOCKER_PREFIX}{cluster_id[:8]}_{network}"


@dataclass(frozen=True)
class Member:
    container: str
    task: str  # the task id, from the container's name SERVICE.SLOT.TASK
    ip: str


@dataclass(frozen=True)
class Network:
    name: str  # in the cluster (shop_default)
    engine_id: str
    bridge: str  # the host interface (br-0123456789ab)
    subnet: str
    members: tuple[Member, ...] = ()
    spare: bool = False  # a second network of the same name (two agents made it at once): the older one is used
    internal: bool = False  # no new connection leaves the node from it


@dataclass(frozen=True)
class NetworkView:
    networks: dict[str, Network] = field(default_factory=dict)  # by engine id

    def networks_of(self, ip: str) -> set[str]:
        """Every network the container with address `ip` is on (empty: not a container of the cluster)."""
        containers = {m.container for n in self.networks.values() for m in n.members if m.ip == ip}
        return {n.name for n in self.networks.values() if any(m.container in containers for m in n.members)}

    def addresses(self, networks: Iterable[str], tasks: Iterable[str]) -> list[str]:
        """The addresses of the containers of `tasks` on `networks`, one per container, sorted."""
        wanted = set(tasks)
        found: dict[str, str] = {}
        names = set(networks)
        for network in sorted(self.networks.values(), key=lambda n: (n.name, n.engine_id)):
            if network.name not in names:
                continue
            for member in network.members:
                if member.task in wanted:
                    found.setdefault(member.container, member.ip)
        return sorted(set(found.values()), key=ipaddress.ip_address)


def task_of(container_name: str) -> str:
    """The task id in a container name SERVICE.SLOT.TASK (the engine driver's naming)."""
    return container_name.lstrip("/").rpartition(".")[2]


def view_of(
    summaries: Iterable[Mapping[str, Any]], containers: Iterable[Mapping[str, Any]], network_label: str, internal_label: str
) -> NetworkView:
    """The view from the engine's network list (`GET /networks`: labels, IPAM, options, no members) and its running
    containers (`GET /containers/json`: each endpoint's network id and address), pure. Networks without the
    `network_label` are not the cluster's; of two networks of one name, the younger is the spare."""
    members: dict[str, list[Member]] = {}
    for container in containers:
        task = task_of(str((container.get("Names") or [""])[0]))
        endpoints = (container.get("NetworkSettings") or {}).get("Networks") or {}
        for endpoint in endpoints.values():
            if endpoint.get("IPAddress") and endpoint.get("NetworkID"):
                members.setdefault(str(endpoint["NetworkID"]), []).append(Member(str(container["Id"]), task, str(endpoint["IPAddress"])))
    found: dict[str, Network] = {}
    names: set[str] = set()
    for summary in sorted(summaries, key=lambda n: (str(n.get("Created", "")), str(n["Id"]))):  # oldest first
        network_labels = summary.get("Labels") or {}
        name = network_labels.get(network_label, "")
        if not name:
            continue
        engine_id = str(summary["Id"])
        configs = (summary.get("IPAM") or {}).get("Config") or [{}]
        bridge = (summary.get("Options") or {}).get("com.docker.network.bridge.name") or f"br-{engine_id[:12]}"
        found[engine_id] = Network(
            name, engine_id, bridge, str(configs[0].get("Subnet", "")),
            tuple(sorted(members.get(engine_id, ()), key=lambda m: m.container)), name in names,
            internal=network_labels.get(internal_label) == "true",
        )
        names.add(name)
    return NetworkView(found)
