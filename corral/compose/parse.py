"""The walk from a compose file's text to corral service specs.

parse_compose reads the YAML, checks the top level and each service's own
keys, and hands the sections to their modules (ports, keyvalues, deploy...).
What corral does with each key is in keys.py (honoured, ignored with a
warning, refused); `x-` keys are extensions and are skipped silently. Every
problem of the file is gathered (problems.py) and reported in one error.
"""

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TypeVar

import yaml

from corral.compose import yaml_loader as compose_yaml
from pydantic import ValidationError

from corral.compose.affinity import parse_affinities
from corral.compose.builds import check_build
from corral.compose.container import parse_container
from corral.compose.dependencies import check_dependencies, parse_depends_on
from corral.compose.deploy import parse_canary, parse_deploy
from corral.compose.durations import parse_duration
from corral.compose.healthcheck import parse_healthcheck
from corral.compose.jobs import parse_job
from corral.compose.keyvalues import parse_environment, parse_labels
from corral.compose.networks import NetworkDefinition, merge_ports, parse_expose, parse_network_definitions, parse_service_networks
from corral.compose import keys
from corral.compose.classify import check_mounts, classify
from corral.compose.notes import Notes
from corral.compose.older_forms import with_older_forms
from corral.compose.paths import child
from corral.compose.ports import parse_ports
from corral.compose.privileges import check_privileges
from corral.compose.problems import Problems
from corral.compose.rebalance import parse_rebalance
from corral.compose.autoscale import parse_autoscale
from corral.compose.secrets import Definition, parse_definitions, parse_references
from corral.compose.volumes import VolumeDefinition, parse_mounts, parse_volume_definitions
from corral.compose.values import optional, read_command, read_mapping, read_non_empty_string, show
from corral.model.affinity import Affinity
from corral.model.errors import InvalidSpec
from corral.model.job import JobSpec
from corral.model.limits import Limits, check_services, check_spec
from corral.model.container import ContainerOptions
from corral.model.dependency import Dependency
from corral.model.service import FileReference, NetworkAttachment, PortSpec, ServiceSpec
from corral.model.volume import Mount

_STACK_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*")
_SERVICE_NAME = re.compile(r"[a-zA-Z0-9_.-]+")
_MAX_NAME_LENGTH = 128  # of "{stack}_{service}", as ServiceSpec.name allows
T = TypeVar("T")


@dataclass(frozen=True)
class ComposeResult:
    """The services of a compose file, its secrets and configs, and what the user should know about ignored parts."""

    services: list[ServiceSpec]
    warnings: list[str]
    secrets: dict[str, Definition] = field(default_factory=dict)  # by compose name
    configs: dict[str, Definition] = field(default_factory=dict)

    def definitions(self) -> list[Definition]:
        return [*self.secrets.values(), *self.configs.values()]


def parse_compose(
    text: str, stack: str, limits: Limits = Limits(), budget: float = 10.0, clock: Callable[[], float] = time.monotonic,
    allow_bind: Sequence[str] | None = None, allow_privileged: bool | None = False,
) -> ComposeResult:
    """Turn compose YAML into the specs of stack `stack`; raises InvalidSpec on bad input.

    The file and each spec must stay within `limits`, and reading the YAML within `budget` seconds.
    `allow_bind`: the host directories bind mounts may be under (the manager's --allow-bind); None
    where the policy is not known (the CLI): the manager decides. `allow_privileged`: the manager's
    --allow-privileged (privileges.py); None where the policy is not known (the CLI).
    """
    _check_stack_name(stack)
    size = len(text.encode())
    if size > limits.request_bytes:
        raise InvalidSpec("compose", f"the file is {size} bytes: at most {limits.request_bytes} (--max-request-bytes)")
    document = compose_yaml.read_document(text, limits, budget, clock)
    if not isinstance(document, dict):
        raise InvalidSpec("", "a compose file must be a mapping with a 'services' key")
    top = read_mapping(document, "")
    notes, problems = Notes(), Problems()
    classify(top, keys.TOP_LEVEL, "", notes, problems)
    secrets: dict[str, Definition] = problems.attempt(lambda: parse_definitions(top.get("secrets"), "secrets", "secret", stack, notes), {})
    configs: dict[str, Definition] = problems.attempt(lambda: parse_definitions(top.get("configs"), "configs", "config", stack, notes), {})
    volumes: dict[str, VolumeDefinition] = problems.attempt(lambda: parse_volume_definitions(top.get("volumes"), stack, notes), {})
    default_networks = {"default": NetworkDefinition(f"{stack}_default")}
    networks = problems.attempt(lambda: parse_network_definitions(top.get("networks"), stack, notes), default_networks)
    sections: dict[str, object] = problems.attempt(lambda: _read_services(top.get("services")), {})
    problems.attempt(lambda: check_services(len(sections), limits), None)
    services = []
    for name, body in sections.items():
        spec = _parse_service(name, body, stack, notes, problems, secrets, configs, set(sections), volumes, (allow_bind, allow_privileged), networks)
        if spec is not None:
            problems.attempt(lambda: check_spec(spec, limits, partial(_compose_path, child("services", name))), None)
            services.append(spec)
    for refused in notes.refused:
        problems.note(refused)
    problems.raise_if_any()
    services = check_dependencies(services, stack, notes)  # needs every service: once each one parsed
    return ComposeResult(services=services, warnings=notes.warnings(), secrets=secrets, configs=configs)


# Where a spec's fields come from in a compose file, when the names differ.
_COMPOSE_FIELDS = {
    "replicas": "deploy.replicas",
    "service_labels": "deploy.labels",
    "limits": "deploy.resources.limits",
    "reservations": "deploy.resources.reservations",
    "placement": "deploy.placement",
    "restart_policy": "deploy.restart_policy",
    "update_config": "deploy.update_config",
    "rollback_config": "deploy.rollback_config",
    "canary": "x-corral-canary",
    "job": "x-corral-job",
}


def _compose_path(service: str, field: str) -> str:
    """The compose path of spec field `field` (`limits.memory`) of the service at `service`."""
    head, dot, rest = field.partition(".")
    return child(service, _COMPOSE_FIELDS.get(head, head) + dot + rest) if field else service


def _check_stack_name(stack: object) -> None:
    if not isinstance(stack, str) or not _STACK_NAME.fullmatch(stack):
        raise InvalidSpec(
            "stack",
            f"invalid stack name {show(stack)}: use letters, digits, '_', '.' and '-', starting with a letter or digit",
        )


def _read_services(value: object) -> dict[str, object]:
    if value is None:
        raise InvalidSpec("services", "is required: a mapping of service names to services")
    if not isinstance(value, dict):
        raise InvalidSpec("services", "must be a mapping of service names to services")
    services = {name: body for name, body in read_mapping(value, "services").items() if not name.startswith("x-")}
    if not services:
        raise InvalidSpec("services", "defines no service")
    return services


def _parse_service(
    name: str,
    value: object,
    stack: str,
    notes: Notes,
    problems: Problems,
    secrets: dict[str, Definition],
    configs: dict[str, Definition],
    siblings: set[str],
    volumes: dict[str, VolumeDefinition],
    policy: tuple[Sequence[str] | None, bool | None],  # the manager's --allow-bind and --allow-privileged
    networks: dict[str, NetworkDefinition],
) -> ServiceSpec | None:
    """The spec of service `name`, or None once each of its problems is noted in `problems`."""
    path = child("services", name)
    before = len(problems.found)
    full_name = problems.attempt(lambda: _check_service_name(name, stack, path), "")
    section = problems.attempt(lambda: read_mapping(value, path), None)
    if section is None:
        return None
    allow_bind, allow_privileged = policy
    problems.attempt(lambda: check_privileges(section, path, allow_privileged is not False), None)
    classify(section, keys.SERVICE, path, notes, problems)
    mounts_checked = len(problems.found)
    check_mounts(section.get("volumes"), child(path, "volumes"), problems, allow_bind)
    mounts_allowed = len(problems.found) == mounts_checked  # a refused bind mount: not read again below

    def read(key: str, reader: Callable[[object, str], T], default: T) -> T:
        return problems.attempt(lambda: reader(section.get(key), child(path, key)), default)

    problems.attempt(lambda: check_build(section, path), None)
    built = section.get("image") is None and section.get("build") is not None  # the build: problem says it all
    image = "" if built else read("image", read_non_empty_string, "")
    deploy = problems.attempt(
        lambda: with_older_forms(parse_deploy(section.get("deploy"), child(path, "deploy"), notes), section, path), None
    )
    healthcheck = problems.attempt(
        lambda: parse_healthcheck(section.get("healthcheck"), section.get("x-corral-healthcheck"), path, notes), None
    )
    no_command: list[str] | None = None
    command = problems.attempt(lambda: optional(section, "command", path, read_command, None), no_command)
    entrypoint = problems.attempt(lambda: optional(section, "entrypoint", path, read_command, None), no_command)
    environment: dict[str, str] = read("environment", partial(_with_notes, parse_environment, notes), {})
    labels: dict[str, str] = read("labels", parse_labels, {})
    ports: list[PortSpec] = read("ports", partial(_with_notes, parse_ports, notes), [])
    exposed: list[PortSpec] = read("expose", partial(_with_notes, parse_expose, notes), [])
    attachments: list[NetworkAttachment] = read("networks", lambda v, p: parse_service_networks(v, p, networks), [])
    default_grace: float = ServiceSpec.model_fields["stop_grace_period"].default
    grace = problems.attempt(lambda: optional(section, "stop_grace_period", path, parse_duration, default_grace), default_grace)
    no_canary: int | None = None
    canary = problems.attempt(lambda: parse_canary(section.get("x-corral-canary"), child(path, "x-corral-canary"), notes), no_canary)
    secret_refs: list[FileReference] = read("secrets", lambda v, p: parse_references(v, p, "secret", secrets), [])
    config_refs: list[FileReference] = read("configs", lambda v, p: parse_references(v, p, "config", configs), [])
    no_job: JobSpec | None = None
    job = problems.attempt(lambda: parse_job(section, path, deploy.mode, notes), no_job) if deploy is not None else None
    affinities: list[Affinity] = problems.attempt(lambda: parse_affinities(section, path, name, stack, siblings, notes), [])
    rebalance, cooldown = problems.attempt(lambda: parse_rebalance(section, path, notes), (True, 60.0))
    autoscale = problems.attempt(lambda: parse_autoscale(section, path, deploy.mode), None) if deploy is not None else None
    mounts: list[Mount] = (
        read("volumes", lambda v, p: parse_mounts(v, p, volumes, notes), []) if mounts_allowed else []
    )
    container = problems.attempt(lambda: parse_container(section, path, notes), ContainerOptions())
    depends_on: list[Dependency] = read("depends_on", lambda v, p: parse_depends_on(v, p, stack, notes), [])
    if len(problems.found) > before or deploy is None:
        return None
    try:
        return ServiceSpec(
            name=full_name,
            stack=stack,
            image=image,
            command=command,
            entrypoint=entrypoint,
            environment=environment,
            labels=labels,
            ports=merge_ports(ports, exposed),
            networks=attachments,
            stop_grace_period=grace,
            mode=deploy.mode,
            replicas=deploy.replicas,
            limits=deploy.limits,
            reservations=deploy.reservations,
            placement=deploy.placement,
            restart_policy=deploy.restart_policy,
            service_labels=deploy.service_labels,
            healthcheck=healthcheck,
            update_config=deploy.update_config,
            rollback_config=deploy.rollback_config,
            canary=canary,
            secrets=secret_refs,
            configs=config_refs,
            job=job,
            affinities=affinities,
            rebalance=rebalance,
            rebalance_cooldown=cooldown,
            autoscale=autoscale,
            volumes=mounts,
            container=container,
            depends_on=depends_on,
        )
    except ValidationError as error:  # a safety net: the readers above should catch everything
        problem = error.errors()[0]
        field = ".".join(str(part) for part in problem["loc"])
        problems.add(child(path, field), problem["msg"])
        return None


def _with_notes(reader: Callable[[object, str, Notes], T], notes: Notes, value: object, path: str) -> T:
    return reader(value, path, notes)


def _check_service_name(name: str, stack: str, path: str) -> str:
    """The service's full name, `{stack}_{name}`, once `name` is checked."""
    if not _SERVICE_NAME.fullmatch(name):
        raise InvalidSpec(path, f"invalid service name {show(name)}: use letters, digits, '_', '.' and '-'")
    if name in (".", ".."):  # a path segment: /v1/services/shop_.. would be another URL to every client
        raise InvalidSpec(path, f"invalid service name {show(name)}: '.' and '..' are not names")
    full_name = f"{stack}_{name}"
    if len(full_name) > _MAX_NAME_LENGTH:
        raise InvalidSpec(path, f"the name {show(full_name)} is longer than {_MAX_NAME_LENGTH} characters")
    return full_name
