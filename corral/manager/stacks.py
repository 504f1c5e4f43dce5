"""Deploying a stack: what changes when a set of service specs is applied.

`plan_deploy` is pure: the services already stored and the new specs in,
the services to create, update and remove out. A spec identical to the
stored one changes nothing (a re-deploy of the same file is a no-op).
"""

from collections.abc import Mapping
from dataclasses import dataclass, field

from corral.manager import rollout
from corral.model import Service, ServiceSpec
from corral.model.errors import InvalidSpec


@dataclass
class DeployPlan:
    create: list[Service] = field(default_factory=list)
    update: list[Service] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    remove: list[str] = field(default_factory=list)


def plan_deploy(
    existing: Mapping[str, Service], stack: str, specs: list[ServiceSpec], now: float, prune: bool
) -> DeployPlan:
    plan = DeployPlan()
    for spec in specs:
        current = existing.get(spec.name)
        if current is not None and current.spec.stack != stack:
            raise InvalidSpec(
                f"services.{spec.name.removeprefix(stack + '_')}",
                f"service name {spec.name} already belongs to stack {current.spec.stack!r}; rename the service or the stack",
            )
        if current is None:
            plan.create.append(Service(spec=spec, version=1, created_at=now, updated_at=now))
        elif current.spec == spec:
            plan.unchanged.append(spec.name)
        else:
            plan.update.append(updated(current, spec, now))
    if prune:
        wanted = {spec.name for spec in specs}
        plan.remove = sorted(n for n, s in existing.items() if s.spec.stack == stack and n not in wanted)
    return plan


def updated(current: Service, spec: ServiceSpec, now: float) -> Service:
    """The service with a new spec; the version moves (and a rollout starts) only when tasks must change."""
    return rollout.updated(current, spec, now)
