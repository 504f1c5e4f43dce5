"""A service's health check: compose's `healthcheck`, or corral's `x-corral-healthcheck` probes.

`healthcheck.test` runs inside the container (`["CMD", ...]`, `["CMD-SHELL",
"..."]` or a string, which is CMD-SHELL; `["NONE"]` or `disable: true` turns
checking off). `x-corral-healthcheck` takes `http: {port, path}` or
`tcp: {port}`, probed by the agent from outside the container, for images
without a shell. Both take interval, timeout, retries, start_period and
start_interval with compose's defaults.
"""

from corral.compose.durations import parse_duration
from corral.compose.notes import Notes
from corral.compose.paths import child
from corral.compose.values import optional, read_mapping, read_non_empty_string, read_positive_count, read_string_list, show
from corral.model.errors import InvalidSpec
from corral.model.service import HealthCheck, HttpProbe, TcpProbe

_TIMING_KEYS = frozenset({"interval", "timeout", "retries", "start_period", "start_interval"})
_COMPOSE_KEYS = _TIMING_KEYS | {"test", "disable"}
_CORRAL_KEYS = _TIMING_KEYS | {"http", "tcp"}
_TEST_KINDS = ("CMD", "CMD-SHELL", "NONE")


def parse_healthcheck(compose: object, corral: object, path: str, notes: Notes) -> HealthCheck | None:
    """The check of the service at `path` from its two keys; None when there is none (or it is disabled)."""
    compose_path, corral_path = child(path, "healthcheck"), child(path, "x-corral-healthcheck")
    if compose is not None and corral is not None:
        raise InvalidSpec(corral_path, "cannot be combined with healthcheck: give one probe")
    if corral is not None:
        return _parse_corral(corral, corral_path, notes)
    if compose is not None:
        return _parse_compose(compose, compose_path, notes)
    return None


def _parse_compose(value: object, path: str, notes: Notes) -> HealthCheck | None:
    section = read_mapping(value, path)
    notes.ignore_unknown(section, _COMPOSE_KEYS, path)
    disable = section.get("disable", False)
    if not isinstance(disable, bool):
        raise InvalidSpec(child(path, "disable"), "must be true or false")
    if disable:
        return None
    if section.get("test") is None:
        raise InvalidSpec(child(path, "test"), "is required: e.g. [\"CMD\", \"wget\", \"-q\", \"-O-\", \"http://localhost/\"]")
    test = _read_test(section["test"], child(path, "test"))
    if test == ["NONE"]:
        return None
    return HealthCheck(test=test, **_timing(section, path))


def _read_test(value: object, path: str) -> list[str]:
    if isinstance(value, str):
        return ["CMD-SHELL", read_non_empty_string(value, path)]
    words = read_string_list(value, path)
    if not words or words[0] not in _TEST_KINDS:
        raise InvalidSpec(path, f"must start with CMD, CMD-SHELL or NONE, got {show(words[0] if words else words)}")
    if words[0] == "NONE":
        return ["NONE"]
    if len(words) < 2 or not any(word.strip() for word in words[1:]):
        raise InvalidSpec(path, f"{words[0]} needs a command after it")
    if words[0] == "CMD-SHELL":
        return ["CMD-SHELL", " ".join(words[1:])]
    return words


def _parse_corral(value: object, path: str, notes: Notes) -> HealthCheck:
    section = read_mapping(value, path)
    notes.ignore_unknown(section, _CORRAL_KEYS, path)
    has_http, has_tcp = section.get("http") is not None, section.get("tcp") is not None
    if has_http == has_tcp:
        raise InvalidSpec(path, "needs exactly one probe: http: {port, path} or tcp: {port}")
    if has_http:
        http_path = child(path, "http")
        http = read_mapping(section["http"], http_path)
        notes.ignore_unknown(http, frozenset({"port", "path"}), http_path)
        probe_path = optional(http, "path", http_path, _read_url_path, "/")
        return HealthCheck(http=HttpProbe(port=_read_port(http.get("port"), child(http_path, "port")), path=probe_path), **_timing(section, path))
    tcp_path = child(path, "tcp")
    tcp = read_mapping(section["tcp"], tcp_path)
    notes.ignore_unknown(tcp, frozenset({"port"}), tcp_path)
    return HealthCheck(tcp=TcpProbe(port=_read_port(tcp.get("port"), child(tcp_path, "port"))), **_timing(section, path))


def _read_port(value: object, path: str) -> int:
    if value is None:
        raise InvalidSpec(path, "is required: the container port to probe")
    port = read_positive_count(value, path)
    if port > 65535:
        raise InvalidSpec(path, f"port {port} is out of range 1-65535")
    return port


def _read_url_path(value: object, path: str) -> str:
    text = read_non_empty_string(value, path)
    if not text.startswith("/") or any(c.isspace() for c in text):
        raise InvalidSpec(path, f"invalid path {show(text)}: must start with '/' and contain no spaces")
    return text


def _timing(section: dict[str, object], path: str) -> dict[str, float | int]:
    default = HealthCheck()
    timing: dict[str, float | int] = {
        key: optional(section, key, path, parse_duration, getattr(default, key))
        for key in ("interval", "timeout", "start_period", "start_interval")
    }
    for key in ("interval", "timeout", "start_interval"):
        if timing[key] <= 0:
            raise InvalidSpec(child(path, key), "must be longer than 0s")
    timing["retries"] = optional(section, "retries", path, read_positive_count, default.retries)
    return timing
