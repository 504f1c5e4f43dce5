"""The `deploy` section of a service: mode, replicas, resources, placement, restart policy, labels,
update_config and rollback_config."""

from dataclasses import dataclass
from typing import Literal

from corral.compose.durations import parse_duration
from corral.compose.keyvalues import parse_labels
from corral.compose.notes import Notes
from corral.compose.paths import child, item
from corral.compose.resources import parse_resources
from corral.compose.values import (
    optional,
    read_choice,
    read_count,
    read_list,
    read_mapping,
    read_positive_count,
    read_ratio,
    read_string,
    read_string_list,
)
from corral.model.constraint import parse_constraint
from corral.model.errors import InvalidSpec
from corral.model.resources import Resources
from corral.model.service import FailureAction, Placement, RestartPolicy, ServiceMode, ServiceSpec, UpdateConfig, UpdateOrder

Condition = Literal["any", "on-failure", "none"]

_DEPLOY_KEYS = frozenset(
    {"mode", "replicas", "resources", "placement", "restart_policy", "labels", "update_config", "rollback_config"}
)
_UPDATE_KEYS = frozenset({"parallelism", "delay", "order", "monitor", "max_failure_ratio", "failure_action"})
_ORDERS: tuple[UpdateOrder, ...] = ("stop-first", "start-first")
_UPDATE_FAILURE_ACTIONS: tuple[FailureAction, ...] = ("pause", "continue", "rollback")
_ROLLBACK_FAILURE_ACTIONS: tuple[FailureAction, ...] = ("pause", "continue")  # as in Swarm: a rollback does not roll back
_PLACEMENT_KEYS = frozenset({"constraints", "max_replicas_per_node", "preferences"})
_SPREAD_PREFIX = "node.labels."
_RESTART_KEYS = frozenset({"condition", "delay", "max_attempts", "window"})
_MODES = ("replicated", "global", "replicated-job", "global-job")
_CONDITIONS: tuple[Condition, ...] = ("none", "on-failure", "any")


@dataclass(frozen=True)
class Deploy:
    """What the deploy section sets on a ServiceSpec."""

    mode: ServiceMode
    replicas: int
    limits: Resources
    reservations: Resources
    placement: Placement
    restart_policy: RestartPolicy
    service_labels: dict[str, str]
    update_config: UpdateConfig
    rollback_config: UpdateConfig


def parse_deploy(value: object, path: str, notes: Notes) -> Deploy:
    """The deploy section at `path`; null or absent is all defaults."""
    section = read_mapping(value, path)
    notes.ignore_unknown(section, _DEPLOY_KEYS, path)
    mode = ServiceMode(optional(section, "mode", path, _read_mode, "replicated"))
    replicas = optional(section, "replicas", path, read_count, ServiceSpec.model_fields["replicas"].default)
    if mode in (ServiceMode.global_, ServiceMode.global_job) and section.get("replicas") is not None:
        raise InvalidSpec(child(path, "replicas"), f"is not allowed with mode {mode.value}")
    limits, reservations = parse_resources(section.get("resources"), child(path, "resources"), notes)
    return Deploy(
        mode=mode,
        replicas=replicas,
        limits=limits,
        reservations=reservations,
        placement=_parse_placement(section.get("placement"), child(path, "placement"), notes),
        restart_policy=_parse_restart_policy(section.get("restart_policy"), child(path, "restart_policy"), notes),
        service_labels=parse_labels(section.get("labels"), child(path, "labels")),
        update_config=_parse_update_config(section.get("update_config"), child(path, "update_config"), notes, _UPDATE_FAILURE_ACTIONS),
        rollback_config=_parse_update_config(
            section.get("rollback_config"), child(path, "rollback_config"), notes, _ROLLBACK_FAILURE_ACTIONS
        ),
    )


def _read_mode(value: object, path: str) -> str:
    return read_choice(value, path, _MODES, "mode")


def _parse_placement(value: object, path: str, notes: Notes) -> Placement:
    section = read_mapping(value, path)
    notes.ignore_unknown(section, _PLACEMENT_KEYS, path)
    constraints_path = child(path, "constraints")
    constraints = read_string_list(section.get("constraints"), constraints_path)
    for index, text in enumerate(constraints):
        parse_constraint(text, item(constraints_path, index))
    return Placement(
        constraints=constraints,
        max_replicas_per_node=optional(section, "max_replicas_per_node", path, read_positive_count, None),
        preferences=_parse_preferences(section.get("preferences"), child(path, "preferences")),
    )


def _parse_preferences(value: object, path: str) -> list[str]:
    """`[{spread: node.labels.zone}, ...]` (Swarm's placement preferences): the spread descriptors, in order."""
    spreads = []
    for index, entry in enumerate(read_list(value, path) if value is not None else []):
        at = item(path, index)
        preference = read_mapping(entry, at)
        if set(preference) != {"spread"}:
            raise InvalidSpec(at, "must be {spread: node.labels.KEY}: spread is the only preference")
        spread = read_string(preference["spread"], child(at, "spread"))
        if not spread.startswith(_SPREAD_PREFIX) or not spread.removeprefix(_SPREAD_PREFIX):
            raise InvalidSpec(child(at, "spread"), f"invalid spread {spread!r}: expected node.labels.KEY, e.g. node.labels.zone")
        spreads.append(spread)
    return spreads


def _parse_restart_policy(value: object, path: str, notes: Notes) -> RestartPolicy:
    section = read_mapping(value, path)
    notes.ignore_unknown(section, _RESTART_KEYS, path)
    default = RestartPolicy()
    return RestartPolicy(
        condition=optional(section, "condition", path, _read_condition, default.condition),
        delay=optional(section, "delay", path, parse_duration, default.delay),
        max_attempts=optional(section, "max_attempts", path, read_count, default.max_attempts),
        window=optional(section, "window", path, parse_duration, default.window),
    )


def _read_condition(value: object, path: str) -> Condition:
    return read_choice(value, path, _CONDITIONS, "condition")


def _parse_update_config(value: object, path: str, notes: Notes, failure_actions: tuple[FailureAction, ...]) -> UpdateConfig:
    section = read_mapping(value, path)
    notes.ignore_unknown(section, _UPDATE_KEYS, path)
    default = UpdateConfig()

    def read_order(value: object, path: str) -> UpdateOrder:
        return read_choice(value, path, _ORDERS, "order")

    def read_failure_action(value: object, path: str) -> FailureAction:
        return read_choice(value, path, failure_actions, "failure action")

    return UpdateConfig(
        parallelism=optional(section, "parallelism", path, read_count, default.parallelism),
        delay=optional(section, "delay", path, parse_duration, default.delay),
        order=optional(section, "order", path, read_order, default.order),
        monitor=optional(section, "monitor", path, parse_duration, default.monitor),
        max_failure_ratio=optional(section, "max_failure_ratio", path, read_ratio, default.max_failure_ratio),
        failure_action=optional(section, "failure_action", path, read_failure_action, default.failure_action),
    )


def parse_canary(value: object, path: str, notes: Notes) -> int | None:
    """`x-corral-canary: {replicas: N}` at `path`: update only N replicas, then hold; absent or null is no canary."""
    if value is None:
        return None
    section = read_mapping(value, path)
    notes.ignore_unknown(section, frozenset({"replicas"}), path)
    if section.get("replicas") is None:
        raise InvalidSpec(child(path, "replicas"), "is required: how many replicas the canary updates")
    return read_positive_count(section["replicas"], child(path, "replicas"))
