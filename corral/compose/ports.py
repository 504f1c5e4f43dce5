"""`ports`: published container ports, in short (`"18080:8080/udp"`) or long syntax.

Short syntax: `[PUBLISHED:]TARGET[/PROTOCOL]`, or a bare number for the target.
Long syntax: a mapping of target, published, protocol, mode. A host IP is
refused in both: corral publishes on the node's address.
"""

import re
from typing import Literal

from corral.compose.notes import Notes
from corral.compose.paths import child, item
from corral.compose.values import optional, read_choice, read_list, read_mapping, show
from corral.model.errors import InvalidSpec
from corral.model.service import PortSpec

_DIGITS = re.compile(r"[0-9]{1,5}")
_LONG_KEYS = frozenset({"target", "published", "protocol", "mode", "host_ip"})
Protocol = Literal["tcp", "udp"]
Mode = Literal["ingress", "host"]
_PROTOCOLS: tuple[Protocol, ...] = ("tcp", "udp")
_MODES: tuple[Mode, ...] = ("ingress", "host")
_NO_HOST_IP = "a host IP is not supported: ports are published on the node address"


def parse_ports(value: object, path: str, notes: Notes) -> list[PortSpec]:
    """The ports of a service; two publishing the same port and protocol are an error."""
    ports: list[PortSpec] = []
    publishers: dict[tuple[int, str], int] = {}
    for index, entry in enumerate(read_list(value, path)):
        entry_path = item(path, index)
        port = parse_port(entry, entry_path, notes)
        if port.published is not None:
            used = (port.published, port.protocol)
            if used in publishers:
                raise InvalidSpec(
                    entry_path,
                    f"port {port.published}/{port.protocol} is already published by ports[{publishers[used]}]",
                )
            publishers[used] = index
        ports.append(port)
    return ports


def parse_port(value: object, path: str, notes: Notes) -> PortSpec:
    """One item of `ports`, in any of its syntaxes."""
    if isinstance(value, str):
        return _parse_short(value, path)
    if isinstance(value, int) and not isinstance(value, bool):
        return PortSpec(target=_port_number(value, path))
    if isinstance(value, dict):
        return _parse_long(read_mapping(value, path), path, notes)
    raise InvalidSpec(path, "must be a port like '8080:80' or 80, or a mapping with a target")


def _parse_short(text: str, path: str) -> PortSpec:
    ports, slash, protocol = text.strip().partition("/")
    parts = ports.split(":")
    if len(parts) > 2:
        raise InvalidSpec(path, f"{show(text)}: {_NO_HOST_IP}")
    return PortSpec(
        target=_port_number(parts[-1], path),
        published=_port_number(parts[0], path) if len(parts) == 2 else None,
        protocol=_read_protocol(protocol, path) if slash else "tcp",
    )


def _parse_long(section: dict[str, object], path: str, notes: Notes) -> PortSpec:
    notes.ignore_unknown(section, _LONG_KEYS, path)
    if section.get("host_ip") is not None:
        raise InvalidSpec(child(path, "host_ip"), _NO_HOST_IP)
    if section.get("target") is None:
        raise InvalidSpec(child(path, "target"), "is required")
    return PortSpec(
        target=_port_number(section["target"], child(path, "target")),
        published=optional(section, "published", path, _port_number, None),
        protocol=optional(section, "protocol", path, _read_protocol, "tcp"),
        mode=optional(section, "mode", path, _read_mode, "ingress"),
    )


def _read_protocol(value: object, path: str) -> Protocol:
    return read_choice(value, path, _PROTOCOLS, "protocol")


def _read_mode(value: object, path: str) -> Mode:
    return read_choice(value, path, _MODES, "mode")


def _port_number(value: object, path: str) -> int:
    """A port from 1 to 65535, given as a number or as text."""
    if isinstance(value, str):
        text = value.strip()
        if "-" in text:
            raise InvalidSpec(path, f"port range {show(value)} is not supported: publish each port on its own")
        if not _DIGITS.fullmatch(text):
            raise InvalidSpec(path, f"invalid port {show(value)}: expected a number from 1 to 65535")
        number = int(text)
    elif isinstance(value, int) and not isinstance(value, bool):
        number = value
    else:
        raise InvalidSpec(path, "must be a port number from 1 to 65535")
    if not 1 <= number <= 65535:
        raise InvalidSpec(path, f"port {show(number)} is out of range: expected 1 to 65535")
    return number
