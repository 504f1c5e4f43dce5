"""What differs between two service specs, field by field, as `corral deploy --dry-run` shows it (as `kubectl diff`).

Nested fields are named by their dotted path (`limits.memory`,
`restart_policy.condition`); a list (ports, command) is one field, compared
whole. Values are the JSON forms the API shows. Pure.
"""

import json
from dataclasses import dataclass

from corral.model.service import ServiceSpec


@dataclass(frozen=True)
class FieldChange:
    field: str
    old: object  # None: the field is new (a created service)
    new: object


def spec_changes(old: ServiceSpec | None, new: ServiceSpec) -> list[FieldChange]:
    """The fields of `new` that differ from `old`; for a new service, those that differ from the defaults."""
    before = _flat(old.model_dump(mode="json")) if old is not None else _flat(_defaults(new))
    after = _flat(new.model_dump(mode="json"))
    if old is None:  # a new service's name and stack are in its heading already
        for identity in ("name", "stack"):
            before.pop(identity, None)
            after.pop(identity, None)
    changes = []
    for field in sorted(before.keys() | after.keys()):
        if before.get(field) != after.get(field):
            changes.append(FieldChange(field, before.get(field), after.get(field)))
    return changes


def show(value: object) -> str:
    """A value as a diff line shows it: JSON, `-` for absent."""
    return "-" if value is None else json.dumps(value, ensure_ascii=False)


def _defaults(spec: ServiceSpec) -> dict[str, object]:
    """A spec with only the required fields of `spec` set: what a created service's changes are measured from."""
    return ServiceSpec(name=spec.name, image=spec.image).model_dump(mode="json") | {"image": None}


def _flat(value: object, prefix: str = "") -> dict[str, object]:
    if isinstance(value, dict):  # an empty mapping is no field: its entries are
        flat: dict[str, object] = {}
        for key, entry in value.items():
            flat.update(_flat(entry, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    return {prefix: value}
