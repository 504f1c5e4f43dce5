"""Compose `secrets:` and `configs:`: the top-level definitions and each service's references.

Top level, one entry per name: a source (`file:` a path beside the compose
file, `environment:` a variable of the deploying shell, `content:` inline
text, for configs only), or `external: true` for a value created beforehand
with `corral secret create`. As `docker stack deploy`, a value defined here
is stored as `{stack}_{key}` unless `name:` says otherwise; an external one
under `name:` or its key. In a service, the short form is the key; the long
form has `source`, `target`, `uid`, `gid`, `mode`. Secrets land in
/run/secrets/TARGET, configs in /TARGET, unless the target is absolute.

This module only parses: it reads no file and no environment (the CLI does,
see sources.py; the manager never reads the user's files).
"""

import posixpath
import re
from dataclasses import dataclass
from typing import Literal

from corral.compose.notes import Notes
from corral.compose.paths import child, item
from corral.compose.values import read_list, read_mapping, read_non_empty_string, read_string, show
from corral.model.errors import InvalidSpec
from corral.model.service import FileReference

Kind = Literal["secret", "config"]
_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}")
_SOURCES: dict[Kind, tuple[str, ...]] = {"secret": ("file", "environment"), "config": ("file", "environment", "content")}
_DEFAULT_DIR: dict[Kind, str] = {"secret": "/run/secrets", "config": "/"}
_REFERENCE_KEYS = frozenset({"source", "target", "uid", "gid", "mode"})


@dataclass(frozen=True)
class Definition:
    """One top-level secret or config: where its value comes from and the name it is stored under."""

    kind: Kind
    key: str  # its name in the compose file
    name: str  # its name in the cluster
    path: str  # where it is defined, for error messages
    file: str | None = None
    environment: str | None = None
    content: str | None = None
    external: bool = False


def parse_definitions(value: object, path: str, kind: Kind, stack: str, notes: Notes) -> dict[str, Definition]:
    """The top-level `secrets:` or `configs:` section, keyed by compose name."""
    return {
        key: _definition(key, body, child(path, key), kind, stack, notes)
        for key, body in read_mapping(value, path).items()
        if not key.startswith("x-")
    }


def parse_references(
    value: object, path: str, kind: Kind, defined: dict[str, Definition]
) -> list[FileReference]:
    """A service's `secrets:` or `configs:` list, each entry checked against the top-level definitions."""
    references = [_reference(entry, item(path, index), kind, defined) for index, entry in enumerate(read_list(value, path))]
    targets: dict[str, int] = {}
    for index, reference in enumerate(references):
        if reference.target in targets:
            raise InvalidSpec(
                item(path, index), f"target {reference.target} is already used by {item(path, targets[reference.target])}"
            )
        targets[reference.target] = index
    return references


def _definition(key: str, body: object, path: str, kind: Kind, stack: str, notes: Notes) -> Definition:
    section = read_mapping(body, path)
    notes.ignore_unknown(section, frozenset({*_SOURCES[kind], "external", "name"}), path)
    external = section.get("external", False)
    if not isinstance(external, bool):
        raise InvalidSpec(child(path, "external"), "must be true or false")
    given = [source for source in _SOURCES[kind] if section.get(source) is not None]
    if kind == "secret" and section.get("content") is not None:
        raise InvalidSpec(child(path, "content"), "a secret cannot be inline: use file: or environment:")
    if external and given:
        raise InvalidSpec(path, f"an external {kind} is created beforehand; drop {given[0]}:")
    if not external and len(given) != 1:
        choices = " or ".join(f"{source}:" for source in _SOURCES[kind])
        problem = "has no value" if not given else f"has both {given[0]}: and {given[1]}:"
        raise InvalidSpec(path, f"{problem}: give exactly one of {choices}, or external: true")
    name = section.get("name")
    if name is None:
        name = key if external else f"{stack}_{key}"
    name = read_non_empty_string(name, child(path, "name"))
    if not _NAME.fullmatch(name):
        raise InvalidSpec(path, f"invalid {kind} name {show(name)}: use letters, digits, '_', '.' and '-' (128 at most)")
    texts = {
        source: (read_string if source == "content" else read_non_empty_string)(section[source], child(path, source))
        for source in given
    }
    return Definition(kind=kind, key=key, name=name, path=path, external=external, **texts)


def _reference(entry: object, path: str, kind: Kind, defined: dict[str, Definition]) -> FileReference:
    if isinstance(entry, str):
        definition = _defined(entry, path, kind, defined)
        return FileReference(source=definition.name, target=_target(entry, kind, path))
    section = read_mapping(entry, path)
    unknown = sorted(set(section) - _REFERENCE_KEYS)
    if unknown:
        raise InvalidSpec(child(path, unknown[0]), f"unknown key: expected {', '.join(sorted(_REFERENCE_KEYS))}")
    source = read_non_empty_string(section.get("source"), child(path, "source"))
    definition = _defined(source, child(path, "source"), kind, defined)
    target = section.get("target")
    return FileReference(
        source=definition.name,
        target=_target(source if target is None else read_non_empty_string(target, child(path, "target")), kind, path),
        uid=_id(section.get("uid"), child(path, "uid")),
        gid=_id(section.get("gid"), child(path, "gid")),
        mode=_mode(section.get("mode"), child(path, "mode")),
    )


def _defined(key: str, path: str, kind: Kind, defined: dict[str, Definition]) -> Definition:
    if key not in defined:
        known = ", ".join(sorted(defined)) or "none"
        raise InvalidSpec(path, f"unknown {kind} {show(key)}: define it under the top-level {kind}s: (defined: {known})")
    return defined[key]


def _target(target: str, kind: Kind, path: str) -> str:
    full = posixpath.normpath(posixpath.join(_DEFAULT_DIR[kind], target))
    if full == "/" or ".." in target.split("/"):
        raise InvalidSpec(child(path, "target"), f"invalid target {show(target)}: a file name or an absolute path")
    return full


def _id(value: object, path: str) -> str:
    if value is None:
        return "0"
    if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).isdigit():
        raise InvalidSpec(path, "must be a numeric user or group id")
    return str(value)


def _mode(value: object, path: str) -> int:
    """File permissions: a YAML number (0440 is octal there) or a string of octal digits ("0440")."""
    if value is None:
        return 0o444
    if isinstance(value, str) and re.fullmatch(r"(0o|0)?[0-7]{1,3}", value):
        value = int(value.removeprefix("0o"), 8)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 0o777:
        raise InvalidSpec(path, "must be file permissions from 0000 to 0777, e.g. 0440")
    return value
