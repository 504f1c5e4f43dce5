"""`x-corral-affinity` and `x-corral-anti-affinity`: a service placed beside, or away from, another.

Each is one mapping `{service: cache, mode: require|prefer}` or a list of them. `service`
names a service of the same file (made its full name, `stack_cache`) or the full name of
a service of another stack. A service cannot require affinity with itself (its first task
would have nowhere to go); anti-affinity with itself means one task per node.
"""

from corral.compose.notes import Notes
from corral.compose.paths import child, item
from corral.compose.values import optional, read_choice, read_list, read_mapping, read_non_empty_string
from corral.model.affinity import Affinity, AffinityMode
from corral.model.errors import InvalidSpec

AFFINITY_KEY = "x-corral-affinity"
ANTI_AFFINITY_KEY = "x-corral-anti-affinity"
_KEYS = frozenset({"service", "mode"})
_MODES: tuple[AffinityMode, ...] = ("require", "prefer")


def parse_affinities(
    section: dict[str, object], path: str, name: str, stack: str, siblings: set[str], notes: Notes
) -> list[Affinity]:
    """The affinities of service `name` (section at `path`); `siblings`: the compose names of the file's services."""
    found: list[Affinity] = []
    for key, anti in ((AFFINITY_KEY, False), (ANTI_AFFINITY_KEY, True)):
        value = section.get(key)
        if value is None:
            continue
        at = child(path, key)
        entries = [(at, value)] if isinstance(value, dict) else [(item(at, i), e) for i, e in enumerate(read_list(value, at))]
        for where, entry in entries:
            rule = read_mapping(entry, where)
            notes.ignore_unknown(rule, _KEYS, where)
            if rule.get("service") is None:
                raise InvalidSpec(child(where, "service"), "is required: the name of the other service")
            other = read_non_empty_string(rule["service"], child(where, "service"))
            if other == name and not anti:
                raise InvalidSpec(child(where, "service"), "a service cannot require affinity with itself: its first task would have nowhere to go")
            full = f"{stack}_{other}" if other in siblings else other
            mode = optional(rule, "mode", where, _read_mode, "require")
            found.append(Affinity(service=full, mode=mode, anti=anti))
    return found


def _read_mode(value: object, path: str) -> AffinityMode:
    return read_choice(value, path, _MODES, "mode")
