"""Deploying a stack: what changes when a set of service specs is applied, and writing it.

`plan_deploy` is pure: the services already stored and the new specs in,
the services to create, update and remove out. A spec identical to the
stored one changes nothing (a re-deploy of the same file is a no-op).
`check_not_stopping` refuses to create a service while the tasks of a
removed one by its name still stop. `deploy` and `remove` write a plan in
one compare-and-swap transaction, planned again after a lost race (the
controller writes rollout status to the same services).
"""

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from corral.manager import keys, rollout
from corral.manager.context import ManagerContext
from corral.manager.discovery import DEFAULT_SERVICE_NETWORK, free_vips
from corral.manager.writes import dump, write_with_retry
from corral.model import Service, ServiceSpec, Task
from corral.model.errors import Conflict, InvalidSpec, NotFound
from corral.model.limits import check_services
from corral.store import Op

_DEPLOY_ATTEMPTS = 5


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
    dry_run: bool = False,
) -> DeployPlan:
    """What deploying `specs` as `stack` changes; a dry run gives new services no virtual IP (it allocates nothing)."""
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
            plan.create.append(Service(spec=spec, version=1, created_at=now, updated_at=now, vip="" if dry_run else _next_vip(vips)))
        elif current.spec == spec:
            plan.unchanged.append(spec.name)
        else:
            plan.update.append(updated(current, spec, now))
    if prune:
        wanted = {spec.name for spec in specs}
        plan.remove = sorted(n for n, s in existing.items() if s.spec.stack == stack and n not in wanted)
    return plan


def check_not_stopping(plan: DeployPlan, tasks: Iterable[Task]) -> None:
    """InvalidSpec if the plan creates a service while live tasks of a removed one by that name remain
    (`tasks`: every task; read only when the plan creates a service)."""
    if not plan.create:
        return
    stopping = {task.service for task in tasks if not task.terminal}
    for service in plan.create:
        if service.name in stopping:
            raise InvalidSpec(f"services.{service.name}", "tasks of a removed service by this name are still stopping; retry shortly")


async def deploy(
    ctx: ManagerContext, stack: str, specs: list[ServiceSpec], prune: bool, dry_run: bool, also: Sequence[Op] = ()
) -> tuple[DeployPlan, int]:
    """Plan the deploy of `specs` as `stack` and write it (unless `dry_run`), with the ops `also` (the
    stack's new secrets and configs) in the same transaction; the plan and the revision it is at (the
    cache's when nothing was written)."""
    cache = ctx.cache

    def plan() -> tuple[list[Op], DeployPlan]:
        existing = {name: v.obj for name, v in cache.services.items()}
        planned = plan_deploy(existing, stack, specs, ctx.clock(), prune, ctx.settings.service_network, dry_run)
        kept = {name for name, s in existing.items() if s.spec.stack == stack} - set(planned.remove)
        check_services(len(kept | {s.name for s in planned.create}), ctx.settings.limits)
        check_not_stopping(planned, (v.obj for v in cache.tasks.values()))
        if dry_run:
            return [], planned
        ops = [*also, *(Op.put(keys.service_key(s.name), dump(s), expect=0) for s in planned.create)]
        ops += [Op.put(keys.service_key(s.name), dump(s), expect=cache.services[s.name].revision) for s in planned.update]
        ops += [Op.delete(keys.service_key(name), expect=cache.services[name].revision) for name in planned.remove]
        return ops, planned

    return await write_with_retry(ctx.store, cache, plan, f"stack {stack}", attempts=_DEPLOY_ATTEMPTS)


async def remove(
    ctx: ManagerContext, stack: str, also: Callable[[list[ServiceSpec]], Sequence[Op]] = lambda _: ()
) -> tuple[list[str], int]:
    """Remove every service of `stack`, and in the same transaction the ops `also` makes from the
    services that remain (the stack's secrets and configs they do not use); the names and the revision."""
    cache = ctx.cache

    def plan() -> tuple[list[Op], list[str]]:
        names = sorted(name for name, v in cache.services.items() if v.obj.spec.stack == stack)
        if not names:
            raise NotFound(f"stack {stack!r} not found (see `corral stack ls`)")
        remaining = [v.obj.spec for v in cache.services.values() if v.obj.spec.stack != stack]
        return [*(Op.delete(keys.service_key(n), expect=cache.services[n].revision) for n in names), *also(remaining)], names

    return await write_with_retry(ctx.store, cache, plan, f"stack {stack}")


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
