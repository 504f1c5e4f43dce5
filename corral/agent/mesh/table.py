"""The routing table a mesh serves: which address each listener has and where it forwards.

`Listener` and `Backend` are named tuples, so plain tuples work as keys and
values too: `{("127.0.0.2", 8080, "tcp"): [("127.0.0.1", 32768)]}`.
`parse_table` checks a whole table before anything is changed and names the
first wrong entry; it does no I/O.
"""

import ipaddress
from collections.abc import Iterable, Mapping
from typing import NamedTuple

from corral.model.errors import InvalidSpec

PROTOCOLS = ("tcp", "udp")


class Listener(NamedTuple):
    ip: str
    port: int
    protocol: str = "tcp"

    def __str__(self) -> str:
        return f"{_host_port(self.ip, self.port)}/{self.protocol}"


class Backend(NamedTuple):
    ip: str
    port: int

    def __str__(self) -> str:
        return _host_port(self.ip, self.port)


Table = dict[Listener, tuple[Backend, ...]]


def parse_table(raw: Mapping[tuple[str, int, str], Iterable[tuple[str, int]]]) -> Table:
    """Validate `raw` into a `Table`; raise `InvalidSpec` naming the first bad entry."""
    table: Table = {}
    for key, backends in raw.items():
        listener = _listener(key)
        table[listener] = tuple(_backend(listener, index, item) for index, item in enumerate(backends))
    return table


def _listener(key: tuple[str, int, str]) -> Listener:
    path = f"mesh table listener {key!r}"
    if not isinstance(key, tuple) or len(key) != 3:
        raise InvalidSpec(path, "a listener is (ip, port, protocol)")
    ip, port, protocol = key
    if protocol not in PROTOCOLS:
        raise InvalidSpec(path, f"unknown protocol {protocol!r}; use one of {', '.join(PROTOCOLS)}")
    return Listener(_ip(path, ip), _port(path, port), protocol)


def _backend(listener: Listener, index: int, item: tuple[str, int]) -> Backend:
    path = f"mesh table {listener} backend {index} {item!r}"
    if not isinstance(item, tuple) or len(item) != 2:
        raise InvalidSpec(path, "a backend is (ip, port)")
    return Backend(_ip(path, item[0]), _port(path, item[1]))


def _ip(path: str, value: object) -> str:
    try:
        # ip_address is typed for str/int/bytes; any other value is tried too and raises ValueError like a bad string
        return str(ipaddress.ip_address(value))  # type: ignore[arg-type]
    except ValueError:
        raise InvalidSpec(path, f"{value!r} is not an IP address") from None


def _port(path: str, value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 65535:
        raise InvalidSpec(path, f"port {value!r} is out of range 1-65535")
    return value


def _host_port(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"
