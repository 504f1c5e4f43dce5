"""`x-corral-rebalance`: `false` keeps the service's replicas where they are when nodes come
(see manager/rebalance.py); `true` (the default) or `{cooldown: 60s}`, how long a replica
runs before it may be moved."""

from corral.compose.durations import parse_duration
from corral.compose.notes import Notes
from corral.compose.paths import child
from corral.compose.values import optional, read_mapping
from corral.model.errors import InvalidSpec
from corral.model.service import ServiceSpec

REBALANCE_KEY = "x-corral-rebalance"


def parse_rebalance(section: dict[str, object], path: str, notes: Notes) -> tuple[bool, float]:
    """(rebalance, cooldown) of the service section at `path`."""
    value = section.get(REBALANCE_KEY)
    default = ServiceSpec.model_fields["rebalance_cooldown"].default
    if value is None or isinstance(value, bool):
        return value is not False, default
    if not isinstance(value, dict):
        raise InvalidSpec(child(path, REBALANCE_KEY), "must be true, false or {cooldown: DURATION}")
    settings = read_mapping(value, child(path, REBALANCE_KEY))
    notes.ignore_unknown(settings, frozenset({"cooldown"}), child(path, REBALANCE_KEY))
    return True, optional(settings, "cooldown", child(path, REBALANCE_KEY), parse_duration, default)
