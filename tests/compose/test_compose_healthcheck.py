"""compose healthcheck and x-corral-healthcheck: the forms, the defaults, and clear errors."""

import pytest

from corral.compose import parse_compose
from corral.model.errors import InvalidSpec
from corral.model.service import HealthCheck, HttpProbe, TcpProbe


def check_of(body: str) -> HealthCheck | None:
    result = parse_compose(f"services:\n  web:\n    image: x\n{body}", "s")
    assert result.warnings == []
    return result.services[0].healthcheck


def error_of(body: str) -> InvalidSpec:
    with pytest.raises(InvalidSpec) as caught:
        parse_compose(f"services:\n  web:\n    image: x\n{body}", "s")
    return caught.value


def test_no_check_by_default() -> None:
    assert check_of("") is None


@pytest.mark.parametrize(
    ("test", "expected"),
    [
        ('["CMD", "wget", "-q", "http://localhost/"]', ["CMD", "wget", "-q", "http://localhost/"]),
        ('["CMD-SHELL", "wget -q http://localhost/ || exit 1"]', ["CMD-SHELL", "wget -q http://localhost/ || exit 1"]),
        ("wget -q http://localhost/", ["CMD-SHELL", "wget -q http://localhost/"]),
    ],
)
def test_compose_test_forms(test: str, expected: list[str]) -> None:
    check = check_of(f"    healthcheck:\n      test: {test}\n")
    assert check == HealthCheck(test=expected)
    assert (check.interval, check.timeout, check.retries, check.start_period, check.start_interval) == (30.0, 30.0, 3, 0.0, 5.0)


@pytest.mark.parametrize("body", ['test: ["NONE"]', 'test: ["CMD", "true"]\n      disable: true'])
def test_none_and_disable_turn_checking_off(body: str) -> None:
    assert check_of(f"    healthcheck:\n      {body}\n") is None


def test_timing_keys() -> None:
    check = check_of(
        "    healthcheck:\n      test: [CMD, 'true']\n      interval: 2s\n      timeout: 500ms\n"
        "      retries: 5\n      start_period: 1m\n      start_interval: 1s\n"
    )
    assert check is not None
    assert (check.interval, check.timeout, check.retries, check.start_period, check.start_interval) == (2.0, 0.5, 5, 60.0, 1.0)


def test_corral_probes() -> None:
    http = check_of("    x-corral-healthcheck:\n      http: {port: 8080, path: /healthz}\n      interval: 1s\n")
    assert http == HealthCheck(http=HttpProbe(port=8080, path="/healthz"), interval=1.0)
    tcp = check_of("    x-corral-healthcheck:\n      tcp: {port: 5432}\n")
    assert tcp == HealthCheck(tcp=TcpProbe(port=5432))
    assert check_of("    x-corral-healthcheck:\n      http: {port: 80}\n") == HealthCheck(http=HttpProbe(port=80, path="/"))


@pytest.mark.parametrize(
    ("body", "path", "message"),
    [
        ("    healthcheck:\n      interval: 1s\n", "services.web.healthcheck.test", "is required"),
        ("    healthcheck:\n      test: [RUN, x]\n", "services.web.healthcheck.test", "must start with CMD, CMD-SHELL or NONE"),
        ("    healthcheck:\n      test: [CMD]\n", "services.web.healthcheck.test", "CMD needs a command"),
        ("    healthcheck:\n      test: [CMD, x]\n      retries: 0\n", "services.web.healthcheck.retries", "positive integer"),
        ("    healthcheck:\n      test: [CMD, x]\n      interval: 0s\n", "services.web.healthcheck.interval", "longer than 0s"),
        ("    healthcheck:\n      test: [CMD, x]\n      timeout: soon\n", "services.web.healthcheck.timeout", "invalid duration"),
        ("    healthcheck:\n      test: [CMD, x]\n      disable: maybe\n", "services.web.healthcheck.disable", "true or false"),
        ("    x-corral-healthcheck: {}\n", "services.web.x-corral-healthcheck", "exactly one probe"),
        ("    x-corral-healthcheck:\n      http: {port: 80}\n      tcp: {port: 80}\n", "services.web.x-corral-healthcheck", "exactly one probe"),
        ("    x-corral-healthcheck:\n      tcp: {}\n", "services.web.x-corral-healthcheck.tcp.port", "is required"),
        ("    x-corral-healthcheck:\n      tcp: {port: 70000}\n", "services.web.x-corral-healthcheck.tcp.port", "out of range"),
        ("    x-corral-healthcheck:\n      http: {port: 80, path: health}\n", "services.web.x-corral-healthcheck.http.path", "must start with '/'"),
        (
            "    healthcheck: {test: [CMD, x]}\n    x-corral-healthcheck: {tcp: {port: 80}}\n",
            "services.web.x-corral-healthcheck",
            "cannot be combined with healthcheck",
        ),
    ],
)
def test_bad_checks_are_refused_naming_the_field(body: str, path: str, message: str) -> None:
    error = error_of(body)
    assert error.path == path
    assert message in str(error)


def test_unknown_keys_are_warned_about() -> None:
    result = parse_compose("services:\n  web:\n    image: x\n    x-corral-healthcheck:\n      tcp: {port: 80, host: a}\n", "s")
    assert result.warnings == ["services.web.x-corral-healthcheck.tcp.host is ignored: corral does not support this option here"]
