"""Sorting the keys of a section by the table in keys.py: warnings for ignored keys, problems for refused ones.

Also the one value-level refusal the table cannot say: a bind mount in a
service's `volumes` (a path on the deploying machine, absent on the nodes).
"""

import difflib
from collections.abc import Mapping

from corral.compose.keys import HARMLESS_VALUES, HARMLESS_WHY, Rule
from corral.compose.notes import Notes
from corral.compose.paths import child, item
from corral.compose.problems import Problems


def classify(section: Mapping[str, object], table: Mapping[str, Rule], path: str, notes: Notes, problems: Problems) -> None:
    """A warning for each ignored key of `section`, a problem for each refused or unknown one."""
    for key, value in section.items():
        if key.startswith("x-"):
            continue
        where = child(path, key)
        rule = table.get(key)
        if rule is None:
            near = difflib.get_close_matches(key, list(table), n=1)
            hint = f"; did you mean {near[0]}?" if near else f"; known keys: {', '.join(sorted(table))}"
            problems.add(where, f"not a Compose key corral knows{hint}")
        elif rule.verdict == "ignored":
            notes.ignored(where, rule.why)
        elif rule.verdict == "refused" and value not in (None, [], {}, ""):  # empty asks for nothing
            if isinstance(value, str) and value in HARMLESS_VALUES.get(key, frozenset()):
                notes.ignored(where, HARMLESS_WHY[key])
            else:
                problems.add(where, f"not supported: {rule.why}")


def check_mounts(volumes: object, path: str, problems: Problems) -> None:
    """A problem for each bind mount (a host path) of a service's `volumes`."""
    if not isinstance(volumes, list):
        return
    for index, entry in enumerate(volumes):
        if isinstance(entry, dict):
            source, bind = str(entry.get("source", "")), entry.get("type") == "bind"
        else:
            source = str(entry).split(":")[0]
            bind = ":" in str(entry) and source.startswith((".", "/", "~"))
        if bind:
            problems.add(
                item(path, index),
                f"bind mount of {source[:60]!r}: that path is on your machine, not on the nodes; put files in configs: or secrets:",
            )
