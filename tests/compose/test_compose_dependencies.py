"""depends_on in compose: short and long forms; unknown services and cycles refused with the path."""

from corral.compose import parse_compose
from corral.model.dependency import Dependency
from tests.compose.compose_helpers import compose_error

HEALTHY_DB = "  db:\n    image: db\n    healthcheck: {test: [CMD, \"true\"]}\n"


def _specs(text: str) -> dict[str, list[Dependency]]:
    return {spec.name: spec.depends_on for spec in parse_compose("services:\n" + text, "s").services}


def test_the_short_form_waits_for_each_service_to_start() -> None:
    deps = _specs("  web:\n    image: web\n    depends_on: [db, cache]\n" + HEALTHY_DB + "  cache:\n    image: c\n")
    assert deps["s_web"] == [Dependency(service="s_db"), Dependency(service="s_cache")]
    assert deps["s_db"] == []


def test_the_long_form_has_a_condition_and_required() -> None:
    text = (
        "  web:\n    image: web\n    depends_on:\n      db: {condition: service_healthy}\n"
        "      init: {condition: service_completed_successfully, required: true}\n"
        + HEALTHY_DB + "  init:\n    image: i\n"
    )
    assert _specs(text)["s_web"] == [
        Dependency(service="s_db", condition="service_healthy"),
        Dependency(service="s_init", condition="service_completed_successfully"),
    ]


def test_an_unknown_service_is_refused_unless_not_required() -> None:
    error = compose_error("services:\n  web:\n    image: web\n    depends_on: [dbb]\n", "s")
    assert error.path == "services.web.depends_on.dbb" and "unknown service 'dbb'" in error.reason
    result = parse_compose("services:\n  web:\n    image: web\n    depends_on: {dbb: {required: false}}\n", "s")
    assert result.services[0].depends_on == [] and any("dbb is not defined and not required" in w for w in result.warnings)


def test_a_cycle_is_refused_with_its_path() -> None:
    text = "services:\n  a:\n    image: x\n    depends_on: [b]\n  b:\n    image: x\n    depends_on: [c]\n  c:\n    image: x\n    depends_on: [a]\n"
    error = compose_error(text, "s")
    assert error.path == "services.a.depends_on" and "a -> b -> c -> a is a cycle" in error.reason
    itself = compose_error("services:\n  a:\n    image: x\n    depends_on: [a]\n", "s")
    assert "a -> a is a cycle" in itself.reason


def test_service_healthy_needs_a_healthcheck_and_a_bad_condition_is_named() -> None:
    error = compose_error("services:\n  web:\n    image: w\n    depends_on: {db: {condition: service_healthy}}\n  db:\n    image: d\n", "s")
    assert error.path == "services.web.depends_on.db.condition" and "needs a healthcheck on db" in error.reason
    bad = compose_error("services:\n  web:\n    image: w\n    depends_on: {db: {condition: healthy}}\n" + HEALTHY_DB, "s")
    assert bad.path == "services.web.depends_on.db.condition" and "unknown condition 'healthy'" in bad.reason


def test_restart_true_is_a_warning_that_it_is_not_honoured() -> None:
    result = parse_compose("services:\n  web:\n    image: w\n    depends_on: {db: {restart: true}}\n  db:\n    image: d\n", "s")
    assert any("depends_on.db.restart is not honoured" in w for w in result.warnings)
