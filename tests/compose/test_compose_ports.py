"""ports: short and long syntax, validation and duplicates."""

import pytest

from compose_helpers import web, web_error, web_result
from corral.model.service import PortSpec


def ports_of(ports: object) -> list[PortSpec]:
    return web({"image": "nginx", "ports": ports}).ports


def port_error(ports: object) -> tuple[str, str]:
    error = web_error({"image": "nginx", "ports": ports})
    return error.path, error.reason


@pytest.mark.parametrize(
    ("short", "port"),
    [
        ("8080", PortSpec(target=8080)),
        (8080, PortSpec(target=8080)),
        ("18080:8080", PortSpec(target=8080, published=18080)),
        ("8080/udp", PortSpec(target=8080, protocol="udp")),
        ("18080:8080/udp", PortSpec(target=8080, published=18080, protocol="udp")),
        ("53:53/tcp", PortSpec(target=53, published=53)),
        (" 80:80 ", PortSpec(target=80, published=80)),
    ],
)
def test_short_syntax(short: object, port: PortSpec) -> None:
    assert ports_of([short]) == [port]


def test_long_syntax() -> None:
    assert ports_of(
        [
            {"target": 80, "published": 8080, "protocol": "tcp", "mode": "ingress"},
            {"target": 53, "published": "5353", "protocol": "udp", "mode": "host"},
            {"target": 9000},
            {"target": "9001", "published": None},
        ]
    ) == [
        PortSpec(target=80, published=8080),
        PortSpec(target=53, published=5353, protocol="udp", mode="host"),
        PortSpec(target=9000),
        PortSpec(target=9001),
    ]


def test_null_ports_is_none() -> None:
    assert ports_of(None) == []


def test_ports_must_be_a_list() -> None:
    assert port_error("80:80") == ("services.web.ports", "must be a list")


def test_host_ip_is_not_supported() -> None:
    path, reason = port_error(["80", "127.0.0.1:18080:8080"])
    assert path == "services.web.ports[1]"
    assert "host IP is not supported" in reason and "node address" in reason
    path, reason = port_error([{"target": 80, "host_ip": "127.0.0.1"}])
    assert path == "services.web.ports[0].host_ip"
    assert "host IP is not supported" in reason


def test_port_ranges_are_rejected_clearly() -> None:
    path, reason = port_error(["8000-8001:8000-8001"])
    assert path == "services.web.ports[0]"
    assert reason.startswith("port range '8000-8001' is not supported")


@pytest.mark.parametrize(
    ("ports", "path", "reason"),
    [
        (["8080/sctp"], "services.web.ports[0]", "unknown protocol 'sctp': expected tcp or udp"),
        ([{"target": 80, "protocol": "sctp"}], "services.web.ports[0].protocol", "unknown protocol 'sctp': expected tcp or udp"),
        ([{"target": 80, "protocol": 6}], "services.web.ports[0].protocol", "must be tcp or udp"),
        ([{"target": 80, "mode": "vip"}], "services.web.ports[0].mode", "unknown mode 'vip': expected ingress or host"),
        (["0"], "services.web.ports[0]", "port 0 is out of range: expected 1 to 65535"),
        ([70000], "services.web.ports[0]", "port 70000 is out of range: expected 1 to 65535"),
        (["65536:80"], "services.web.ports[0]", "port 65536 is out of range: expected 1 to 65535"),
        (["http"], "services.web.ports[0]", "invalid port 'http': expected a number from 1 to 65535"),
        ([":80"], "services.web.ports[0]", "invalid port '': expected a number from 1 to 65535"),
        ([True], "services.web.ports[0]", "must be a port like '8080:80' or 80, or a mapping with a target"),
        ([["80"]], "services.web.ports[0]", "must be a port like '8080:80' or 80, or a mapping with a target"),
        ([{"published": 80}], "services.web.ports[0].target", "is required"),
        ([{"target": 80, "published": 0}], "services.web.ports[0].published", "port 0 is out of range: expected 1 to 65535"),
        ([{"target": 80, "published": 1.5}], "services.web.ports[0].published", "must be a port number from 1 to 65535"),
        ([{"target": 80, "published": "8000-8001"}], "services.web.ports[0].published", None),
    ],
)
def test_port_errors(ports: object, path: str, reason: str | None) -> None:
    actual_path, actual_reason = port_error(ports)
    assert actual_path == path
    if reason is not None:
        assert actual_reason == reason


def test_same_published_port_twice_is_an_error() -> None:
    assert port_error(["8080:80", "9090:90", {"target": 81, "published": 8080}]) == (
        "services.web.ports[2]",
        "port 8080/tcp is already published by ports[0]",
    )


def test_same_published_port_with_other_protocols_is_fine() -> None:
    assert len(ports_of(["53:53/tcp", "53:53/udp"])) == 2


def test_same_target_without_published_port_is_fine() -> None:
    assert ports_of(["80", "80"]) == [PortSpec(target=80), PortSpec(target=80)]


def test_unknown_long_syntax_keys_are_warned_about() -> None:
    result = web_result({"image": "nginx", "ports": [{"target": 80, "app_protocol": "http", "x-note": 1}]})
    assert result.warnings == ["services.web.ports[0].app_protocol is ignored: a hint for tools; the routing mesh forwards TCP and UDP as they are"]
