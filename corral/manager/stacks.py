"""Deploying a stack: what changes when a set of service specs is applied.

`plan_deploy` is pure: the services already stored and the new specs in,
the services to create, update and remove out. A spec identical to the
stored one changes nothing (a re-deploy of the same file is a no-op).
"""

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from corral.manager import rollout
from corral.manager.discovery import DEFAULT_SERVICE_NETWORK, free_vips
from corral.model import Service, ServiceSpec
from corral.model.errors import Conflict, InvalidSpec


@dataclass
class DeployPlan:
    create: list[Service] = field(default_factory=list)
    update: list[Service] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    remove: list[str] = field(default_factory=list)


def plan_deploy(
    existing: Mapping[str, Service],
    stack: str,
    specs: list[ServiceSpec],
    now: float,
    prune: bool,
    service_network: str = DEFAULT_SERVICE_NETWORK,
) -> DeployPlan:
    plan = DeployPlan()
    check_published_ports(existing, stack, specs)
    vips = free_vips(service_network, {s.vip for s in existing.values() if s.vip})
    for spec in specs:
        current = existing.get(spec.name)
        if current is not None and current.spec.stack != stack:
            raise InvalidSpec(
                f"services.{spec.name.removeprefix(stack + '_')}",
                f"service name {spec.name} already belongs to stack {current.spec.stack!r}; rename the service or the stack",
            )
        if current is None:
            plan.create.append(Service(spec=spec, version=1, created_at=now, updated_at=now, vip=_next_vip(vips)))
        elif current.spec == spec:
            plan.unchanged.append(spec.name)
        else:
            plan.update.append(updated(current, spec, now))
    if prune:
        wanted = {spec.name for spec in specs}
        plan.remove = sorted(n for n, s in existing.items() if s.spec.stack == stack and n not in wanted)
    return plan


def _next_vip(vips: Iterator[str]) -> str:
    vip = next(vips, None)
    if vip is None:
        raise Conflict("no virtual IP left in the service network; remove services or widen --service-network")
    return vip


def check_published_ports(existing: Mapping[str, Service], stack: str, specs: list[ServiceSpec]) -> None:
    """An ingress port belongs to one service in the whole cluster (the mesh serves it on every node).

    Host-mode ports of different services may share a number: the scheduler
    keeps them on different nodes.
    """
    owners: dict[tuple[int, str], list[tuple[str, str]]] = {}  # (port, protocol) -> [(service, mode)]
    for name, service in existing.items():
        if service.spec.stack != stack:  # the stack's own services are being replaced by `specs`
            _claim(owners, name, service.spec)
    for spec in specs:
        short = spec.name.removeprefix(stack + "_")
        for index, port in enumerate(spec.ports):
            if port.published is None:
                continue
            for owner, mode in owners.get((port.published, port.protocol), []):
                if "ingress" in (mode, port.mode):
                    raise InvalidSpec(
                        f"services.{short}.ports[{index}]",
                        f"port {port.published}/{port.protocol} is already published by service {owner}",
                    )
            owners.setdefault((port.published, port.protocol), []).append((spec.name, port.mode))


def _claim(owners: dict[tuple[int, str], list[tuple[str, str]]], name: str, spec: ServiceSpec) -> None:
    for port in spec.ports:
        if port.published is not None:
            owners.setdefault((port.published, port.protocol), []).append((name, port.mode))


def updated(current: Service, spec: ServiceSpec, now: float) -> Service:
    """The service with a new spec; the version moves (and a rollout starts) only when tasks must change."""
    return rollout.updated(current, spec, now)
