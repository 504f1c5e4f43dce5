"""How much one request may ask for: the operator's bounds on specs and bodies.

One `Limits` value (the manager's settings hold it; `--limit NAME=N` and
`--max-request-bytes` change it) is checked at the edge, by the compose
parser and by the routes that change a spec, so that nothing larger than
these bounds reaches the store, the controller or an agent. Each refusal is
an InvalidSpec naming the field. The defaults fit every real compose file
with a wide margin; docs/api.md lists them.
"""

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields

import orjson

from corral.model.errors import InvalidSpec
from corral.model.service import ServiceSpec

INT64_MAX = 2**63 - 1  # the store (JSON, SQLite) and the agents' engines keep 64-bit integers


@dataclass(frozen=True)
class Limits:
    request_bytes: int = 4 * 1024 * 1024  # an API request body (a compose file is sent in one)
    services: int = 1000  # services in one stack (one compose file)
    replicas: int = 100_000  # replicas of one service
    environment: int = 1000  # environment variables of one service
    environment_bytes: int = 128 * 1024  # their names and values together (Linux: 128 KiB per argument/variable)
    labels: int = 1000  # labels of one service, container and service labels each
    labels_bytes: int = 64 * 1024  # their keys and values together, per kind
    ports: int = 1000  # published ports of one service (a range counts each port)
    constraints: int = 100  # placement constraints of one service
    spec_bytes: int = 256 * 1024  # a whole service spec as stored (commands, healthcheck... included)
    yaml_nodes: int = 200_000  # YAML nodes in one compose file, aliases counted as what they expand to
    yaml_depth: int = 64  # nesting of mappings and lists in a compose file
    yaml_aliases: int = 1000  # aliases (`*name`, merge keys) in one compose file

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    @property
    def yaml_entries(self) -> int:
        """Entries of any one YAML mapping or list: the largest collection a spec may have."""
        return max(self.services, self.environment, self.labels, self.ports, self.constraints, 1000)


def check_services(count: int, limits: Limits, path: str = "services") -> None:
    if count > limits.services:
        raise InvalidSpec(path, f"{count} services: a stack has at most {limits.services} (--limit services=N)")


def check_replicas(replicas: int, limits: Limits, path: str = "replicas") -> None:
    if replicas > limits.replicas:
        raise InvalidSpec(path, f"must be at most {limits.replicas} (--limit replicas=N)")


def check_spec(spec: ServiceSpec, limits: Limits, where: Callable[[str], str] = lambda field: field) -> None:
    """Refuse a spec beyond `limits`. `where` turns a field's path in the spec (`environment`,
    `limits.memory`, "" for the whole spec) into its path in the input (a compose file's differs)."""
    check_replicas(spec.replicas, limits, where("replicas"))
    _check_pairs(spec.environment, limits.environment, limits.environment_bytes, where("environment"), "environment variables")
    _check_pairs(spec.labels, limits.labels, limits.labels_bytes, where("labels"), "labels")
    _check_pairs(spec.service_labels, limits.labels, limits.labels_bytes, where("service_labels"), "labels")
    if len(spec.ports) > limits.ports:
        raise InvalidSpec(where("ports"), f"{len(spec.ports)} ports: at most {limits.ports} (--limit ports=N)")
    if len(spec.placement.constraints) > limits.constraints:
        raise InvalidSpec(
            where("placement.constraints"),
            f"{len(spec.placement.constraints)} constraints: at most {limits.constraints} (--limit constraints=N)",
        )
    data = spec.model_dump(mode="json", exclude_defaults=True)
    for field, value in _numbers(data, ""):
        if isinstance(value, float) and not math.isfinite(value):
            raise InvalidSpec(where(field), "must be a finite number")
        if isinstance(value, int) and not -INT64_MAX - 1 <= value <= INT64_MAX:
            raise InvalidSpec(where(field), f"must be at most {INT64_MAX} (a 64-bit integer)")
    size = len(orjson.dumps(data))
    if size > limits.spec_bytes:
        raise InvalidSpec(where(""), f"the service's spec is {size} bytes: at most {limits.spec_bytes} (--limit spec_bytes=N)")


def _check_pairs(pairs: dict[str, str], count: int, size: int, path: str, what: str) -> None:
    if len(pairs) > count:
        raise InvalidSpec(path, f"{len(pairs)} {what}: at most {count} (--limit {_OPTION[what]}=N)")
    total = sum(len(key.encode()) + len(value.encode()) for key, value in pairs.items())
    if total > size:
        raise InvalidSpec(path, f"{what} of {total} bytes: at most {size} together (--limit {_OPTION[what]}_bytes=N)")


_OPTION = {"environment variables": "environment", "labels": "labels"}


def _numbers(value: object, path: str) -> Iterator[tuple[str, int | float]]:
    """Every number in JSON-like data, with its dotted path (JSON keeps neither infinities nor NaN,
    and the store and the engines no integer beyond 64 bits)."""
    if isinstance(value, bool):
        return
    if isinstance(value, (int, float)):
        yield path, value
    elif isinstance(value, dict):
        for key, inner in value.items():
            yield from _numbers(inner, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            yield from _numbers(inner, f"{path}[{index}]")
