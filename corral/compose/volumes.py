"""Compose `volumes:`: the top-level named volumes and each service's mounts.

Top level, one entry per key (a null body is a plain local volume): `driver`
(only `local`), `driver_opts`, `labels`, `name` (the name in the cluster;
default `{stack}_{key}`, as `docker stack deploy`), `external: true` (created
beforehand on the nodes and used by its name: not per slot, not corral's) and
the extension `x-corral-volume: {sticky: false}`, which declares the data
disposable: a slot's task then starts wherever it fits, with a fresh volume
if that node has none, instead of waiting for the node that holds its data.

In a service, the short form is `SOURCE:TARGET[:ro|rw]` (a name defined at
the top level, or an absolute host path for a bind mount); the long form has
`type` (volume, bind, tmpfs), `source`, `target`, `read_only`,
`volume.nocopy` and `tmpfs.size`. Whether a bind mount's path is allowed is
the manager's decision (`corral manager --allow-bind`), not the file's.
"""

import posixpath
from collections.abc import Iterable
from dataclasses import dataclass

from corral.compose.keyvalues import parse_labels
from corral.compose.notes import Notes
from corral.compose.paths import child, item
from corral.compose.sizes import parse_bytes
from corral.compose.values import read_choice, read_list, read_mapping, read_non_empty_string, show
from corral.model.errors import InvalidSpec
from corral.model.volume import VOLUME_NAME, Mount, MountType

_DEFINITION_KEYS = frozenset({"driver", "driver_opts", "labels", "name", "external"})
_MOUNT_KEYS = frozenset({"type", "source", "target", "read_only", "volume", "tmpfs", "bind"})
_TYPES: tuple[MountType, ...] = ("volume", "bind", "tmpfs")
_EXTENSION = "x-corral-volume"


@dataclass(frozen=True)
class VolumeDefinition:
    """One top-level volume, as every mount of it carries it."""

    key: str
    name: str
    external: bool = False
    sticky: bool = True
    driver_opts: tuple[tuple[str, str], ...] = ()
    labels: tuple[tuple[str, str], ...] = ()

    def mount(self, target: str, read_only: bool, nocopy: bool) -> Mount:
        return Mount(
            type="volume", source=self.name, target=target, read_only=read_only, nocopy=nocopy, external=self.external,
            sticky=self.sticky and not self.external, driver_opts=dict(self.driver_opts), labels=dict(self.labels),
        )


def parse_volume_definitions(value: object, stack: str, notes: Notes) -> dict[str, VolumeDefinition]:
    """The top-level `volumes:` section, by compose key."""
    return {
        key: _definition(key, body, child("volumes", key), stack, notes)
        for key, body in read_mapping(value, "volumes").items()
        if not key.startswith("x-")
    }


def parse_mounts(value: object, path: str, defined: dict[str, VolumeDefinition], notes: Notes) -> list[Mount]:
    """A service's `volumes:` list; two mounts on one target are refused."""
    mounts = [_mount(entry, item(path, index), defined, notes) for index, entry in enumerate(read_list(value, path))]
    targets: dict[str, int] = {}
    for index, mount in enumerate(mounts):
        if mount.target in targets:
            raise InvalidSpec(item(path, index), f"target {mount.target} is already used by {item(path, targets[mount.target])}")
        targets[mount.target] = index
    return mounts


def _definition(key: str, body: object, path: str, stack: str, notes: Notes) -> VolumeDefinition:
    section = read_mapping(body, path)
    notes.ignore_unknown(section, _DEFINITION_KEYS, path)
    external = _flag(section.get("external"), child(path, "external"), False)
    driver = section.get("driver")
    if driver is not None and driver != "local":
        raise InvalidSpec(child(path, "driver"), f"unsupported volume driver {show(driver)}: corral creates `local` volumes")
    if external and (section.get("driver_opts") or section.get("labels")):
        raise InvalidSpec(path, "an external volume is created beforehand; drop driver_opts: and labels:")
    name = section.get("name")
    name = read_non_empty_string(name, child(path, "name")) if name is not None else key if external else f"{stack}_{key}"
    if not VOLUME_NAME.fullmatch(name):
        raise InvalidSpec(path, f"invalid volume name {show(name)}: use letters, digits, '_', '.' and '-' (128 at most)")
    extension = read_mapping(section.get(_EXTENSION), child(path, _EXTENSION))
    unknown = sorted(set(extension) - {"sticky"})
    if unknown:
        raise InvalidSpec(child(child(path, _EXTENSION), unknown[0]), "unknown key: expected sticky")
    sticky = _flag(extension.get("sticky"), child(child(path, _EXTENSION), "sticky"), True)
    if external and not sticky:
        raise InvalidSpec(child(path, _EXTENSION), "an external volume is not corral's: it cannot be declared disposable")
    return VolumeDefinition(
        key=key, name=name, external=external, sticky=sticky,
        driver_opts=tuple(parse_labels(section.get("driver_opts"), child(path, "driver_opts")).items()),
        labels=tuple(parse_labels(section.get("labels"), child(path, "labels")).items()),
    )


def _mount(entry: object, path: str, defined: dict[str, VolumeDefinition], notes: Notes) -> Mount:
    if isinstance(entry, str):
        return _short(entry, path, defined)
    section = read_mapping(entry, path)
    if not section:
        raise InvalidSpec(path, "must be SOURCE:TARGET[:ro] or a mapping with type, source and target")
    notes.ignore_unknown(section, _MOUNT_KEYS, path)
    kind = read_choice(section.get("type", "volume"), child(path, "type"), _TYPES, "mount type")
    target = _target(section.get("target"), child(path, "target"))
    read_only = _flag(section.get("read_only"), child(path, "read_only"), False)
    source = section.get("source")
    if kind == "tmpfs":
        if source is not None:
            raise InvalidSpec(child(path, "source"), "a tmpfs mount has no source")
        tmpfs = read_mapping(section.get("tmpfs"), child(path, "tmpfs"))
        notes.ignore_unknown(tmpfs, frozenset({"size"}), child(path, "tmpfs"))
        size = tmpfs.get("size")
        return Mount(
            type="tmpfs", target=target, read_only=read_only,
            tmpfs_size=parse_bytes(size, child(child(path, "tmpfs"), "size")) if size is not None else None,
        )
    source_text = read_non_empty_string(source, child(path, "source"))
    if kind == "bind":
        return Mount(type="bind", source=_host_path(source_text, child(path, "source")), target=target, read_only=read_only)
    options = read_mapping(section.get("volume"), child(path, "volume"))
    notes.ignore_unknown(options, frozenset({"nocopy"}), child(path, "volume"))
    nocopy = _flag(options.get("nocopy"), child(child(path, "volume"), "nocopy"), False)
    return _defined(source_text, child(path, "source"), defined).mount(target, read_only, nocopy)


def _short(entry: str, path: str, defined: dict[str, VolumeDefinition]) -> Mount:
    parts = entry.split(":")
    if len(parts) == 1:
        raise InvalidSpec(path, f"{show(entry)} is an anonymous volume: name it (SOURCE:TARGET) and define it under the top-level volumes:")
    if len(parts) > 3:
        raise InvalidSpec(path, f"{show(entry)}: expected SOURCE:TARGET[:ro|rw]")
    mode = parts[2] if len(parts) == 3 else "rw"
    if mode not in ("ro", "rw"):
        raise InvalidSpec(path, f"{show(entry)}: unknown mode {show(mode)}: expected ro or rw")
    source, target = parts[0], _target(parts[1], path)
    if source.startswith((".", "/", "~")):
        return Mount(type="bind", source=_host_path(source, path), target=target, read_only=mode == "ro")
    return _defined(source, path, defined).mount(target, mode == "ro", False)


def _defined(key: str, path: str, defined: dict[str, VolumeDefinition]) -> VolumeDefinition:
    if key not in defined:
        known = ", ".join(sorted(defined)) or "none"
        raise InvalidSpec(path, f"unknown volume {show(key)}: define it under the top-level volumes: (defined: {known})")
    return defined[key]


def _target(value: object, path: str) -> str:
    target = read_non_empty_string(value, path)
    if not target.startswith("/") or ".." in target.split("/"):
        raise InvalidSpec(path, f"invalid target {show(target)}: an absolute path in the container")
    return posixpath.normpath(target)


def _host_path(value: str, path: str) -> str:
    """A bind mount's source: an absolute path on the nodes (the manager cannot know what `./data` was beside)."""
    if not value.startswith("/"):
        raise InvalidSpec(path, f"bind mount source {show(value)} must be an absolute path on the nodes")
    if ".." in value.split("/"):
        raise InvalidSpec(path, f"bind mount source {show(value)} must not contain '..'")
    return posixpath.normpath(value)


def is_allowed(path: str, allowed: Iterable[str]) -> bool:
    """Whether host path `path` is one of the `allowed` directories or under one (normalised, lexically: the
    manager cannot resolve a node's symlinks)."""
    path = posixpath.normpath(path)
    for directory in allowed:
        directory = posixpath.normpath(directory)
        if path == directory or path.startswith(directory.rstrip("/") + "/"):
            return True
    return False


def _flag(value: object, path: str, default: bool) -> bool:
    if value is None:
        return default
    if not isinstance(value, bool):
        raise InvalidSpec(path, "must be true or false")
    return value
