"""What a user's request does to a service: scaling, spec patches, removal, and writing them.

The rules are pure (`scaled`, `patched_spec`: a service in, a service or a
spec out; InvalidSpec to refuse, before anything is written); the rollout
changes (update, rollback, promote) are in `rollout`. `change` and `remove`
write with compare-and-swap through `writes`, again after a lost race (the
controller writes rollout status to the same objects).
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from corral.manager import keys, rollout
from corral.manager.cache import Versioned
from corral.manager.context import ManagerContext
from corral.manager.writes import put_with_retry, write_with_retry
from corral.model import Service, ServiceMode, ServiceSpec
from corral.model.errors import InvalidSpec, NotFound
from corral.model.limits import Limits, check_replicas, check_spec
from corral.store import Op


@dataclass(frozen=True)
class SpecPatch:
    """A partial change of a service's spec; what is None (or empty) stays as it is."""

    image: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)  # variables to set (merged into the spec's)
    env_remove: Sequence[str] = ()  # variables to remove
    command: list[str] | None = None
    replicas: int | None = None
    canary: int | None = None  # 0 removes the canary
    update_config: Mapping[str, Any] | None = None  # UpdateConfig fields to change
    rollback_config: Mapping[str, Any] | None = None


def _check_scalable(service: Service) -> None:
    if service.spec.mode in (ServiceMode.global_, ServiceMode.global_job):
        raise InvalidSpec("replicas", f"service {service.name} is {service.spec.mode.value}: it runs one task per node and cannot be scaled")


def scaled(service: Service, replicas: int, now: float, limits: Limits = Limits()) -> Service:
    """The service with `replicas` replicas (itself when it has them already); a global service cannot scale."""
    check_replicas(replicas, limits)
    _check_scalable(service)
    if service.spec.replicas == replicas:
        return service
    spec = service.spec.model_copy(update={"replicas": replicas})
    return service.model_copy(update={"spec": spec, "updated_at": now})


def patched_spec(service: Service, patch: SpecPatch, limits: Limits = Limits()) -> ServiceSpec:
    """The service's spec with `patch` applied, checked as a whole and against `limits`."""
    spec = service.spec
    if patch.replicas is not None:
        _check_scalable(service)
    for key in [*patch.env, *patch.env_remove]:
        if not key or "=" in key:
            raise InvalidSpec("env", f"invalid variable name {key!r}: must be non-empty, without '='")
    changes: dict[str, Any] = {}
    if patch.image is not None:
        changes["image"] = patch.image
    if patch.env or patch.env_remove:
        environment = {k: v for k, v in spec.environment.items() if k not in patch.env_remove}
        changes["environment"] = {**environment, **patch.env}
    if patch.command is not None:
        changes["command"] = patch.command
    if patch.replicas is not None:
        changes["replicas"] = patch.replicas
    if patch.canary is not None:
        changes["canary"] = patch.canary or None
    for name, config in (("update_config", patch.update_config), ("rollback_config", patch.rollback_config)):
        if config is not None:
            changes[name] = {**getattr(spec, name).model_dump(), **config}
    try:
        patched = ServiceSpec.model_validate({**spec.model_dump(), **changes})
    except ValidationError as error:
        problem = error.errors()[0]
        raise InvalidSpec(".".join(str(part) for part in problem["loc"]), problem["msg"]) from None
    check_spec(patched, limits)  # paths are the spec's field names, as the update request's are
    return patched


def updated(service: Service, patch: SpecPatch, now: float, limits: Limits = Limits()) -> Service:
    """The service with its spec patched; a new version rolls out when its tasks must change."""
    return rollout.updated(service, patched_spec(service, patch, limits), now)


def _not_found(name: str) -> NotFound:
    return NotFound(f"service {name!r} not found (see `corral service ls`)")


async def change(ctx: ManagerContext, name: str, edit: Callable[[Service], Service]) -> Service:
    """Write `edit(service)` (nothing when it returns the service as it is); `edit` may raise to refuse."""

    def changed(found: Versioned[Service] | None) -> Service:
        if found is None:
            raise _not_found(name)
        return edit(found.obj)

    return await put_with_retry(
        ctx.store, ctx.cache, keys.service_key(name), lambda: ctx.cache.services.get(name), changed, f"service {name}"
    )


async def remove(ctx: ManagerContext, name: str) -> Service:
    """Remove a service (the controller then stops its tasks); returns the service removed."""

    def plan() -> tuple[list[Op], Service]:
        found = ctx.cache.services.get(name)
        if found is None:
            raise _not_found(name)
        return [Op.delete(keys.service_key(name), expect=found.revision)], found.obj

    service, _ = await write_with_retry(ctx.store, ctx.cache, plan, f"service {name}")
    return service
