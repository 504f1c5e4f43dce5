"""deploy.update_config, deploy.rollback_config and x-corral-canary."""

import pytest

from compose_helpers import web, web_error, web_result
from corral.model.service import UpdateConfig


def deployed(deploy: object, **service: object) -> dict[str, object]:
    return {"image": "nginx", "deploy": deploy, **service}


def test_defaults_are_swarms() -> None:
    spec = web(deployed(None))
    assert spec.update_config == UpdateConfig(parallelism=1, delay=0, order="stop-first", monitor=5, max_failure_ratio=0, failure_action="pause")
    assert spec.rollback_config == UpdateConfig()
    assert spec.canary is None


def test_every_update_config_key() -> None:
    config = {"parallelism": 2, "delay": "1m30s", "order": "start-first", "monitor": "500ms", "max_failure_ratio": 0.25, "failure_action": "rollback"}
    result = web_result(deployed({"update_config": config}))
    assert result.services[0].update_config == UpdateConfig(
        parallelism=2, delay=90, order="start-first", monitor=0.5, max_failure_ratio=0.25, failure_action="rollback"
    )
    assert result.warnings == []


def test_rollback_config_and_partial_sections() -> None:
    spec = web(deployed({"update_config": {"parallelism": 0}, "rollback_config": {"order": "start-first", "failure_action": "continue"}}))
    assert spec.update_config == UpdateConfig(parallelism=0)
    assert spec.rollback_config == UpdateConfig(order="start-first", failure_action="continue")


def test_null_sections_are_defaults() -> None:
    spec = web(deployed({"update_config": None, "rollback_config": None}))
    assert spec.update_config == UpdateConfig() and spec.rollback_config == UpdateConfig()


@pytest.mark.parametrize(
    ("section", "config", "path", "reason"),
    [
        ("update_config", {"parallelism": -1}, "parallelism", "must be a non-negative integer"),
        ("update_config", {"parallelism": "2"}, "parallelism", "must be a non-negative integer"),
        ("update_config", {"delay": "soon"}, "delay", "invalid duration 'soon'"),
        ("update_config", {"monitor": -5}, "monitor", "must be a finite, non-negative time"),
        ("update_config", {"order": "random"}, "order", "unknown order 'random': expected stop-first or start-first"),
        ("update_config", {"max_failure_ratio": 1.5}, "max_failure_ratio", "must be a number from 0 to 1"),
        ("update_config", {"max_failure_ratio": True}, "max_failure_ratio", "must be a number from 0 to 1"),
        ("update_config", {"failure_action": "explode"}, "failure_action", "expected pause, continue or rollback"),
        ("rollback_config", {"failure_action": "rollback"}, "failure_action", "expected pause or continue"),
    ],
)
def test_bad_values_name_their_path(section: str, config: dict, path: str, reason: str) -> None:
    error = web_error(deployed({section: config}))
    assert error.path == f"services.web.deploy.{section}.{path}"
    assert reason in error.reason


def test_section_must_be_a_mapping() -> None:
    error = web_error(deployed({"update_config": [1]}))
    assert (error.path, error.reason) == ("services.web.deploy.update_config", "must be a mapping")


def test_unknown_keys_are_named_in_the_warning() -> None:
    result = web_result(deployed({"update_config": {"parallelism": 1, "surge": 2}, "rollback_config": {"foo": 1}}))
    assert result.warnings == [
        "services.web.deploy.update_config.surge is ignored: corral does not support this option here",
        "services.web.deploy.rollback_config.foo is ignored: corral does not support this option here",
    ]


def test_update_config_is_not_ignored_any_more() -> None:
    result = web_result(deployed({"update_config": {"parallelism": 1}, "rollback_config": {"parallelism": 1}}))
    assert result.warnings == []


def test_canary() -> None:
    assert web(deployed(None, **{"x-corral-canary": {"replicas": 2}})).canary == 2
    assert web(deployed(None, **{"x-corral-canary": None})).canary is None


@pytest.mark.parametrize(
    ("canary", "path", "reason"),
    [
        ({"replicas": 0}, "services.web.x-corral-canary.replicas", "must be a positive integer"),
        ({"replicas": "one"}, "services.web.x-corral-canary.replicas", "must be a positive integer"),
        ({}, "services.web.x-corral-canary.replicas", "is required"),
        (3, "services.web.x-corral-canary", "must be a mapping"),
    ],
)
def test_bad_canary_names_its_path(canary: object, path: str, reason: str) -> None:
    error = web_error(deployed(None, **{"x-corral-canary": canary}))
    assert error.path == path and reason in error.reason
