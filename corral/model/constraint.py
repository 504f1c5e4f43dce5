"""Placement constraints (`node.labels.zone == east`), parsed once, matched many times."""

import re
from dataclasses import dataclass

from corral.model.errors import InvalidSpec

_CONSTRAINT = re.compile(r"^\s*(node\.(?:name|hostname|id|role|labels\.[A-Za-z0-9_.\-/]+))\s*(==|!=)\s*(.*?)\s*$")


@dataclass(frozen=True)
class Constraint:
    field: str  # "name" or "labels.<key>" (node.hostname and node.id mean the name)
    equal: bool
    value: str

    def matches(self, name: str, labels: dict[str, str], role: str = "worker") -> bool:
        if self.field == "name":
            actual: str | None = name
        elif self.field == "role":
            actual = role
        else:
            actual = labels.get(self.field.removeprefix("labels."))
        return (actual == self.value) if self.equal else (actual != self.value)

    def __str__(self) -> str:
        return f"node.{self.field} {'==' if self.equal else '!='} {self.value}"


def parse_constraint(text: str, path: str = "constraint") -> Constraint:
    """Parse one constraint; `path` names where it came from in the error."""
    match = _CONSTRAINT.match(text)
    if not match or not match.group(3):
        raise InvalidSpec(
            path,
            f"invalid constraint {text[:60]!r}: expected 'node.name|node.labels.KEY ==|!= VALUE'",
        )
    field = match.group(1).removeprefix("node.")
    if field in ("hostname", "id"):
        field = "name"
    return Constraint(field=field, equal=match.group(2) == "==", value=match.group(3))
