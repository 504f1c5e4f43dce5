"""Several compose files merged into one, as `docker compose -f a.yaml -f b.yaml` merges override files.

Mappings merge key by key, the later file winning; lists are appended;
`command`, `entrypoint` and `healthcheck.test` are replaced; `ports`,
`volumes`, `secrets` and `configs` of a service keep one entry per unique key
(the later one wins); `environment` and `labels` merge in their mapping form,
whichever form each file wrote them in. `!reset` removes a value and
`!override` replaces it whole. Each file is interpolated before the merge
(the Compose Specification's order). Pure.
"""

from collections.abc import Callable

from corral.compose.keyvalues import as_mapping
from corral.compose.yaml_loader import Override, Reset

_REPLACED = frozenset({("command",), ("entrypoint",), ("healthcheck", "test")})
_KEY_VALUES = frozenset({("environment",), ("labels",), ("deploy", "labels"), ("sysctls",), ("build", "args")})


def merge_documents(documents: list[object]) -> object:
    """The merge of `documents` in order (the first is the base)."""
    merged: object = documents[0] if documents else {}
    for document in documents[1:]:
        merged = _merge(merged, document, ())
    return _without_tags(merged)


def _without_tags(value: object) -> object:
    """`value` with `!override` unwrapped and `!reset` entries left out (in the base file, they have nothing to act on)."""
    if isinstance(value, Override):
        return _without_tags(value.value)
    if isinstance(value, dict):
        return {key: _without_tags(entry) for key, entry in value.items() if not isinstance(entry, Reset)}
    if isinstance(value, list):
        return [_without_tags(entry) for entry in value if not isinstance(entry, Reset)]
    return value


def _merge(base: object, override: object, steps: tuple[str, ...]) -> object:
    if isinstance(override, (Reset, Override)):
        return override  # acted on by _without_tags once every file is merged
    service = steps[2:] if len(steps) >= 2 and steps[0] == "services" else None
    if service is not None and service in _KEY_VALUES:
        try:
            return {**as_mapping(base), **as_mapping(override)}
        except ValueError:
            return override  # not KEY=VALUE: the parser reports it
    if isinstance(base, dict) and isinstance(override, dict):
        result = dict(base)
        for key, value in override.items():
            result[key] = _merge(base[key], value, (*steps, str(key))) if key in base else value
        return result
    if isinstance(base, list) and isinstance(override, list):
        if service in _REPLACED:
            return override
        unique = _UNIQUE.get(service[0]) if service is not None and len(service) == 1 else None
        if unique is None:
            return [*base, *override]
        keyed = {unique(entry): entry for entry in base}
        for entry in override:
            keyed[unique(entry)] = entry
        return list(keyed.values())
    return override


def _port_key(entry: object) -> object:
    if isinstance(entry, dict):
        return (entry.get("host_ip"), entry.get("target"), entry.get("published"), entry.get("protocol", "tcp"))
    return str(entry)


def _target(entry: object) -> object:
    if isinstance(entry, dict):
        return entry.get("target", entry.get("source"))
    text = str(entry)
    parts = text.split(":")
    return parts[1] if len(parts) > 1 else parts[0]


def _source(entry: object) -> object:
    if isinstance(entry, dict):
        return entry.get("target", entry.get("source"))
    return str(entry)


_UNIQUE: dict[str, Callable[[object], object]] = {"ports": _port_key, "volumes": _target, "secrets": _source, "configs": _source}
