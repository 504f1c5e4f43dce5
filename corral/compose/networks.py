"""`networks` (top level and per service) and `expose`: which networks a service joins, and the ports
it offers there without publishing them.

Every stack has a network of its own, `STACK_default`, which a service joins when it names none. A
network the file defines is `STACK_NAME` (or its `name:`); `external: true` joins a network another
stack owns, by its cluster name (`name:`, or the key), on purpose: that is the only way two stacks
reach each other. `internal: true` gives the network no route out of the node. Drivers other than
`bridge`/`overlay` are refused: each node's agent makes the network a bridge of its engine.
"""

import re
from dataclasses import dataclass

from corral.compose.notes import Notes
from corral.compose.paths import child, item
from corral.compose.ports import parse_port
from corral.compose.values import optional, read_list, read_mapping, read_non_empty_string, show
from corral.model.errors import InvalidSpec
from corral.model.service import NetworkAttachment, PortSpec

_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}")
_ALIAS = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}")
_DEFINITION_KEYS = frozenset({"name", "external", "internal", "driver", "labels", "attachable"})
_ATTACHMENT_KEYS = frozenset({"aliases"})
_DRIVERS = ("bridge", "overlay")


@dataclass(frozen=True)
class NetworkDefinition:
    name: str  # in the cluster
    internal: bool = False


def parse_network_definitions(value: object, stack: str, notes: Notes) -> dict[str, NetworkDefinition]:
    """The top-level `networks:` by compose key, with `default` always there (`STACK_default` unless redefined)."""
    found = {"default": NetworkDefinition(f"{stack}_default")}
    for key, body in read_mapping(value, "networks").items():
        path = child("networks", key)
        if not _NAME.fullmatch(key):
            raise InvalidSpec(path, f"invalid network name {show(key)}: use letters, digits, '_', '.' and '-'")
        section = read_mapping(body, path)
        notes.ignore_unknown(section, _DEFINITION_KEYS, path)
        driver = section.get("driver")
        if driver is not None and driver not in _DRIVERS:
            raise InvalidSpec(child(path, "driver"), f"driver {show(driver)} is not supported: each node's network is a bridge")
        external = optional(section, "external", path, _read_bool, False)
        name = optional(section, "name", path, read_non_empty_string, key if external else f"{stack}_{key}")
        if not _NAME.fullmatch(name):
            raise InvalidSpec(child(path, "name"), f"invalid network name {show(name)}: use letters, digits, '_', '.' and '-'")
        found[key] = NetworkDefinition(name, optional(section, "internal", path, _read_bool, False))
    return found


def parse_service_networks(value: object, path: str, definitions: dict[str, NetworkDefinition]) -> list[NetworkAttachment]:
    """A service's `networks:`, as a list of keys or a mapping of keys to `aliases`; absent or empty: the default network."""
    if value is None or value == [] or value == {}:
        value = ["default"]
    entries: dict[str, object]
    if isinstance(value, list):
        entries = {}
        for index, key in enumerate(value):
            if not isinstance(key, str):
                raise InvalidSpec(item(path, index), "must be the name of a network")
            entries[key] = None
    else:
        entries = read_mapping(value, path)
    attachments = []
    for key, body in entries.items():
        entry_path = child(path, key)
        if key not in definitions:
            known = ", ".join(sorted(definitions))
            raise InvalidSpec(entry_path, f"network {show(key)} is not defined under the top-level `networks:` (defined: {known})")
        section = read_mapping(body, entry_path)
        unknown = sorted(set(section) - _ATTACHMENT_KEYS)
        if unknown:
            raise InvalidSpec(child(entry_path, unknown[0]), "is not supported on a service's network (only `aliases`)")
        aliases = [_read_alias(alias, item(child(entry_path, "aliases"), i)) for i, alias in enumerate(read_list(section.get("aliases"), child(entry_path, "aliases")))]
        definition = definitions[key]
        attachments.append(NetworkAttachment(name=definition.name, aliases=aliases, internal=definition.internal))
    return attachments


def parse_expose(value: object, path: str, notes: Notes) -> list[PortSpec]:
    """`expose:` ports: offered to the service's networks on its virtual IP, published on no node port."""
    ports = []
    for index, entry in enumerate(read_list(value, path)):
        entry_path = item(path, index)
        if isinstance(entry, str) and ":" in entry:
            raise InvalidSpec(entry_path, f"{show(entry)}: `expose` takes a container port (8080 or 8080/udp); publish with `ports`")
        port = parse_port(entry, entry_path, notes)
        ports.append(port)
    return ports


def merge_ports(ports: list[PortSpec], exposed: list[PortSpec]) -> list[PortSpec]:
    """`ports` then the exposed ports that `ports` does not already offer (same target and protocol)."""
    offered = {(p.target, p.protocol) for p in ports}
    extra = []
    for port in exposed:
        if (port.target, port.protocol) not in offered:
            offered.add((port.target, port.protocol))
            extra.append(port)
    return [*ports, *extra]


def _read_alias(value: object, path: str) -> str:
    if not isinstance(value, str) or not _ALIAS.fullmatch(value):
        raise InvalidSpec(path, f"invalid alias {show(value)}: use letters, digits, '_', '.' and '-'")
    return value


def _read_bool(value: object, path: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidSpec(path, f"must be true or false, not {show(value)}")
    return value
