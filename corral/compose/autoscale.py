"""`x-corral-autoscale`: replicas follow CPU use or the request rate (see manager/autoscale.py for the rule).

    x-corral-autoscale:
      min: 2                      # default 1
      max: 20                     # required
      target: {cpu: 70}           # percent of the CPU reservation per replica (of one core without one)
      # or target: {requests_per_second: 100}   per replica, counted by the routing mesh (a new connection
      #                                          is a request: the mesh is a TCP proxy)
      interval: 15s               # between two samples (default 15s)
      tolerance: 0.1              # no change within 10% of the target (default)
      behavior:
        scale_up: {stabilization: 0s}      # default: at once
        scale_down: {stabilization: 5m}    # default: the highest recommendation of the last 5 minutes

Only for replicated services; an unknown key is an error (a misspelt setting would otherwise scale wrongly).
"""

from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from corral.compose.durations import parse_duration
from corral.compose.paths import child
from corral.compose.values import read_mapping, read_positive_count, read_ratio
from corral.model.autoscale import AutoscaleSpec
from corral.model.errors import InvalidSpec
from corral.model.service import ServiceMode

AUTOSCALE_KEY = "x-corral-autoscale"


def _known(settings: dict[str, object], allowed: frozenset[str], path: str) -> None:
    for key in settings:
        if key not in allowed:
            raise InvalidSpec(child(path, key), f"unknown setting; expected one of: {', '.join(sorted(allowed))}")


def _percent(value: object, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 10_000:
        raise InvalidSpec(path, "must be a percentage above 0 (of the CPU reservation, or of one core)")
    return float(value)


def _rate(value: object, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1_000_000:
        raise InvalidSpec(path, "must be a number of requests per second per replica, above 0 (at most 1000000)")
    return float(value)


def _read(settings: dict[str, object], key: str, path: str, read: Callable[[object, str], Any], into: dict[str, Any], name: str) -> None:
    if settings.get(key) is not None:
        into[name] = read(settings[key], child(path, key))


def parse_autoscale(section: dict[str, object], path: str, mode: ServiceMode) -> AutoscaleSpec | None:
    """The service's autoscaling, None when it has none."""
    value = section.get(AUTOSCALE_KEY)
    if value is None:
        return None
    where = child(path, AUTOSCALE_KEY)
    settings = read_mapping(value, where)
    _known(settings, frozenset({"min", "max", "target", "interval", "tolerance", "behavior"}), where)
    if mode != ServiceMode.replicated:
        raise InvalidSpec(where, f"only a replicated service autoscales (this one is {mode.value})")
    if "max" not in settings:
        raise InvalidSpec(child(where, "max"), "is required: the most replicas autoscaling may run")
    target = read_mapping(settings.get("target"), child(where, "target"))
    _known(target, frozenset({"cpu", "requests_per_second"}), child(where, "target"))
    if len(target) != 1:
        raise InvalidSpec(
            child(where, "target"),
            "needs one of cpu: PERCENT (of the CPU reservation, or of one core without one) "
            "or requests_per_second: N (per replica, through the routing mesh)",
        )
    fields: dict[str, Any] = {"max": read_positive_count(settings["max"], child(where, "max"))}
    if "cpu" in target:
        fields["target_cpu"] = _percent(target["cpu"], child(child(where, "target"), "cpu"))
    else:
        fields["target_requests_per_second"] = _rate(target["requests_per_second"], child(child(where, "target"), "requests_per_second"))
    _read(settings, "min", where, read_positive_count, fields, "min")
    _read(settings, "interval", where, parse_duration, fields, "interval")
    _read(settings, "tolerance", where, read_ratio, fields, "tolerance")
    behavior = read_mapping(settings.get("behavior"), child(where, "behavior"))
    _known(behavior, frozenset({"scale_up", "scale_down"}), child(where, "behavior"))
    for direction in ("scale_up", "scale_down"):
        at = child(child(where, "behavior"), direction)
        rule = read_mapping(behavior.get(direction), at)
        _known(rule, frozenset({"stabilization"}), at)
        _read(rule, "stabilization", at, parse_duration, fields, f"{direction}_stabilization")
    try:
        return AutoscaleSpec(**fields)
    except ValidationError as error:
        problem = error.errors()[0]
        loc = ".".join(str(part) for part in problem["loc"])
        raise InvalidSpec(child(where, loc) if loc else where, problem["msg"].removeprefix("Value error, ")) from None
