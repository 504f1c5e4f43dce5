"""Sorting the keys of a section by the table in keys.py: warnings for ignored keys, problems for refused ones.

Also the one value-level refusal the table cannot say: a bind mount in a
service's `volumes` with a relative path (on the deploying machine, absent on
the nodes), or, on the manager, outside the directories `--allow-bind` allows.
"""

import difflib
from collections.abc import Mapping, Sequence

from corral.compose.keys import Rule
from corral.compose.notes import Notes
from corral.compose.paths import child, item
from corral.compose.problems import Problems
from corral.compose.volumes import is_allowed


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
            problems.add(where, f"not supported: {rule.why}")


def check_mounts(volumes: object, path: str, problems: Problems, allow_bind: Sequence[str] | None = None) -> None:
    """A problem for each bind mount of a service's `volumes` that cannot be: a relative path (on your machine,
    not on the nodes), or, where the policy is known (`allow_bind`, the manager's --allow-bind), a path not
    under an allowed directory."""
    if not isinstance(volumes, list):
        return
    for index, entry in enumerate(volumes):
        if isinstance(entry, dict):
            source, bind = str(entry.get("source", "")), entry.get("type") == "bind"
        else:
            source = str(entry).split(":")[0]
            bind = ":" in str(entry) and source.startswith((".", "/", "~"))
        if not bind:
            continue
        if not source.startswith("/"):
            problems.add(
                item(path, index),
                f"bind mount of {source[:60]!r}: that path is on your machine, not on the nodes; put files in configs: or secrets:",
            )
        elif allow_bind is not None and not is_allowed(source, allow_bind):
            where = ", ".join(allow_bind) if allow_bind else "none"
            problems.add(
                item(path, index),
                f"bind mount of {source[:60]!r}: not under a directory the cluster allows (allowed: {where}); "
                "the operator adds one with `corral manager --allow-bind DIR`",
            )
