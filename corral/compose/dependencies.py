"""`depends_on`: the short form (a list of services) and the long form (condition, required, restart).

Each service's entries are read by `parse_depends_on`; `check_dependencies`
then looks at the whole file: a dependency on a service the file does not
define is refused (or, with `required: false`, dropped with a warning), a
cycle is refused with its path, and `service_healthy` needs a health check
on the dependency (as compose says). The manager makes the tasks wait
(`manager/dependencies.py`).
"""

import re

from corral.compose.notes import Notes
from corral.compose.paths import child, item
from corral.compose.values import optional, read_bool, read_choice, read_mapping, read_string, show
from corral.model.dependency import Dependency, DependencyCondition
from corral.model.errors import InvalidSpec
from corral.model.service import ServiceSpec

_SERVICE_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]{0,126}")
_LONG_KEYS = frozenset({"condition", "required", "restart"})
_CONDITIONS: tuple[DependencyCondition, ...] = ("service_started", "service_healthy", "service_completed_successfully")


def parse_depends_on(value: object, path: str, stack: str, notes: Notes) -> list[Dependency]:
    """The dependencies at `path`, each named by its full name (`{stack}_{name}`)."""
    if value is None:
        return []
    if isinstance(value, list):
        names = [(read_string(entry, item(path, index)), item(path, index)) for index, entry in enumerate(value)]
        return [Dependency(service=_full_name(name, stack, at)) for name, at in names]
    dependencies = []
    for name, raw in read_mapping(value, path).items():
        at = child(path, name)
        section = read_mapping(raw, at)
        notes.ignore_unknown(section, _LONG_KEYS, at)
        if section.get("restart") is True:
            notes.warn(f"{child(at, 'restart')} is not honoured yet: dependents are not restarted when {name} is replaced")
        dependencies.append(
            Dependency(
                service=_full_name(name, stack, at),
                condition=optional(section, "condition", at, _read_condition, "service_started"),
                required=optional(section, "required", at, read_bool, True),
            )
        )
    return dependencies


def check_dependencies(services: list[ServiceSpec], stack: str, notes: Notes) -> list[ServiceSpec]:
    """The services once their dependencies are checked against each other (see the module's docstring)."""
    by_name = {spec.name: spec for spec in services}
    checked = []
    for spec in services:
        kept = []
        for dependency in spec.depends_on:
            at = child(child(child("services", _short(spec.name, stack)), "depends_on"), _short(dependency.service, stack))
            target = by_name.get(dependency.service)
            if target is None:
                if dependency.required:
                    raise InvalidSpec(at, f"unknown service {show(_short(dependency.service, stack))}: the file does not define it")
                notes.warn(f"{at}: {_short(dependency.service, stack)} is not defined and not required; not waited for")
                continue
            if dependency.condition == "service_healthy" and target.healthcheck is None:
                raise InvalidSpec(
                    child(at, "condition"), f"service_healthy needs a healthcheck on {_short(target.name, stack)}, which has none"
                )
            kept.append(dependency)
        checked.append(spec if kept == spec.depends_on else spec.model_copy(update={"depends_on": kept}))
    _refuse_cycles({spec.name: [d.service for d in spec.depends_on] for spec in checked}, stack)
    return checked


def _refuse_cycles(graph: dict[str, list[str]], stack: str) -> None:
    done: set[str] = set()

    def visit(name: str, trail: list[str]) -> None:
        if name in trail:
            cycle = [*trail[trail.index(name):], name]
            where = child(child("services", _short(cycle[0], stack)), "depends_on")
            raise InvalidSpec(where, f"{' -> '.join(_short(n, stack) for n in cycle)} is a cycle: a service cannot wait for itself")
        if name in done:
            return
        for dependency in graph.get(name, []):
            visit(dependency, [*trail, name])
        done.add(name)

    for name in graph:
        visit(name, [])


def _full_name(name: str, stack: str, path: str) -> str:
    if not _SERVICE_NAME.fullmatch(name):
        raise InvalidSpec(path, f"invalid service name {show(name)}: use letters, digits, '_', '.' and '-'")
    return f"{stack}_{name}"


def _short(full_name: str, stack: str) -> str:
    return full_name.removeprefix(f"{stack}_")


def _read_condition(value: object, path: str) -> DependencyCondition:
    return read_choice(value, path, _CONDITIONS, "condition")
