"""The walk from a compose file's text to corral service specs.

parse_compose reads the YAML, checks the top level and each service's own
keys, and hands the sections to their modules (ports, keyvalues, deploy...).
Options corral does not support are collected into one warning; `x-` keys
are extensions and are skipped silently.
"""

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import yaml

from corral.compose import yaml_loader as compose_yaml
from pydantic import ValidationError

from corral.compose.deploy import parse_canary, parse_deploy
from corral.compose.durations import parse_duration
from corral.compose.healthcheck import parse_healthcheck
from corral.compose.keyvalues import parse_environment, parse_labels
from corral.compose.networks import NetworkDefinition, merge_ports, parse_expose, parse_network_definitions, parse_service_networks
from corral.compose.notes import Notes
from corral.compose.paths import child
from corral.compose.ports import parse_ports
from corral.compose.privileges import check_privileges
from corral.compose.secrets import Definition, parse_definitions, parse_references
from corral.compose.values import optional, read_command, read_mapping, read_non_empty_string, show
from corral.model.errors import InvalidSpec
from corral.model.limits import Limits, check_services, check_spec
from corral.model.service import ServiceSpec

_STACK_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*")
_SERVICE_NAME = re.compile(r"[a-zA-Z0-9_.-]+")
_MAX_NAME_LENGTH = 128  # of "{stack}_{service}", as ServiceSpec.name allows
_TOP_LEVEL_KEYS = frozenset({"version", "name", "services", "secrets", "configs", "networks"})
_SERVICE_KEYS = frozenset(
    {
        "image", "command", "entrypoint", "environment", "labels", "ports", "stop_grace_period", "deploy", "healthcheck",
        "secrets", "configs", "networks", "expose",
    }
)


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
    text: str, stack: str, limits: Limits = Limits(), budget: float = 10.0, clock: Callable[[], float] = time.monotonic
) -> ComposeResult:
    """Turn compose YAML into the specs of stack `stack`; raises InvalidSpec on bad input.

    The file and each spec must stay within `limits`, and reading the YAML within `budget` seconds.
    """
    _check_stack_name(stack)
    size = len(text.encode())
    if size > limits.request_bytes:
        raise InvalidSpec("compose", f"the file is {size} bytes: at most {limits.request_bytes} (--max-request-bytes)")
    document = _load_yaml(text, limits, budget, clock)
    if not isinstance(document, dict):
        raise InvalidSpec("", "a compose file must be a mapping with a 'services' key")
    top = read_mapping(document, "")
    notes = Notes()
    notes.ignore_unknown(top, _TOP_LEVEL_KEYS, "")
    secrets = parse_definitions(top.get("secrets"), "secrets", "secret", stack, notes)
    configs = parse_definitions(top.get("configs"), "configs", "config", stack, notes)
    networks = parse_network_definitions(top.get("networks"), stack, notes)
    sections = _read_services(top.get("services"))
    check_services(len(sections), limits)
    services = []
    for name, body in sections.items():
        spec = _parse_service(name, body, stack, notes, secrets, configs, networks)
        check_spec(spec, limits, partial(_compose_path, child("services", name)))
        services.append(spec)
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


def _load_yaml(text: str, limits: Limits, budget: float, clock: Callable[[], float]) -> object:
    try:
        return compose_yaml.load(text, limits, budget, clock)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f"line {mark.line + 1}: " if mark else ""
        raise InvalidSpec("", f"invalid YAML: {where}{error.problem or error.context or error}") from None
    except yaml.reader.ReaderError as error:
        line = text.count("\n", 0, error.position) + 1
        raise InvalidSpec("", f"invalid YAML: line {line}: {error.reason}") from None
    except yaml.YAMLError as error:
        raise InvalidSpec("", f"invalid YAML: {error}") from None
    except (ValueError, OverflowError) as error:  # e.g. a date like 2024-13-45
        raise InvalidSpec("", f"invalid YAML: {error}") from None
    except RecursionError:
        raise InvalidSpec("", "invalid YAML: nested too deeply") from None


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
    secrets: dict[str, Definition],
    configs: dict[str, Definition],
    networks: dict[str, NetworkDefinition],
) -> ServiceSpec:
    path = child("services", name)
    full_name = _check_service_name(name, stack, path)
    section = read_mapping(value, path)
    check_privileges(section, path)
    notes.ignore_unknown(section, _SERVICE_KEYS, path)
    image = read_non_empty_string(section.get("image"), child(path, "image"))
    deploy = parse_deploy(section.get("deploy"), child(path, "deploy"), notes)
    healthcheck = parse_healthcheck(section.get("healthcheck"), section.get("x-corral-healthcheck"), path, notes)
    try:
        return ServiceSpec(
            name=full_name,
            stack=stack,
            image=image,
            command=optional(section, "command", path, read_command, None),
            entrypoint=optional(section, "entrypoint", path, read_command, None),
            environment=parse_environment(section.get("environment"), child(path, "environment"), notes),
            labels=parse_labels(section.get("labels"), child(path, "labels")),
            ports=merge_ports(
                parse_ports(section.get("ports"), child(path, "ports"), notes),
                parse_expose(section.get("expose"), child(path, "expose"), notes),
            ),
            networks=parse_service_networks(section.get("networks"), child(path, "networks"), networks),
            stop_grace_period=optional(
                section,
                "stop_grace_period",
                path,
                parse_duration,
                ServiceSpec.model_fields["stop_grace_period"].default,
            ),
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
            canary=parse_canary(section.get("x-corral-canary"), child(path, "x-corral-canary"), notes),
            secrets=parse_references(section.get("secrets"), child(path, "secrets"), "secret", secrets),
            configs=parse_references(section.get("configs"), child(path, "configs"), "config", configs),
        )
    except ValidationError as error:  # a safety net: the readers above should catch everything
        problem = error.errors()[0]
        field = ".".join(str(part) for part in problem["loc"])
        raise InvalidSpec(child(path, field), problem["msg"]) from None


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
