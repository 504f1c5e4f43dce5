"""Service discovery: from tasks in the store to the endpoints of each service and the routing mesh.

Pure functions over the cache's objects. A task is an endpoint while it is
wanted (desired running) and `running` (healthy, when it has a health
check: the agent reports `running` only then). So a task leaves the list
the moment the manager decides to stop it, before its agent sends SIGTERM,
and joins it only once healthy.

The mesh table of a node: for every service port published in `ingress`
mode, a listener on that node's address forwarding to the endpoints'
published host ports (on whichever node they run); and for every port of a
service, a listener on the service's virtual IP (allocated at deploy from
the service network), which the containers of its stack reach by the
service's name (an /etc/hosts entry). See docs/architecture.md.
"""

import hashlib
import ipaddress
import json
from collections.abc import Iterable, Iterator, Mapping

from pydantic import BaseModel

from corral.model import NetworkAttachment, Service, Task, TaskState
from corral.model.task import DesiredState


class EndpointPort(BaseModel):
    target: int
    protocol: str
    address: str  # host:port where the task's container port is published


class Endpoint(BaseModel):
    task: str
    service: str
    slot: int | None
    node: str | None
    address: str  # host:port of the first published port
    ports: list[EndpointPort]


class Route(BaseModel):
    """One listener of the mesh and where it forwards: a published port on every node's address
    (`vip` empty), or a container port on the service's virtual IP (service to service)."""

    service: str
    stack: str = ""
    vip: str = ""
    port: int
    protocol: str
    target: int
    backends: list[str]  # host:port


class ServiceName(BaseModel):
    """What every node's DNS responder knows of a service: its names on each of its networks, its VIP,
    and which of its tasks are healthy (`tasks.NAME`)."""

    service: str
    stack: str = ""
    vip: str = ""
    networks: list[NetworkAttachment]
    tasks: list[str]  # ids of its healthy tasks


DEFAULT_SERVICE_NETWORK = "10.217.0.0/16"  # where service VIPs come from (kept clear of Docker's 172.17-31/16 pools)


def free_vips(network: str, used: set[str]) -> Iterator[str]:
    """Addresses of `network` not in `used`, lowest first (the network's first address is never handed out)."""
    hosts = ipaddress.ip_network(network).hosts()
    next(hosts, None)
    return (str(ip) for ip in hosts if str(ip) not in used)


def dns_address(network: str) -> str:
    """The address of every node's DNS responder: the service network's first address, never a VIP."""
    return str(next(ipaddress.ip_network(network).hosts()))


def is_healthy(task: Task) -> bool:
    return task.desired_state == DesiredState.running and task.state == TaskState.running


def names(services: Mapping[str, Service], tasks_by_service: Mapping[str, list[Task]]) -> list[ServiceName]:
    """The DNS records of every service with a VIP, in name order."""
    return [
        ServiceName(
            service=name,
            stack=services[name].spec.stack,
            vip=services[name].vip,
            networks=services[name].spec.attached_networks(),
            tasks=sorted(task.id for task in tasks_by_service.get(name, []) if is_healthy(task)),
        )
        for name in sorted(services)
        if services[name].vip
    ]


def is_endpoint(task: Task) -> bool:
    return is_healthy(task) and bool(task.ports)


def endpoints(tasks: Iterable[Task]) -> list[Endpoint]:
    """The endpoints among `tasks` (one service's), in slot order."""
    found = [
        Endpoint(
            task=task.id,
            service=task.service,
            slot=task.slot,
            node=task.node,
            address=task.address,
            ports=[EndpointPort(target=p.target, protocol=p.protocol, address=f"{p.host_ip}:{p.host_port}") for p in task.ports],
        )
        for task in tasks
        if is_endpoint(task)
    ]
    return sorted(found, key=lambda e: (e.slot if e.slot is not None else -1, e.node or "", e.task))


def routes(services: Mapping[str, Service], tasks_by_service: Mapping[str, list[Task]]) -> list[Route]:
    """Every ingress-published port in the cluster with its backends (the same for every node), and every
    port of every service on its VIP: those of its spec and those its image EXPOSEs (which its tasks publish)."""
    result: list[Route] = []
    for name in sorted(services):
        service = services[name]
        spec = service.spec
        found = endpoints(tasks_by_service.get(name, []))
        if not spec.ports and not found:
            continue

        def backends(target: int, protocol: str) -> list[str]:
            return [p.address for e in found for p in e.ports if p.target == target and p.protocol == protocol]

        for port in spec.ports:
            if port.mode == "ingress" and port.published is not None:
                result.append(
                    Route(service=name, stack=spec.stack, port=port.published, protocol=port.protocol, target=port.target,
                          backends=backends(port.target, port.protocol))
                )
        if not service.vip:
            continue
        offered: list[tuple[int, str]] = [(p.target, p.protocol) for p in spec.ports]
        offered += sorted({(p.target, p.protocol) for e in found for p in e.ports} - set(offered))
        for target, protocol in offered:
            result.append(
                Route(service=name, stack=spec.stack, vip=service.vip, port=target, protocol=protocol, target=target,
                      backends=backends(target, protocol))
            )
    return result


def fingerprint(items: Iterable[BaseModel]) -> str:
    """A short digest of a list of models: what a watcher has, to wait for a change from."""
    text = json.dumps([item.model_dump() for item in items], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
