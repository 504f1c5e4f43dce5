"""`deploy.resources`: CPU and memory limits and reservations."""

import math
import re

from corral.compose.notes import Notes
from corral.compose.paths import child
from corral.compose.sizes import parse_bytes
from corral.compose.values import optional, read_mapping, show
from corral.model.errors import InvalidSpec
from corral.model.resources import Resources

_SECTIONS = frozenset({"limits", "reservations"})
_AMOUNTS = frozenset({"cpus", "memory"})
_DECIMAL = re.compile(r"[0-9]+(?:\.[0-9]*)?|\.[0-9]+")
_CPUS_EXPECTED = "expected a number of CPUs above 0, like 0.5 or '2'"


def parse_resources(value: object, path: str, notes: Notes) -> tuple[Resources, Resources]:
    """(limits, reservations); a reservation above its limit is an error."""
    section = read_mapping(value, path)
    notes.ignore_unknown(section, _SECTIONS, path)
    limits = _parse_amounts(section.get("limits"), child(path, "limits"), notes)
    reservations = _parse_amounts(section.get("reservations"), child(path, "reservations"), notes)
    _check_within(reservations, limits, child(path, "reservations"))
    return limits, reservations


def parse_cpus(value: object, path: str) -> float:
    """A CPU amount above 0, as a number or as text ('0.5')."""
    if isinstance(value, str) and _DECIMAL.fullmatch(value.strip()):
        cpus = float(value)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            cpus = float(value)
        except OverflowError:
            cpus = math.inf
    else:
        raise InvalidSpec(path, f"invalid cpus {show(value)}: {_CPUS_EXPECTED}")
    if not math.isfinite(cpus) or cpus <= 0:
        raise InvalidSpec(path, f"invalid cpus {show(value)}: {_CPUS_EXPECTED}")
    return cpus


def _parse_amounts(value: object, path: str, notes: Notes) -> Resources:
    section = read_mapping(value, path)
    notes.ignore_unknown(section, _AMOUNTS, path)
    return Resources(
        cpus=optional(section, "cpus", path, parse_cpus, 0.0),
        memory=optional(section, "memory", path, parse_bytes, 0),
    )


def _check_within(reservations: Resources, limits: Resources, path: str) -> None:
    if limits.cpus and reservations.cpus > limits.cpus:
        raise InvalidSpec(
            child(path, "cpus"),
            f"reservation of {reservations.cpus:g} CPUs is more than the limit of {limits.cpus:g}",
        )
    if limits.memory and reservations.memory > limits.memory:
        raise InvalidSpec(
            child(path, "memory"),
            f"reservation of {reservations.memory} bytes is more than the limit of {limits.memory}",
        )
