"""The deploy section: mode, replicas, resources, placement, restart policy, labels."""

import pytest

from compose_helpers import web, web_error
from corral.compose import parse_compose
from corral.model.resources import Resources
from corral.model.service import Placement, RestartPolicy, ServiceMode


def deployed(deploy: object) -> dict[str, object]:
    return {"image": "nginx", "deploy": deploy}


def test_null_deploy_is_all_defaults() -> None:
    spec = web(deployed(None))
    assert spec.mode is ServiceMode.replicated and spec.replicas == 1
    assert spec.limits == Resources() and spec.reservations == Resources()
    assert spec.placement == Placement() and spec.restart_policy == RestartPolicy()
    assert spec.service_labels == {}


def test_deploy_written_with_no_value_in_yaml_is_fine() -> None:
    text = "services:\n  web:\n    image: nginx\n    deploy:\n"
    assert parse_compose(text, "app").services[0].replicas == 1


def test_deploy_must_be_a_mapping() -> None:
    error = web_error(deployed(["replicas", 2]))
    assert (error.path, error.reason) == ("services.web.deploy", "must be a mapping")


# --- mode and replicas ---


def test_replicas() -> None:
    assert web(deployed({"replicas": 3})).replicas == 3
    assert web(deployed({"replicas": 0})).replicas == 0


@pytest.mark.parametrize("replicas", [-1, True, False, 1.5, "3", [1]])
def test_replicas_must_be_a_non_negative_integer(replicas: object) -> None:
    error = web_error(deployed({"replicas": replicas}))
    assert (error.path, error.reason) == ("services.web.deploy.replicas", "must be a non-negative integer")


def test_global_mode() -> None:
    assert web(deployed({"mode": "global"})).mode is ServiceMode.global_


def test_replicated_mode() -> None:
    assert web(deployed({"mode": "replicated", "replicas": 2})).mode is ServiceMode.replicated


def test_replicas_are_not_allowed_with_global_mode() -> None:
    error = web_error(deployed({"mode": "global", "replicas": 2}))
    assert (error.path, error.reason) == ("services.web.deploy.replicas", "is not allowed with mode global")


@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        ("cron-job", "unknown mode 'cron-job': expected replicated, global, replicated-job or global-job"),
        (3, "must be replicated, global, replicated-job or global-job"),
    ],
)
def test_unknown_mode(mode: object, reason: str) -> None:
    error = web_error(deployed({"mode": mode}))
    assert (error.path, error.reason) == ("services.web.deploy.mode", reason)


# --- resources ---


def test_limits_and_reservations() -> None:
    spec = web(
        deployed(
            {
                "resources": {
                    "limits": {"cpus": "0.5", "memory": "512m"},
                    "reservations": {"cpus": 0.25, "memory": "64M"},
                }
            }
        )
    )
    assert spec.limits == Resources(cpus=0.5, memory=512 * 1024**2)
    assert spec.reservations == Resources(cpus=0.25, memory=64 * 1024**2)


def test_memory_as_plain_bytes_and_cpus_as_integer() -> None:
    spec = web(deployed({"resources": {"limits": {"cpus": 2, "memory": 1048576}}}))
    assert spec.limits == Resources(cpus=2.0, memory=1048576)


def test_null_resources_sections_are_empty() -> None:
    spec = web(deployed({"resources": {"limits": None, "reservations": None}}))
    assert spec.limits == Resources() and spec.reservations == Resources()


@pytest.mark.parametrize("cpus", [0, "0", -1, "-1", "half", True, [1], ".nan", float("inf")])
def test_cpus_must_be_a_number_above_zero(cpus: object) -> None:
    error = web_error(deployed({"resources": {"limits": {"cpus": cpus}}}))
    assert error.path == "services.web.deploy.resources.limits.cpus"
    assert "expected a number of CPUs above 0" in error.reason


@pytest.mark.parametrize("memory", ["lots", "-1m", -5, 1.5, True, "1x"])
def test_memory_must_be_a_byte_size(memory: object) -> None:
    error = web_error(deployed({"resources": {"reservations": {"memory": memory}}}))
    assert error.path == "services.web.deploy.resources.reservations.memory"


def test_reservation_above_limit_is_an_error() -> None:
    error = web_error(deployed({"resources": {"limits": {"memory": "1g"}, "reservations": {"memory": "2g"}}}))
    assert error.path == "services.web.deploy.resources.reservations.memory"
    assert "more than the limit" in error.reason
    error = web_error(deployed({"resources": {"limits": {"cpus": 1}, "reservations": {"cpus": 1.5}}}))
    assert (error.path, error.reason) == (
        "services.web.deploy.resources.reservations.cpus",
        "reservation of 1.5 CPUs is more than the limit of 1",
    )


def test_reservation_without_a_limit_is_fine() -> None:
    spec = web(deployed({"resources": {"limits": {"cpus": 1}, "reservations": {"cpus": 1, "memory": "1g"}}}))
    assert spec.reservations == Resources(cpus=1.0, memory=1024**3)


def test_resources_of_the_wrong_shape() -> None:
    error = web_error(deployed({"resources": {"limits": ["cpus"]}}))
    assert (error.path, error.reason) == ("services.web.deploy.resources.limits", "must be a mapping")


# --- placement ---


def test_placement() -> None:
    spec = web(
        deployed(
            {"placement": {"constraints": ["node.role == manager", "node.labels.zone != east"], "max_replicas_per_node": 2}}
        )
    )
    assert spec.placement == Placement(
        constraints=["node.role == manager", "node.labels.zone != east"], max_replicas_per_node=2
    )


def test_invalid_constraint_names_the_item() -> None:
    error = web_error(deployed({"placement": {"constraints": ["node.role == manager", "zone = east"]}}))
    assert error.path == "services.web.deploy.placement.constraints[1]"
    assert error.reason.startswith("invalid constraint 'zone = east'")


@pytest.mark.parametrize(
    ("constraints", "path", "reason"),
    [
        ("node.role == manager", "services.web.deploy.placement.constraints", "must be a list of strings"),
        ([1], "services.web.deploy.placement.constraints[0]", "must be a string"),
    ],
)
def test_constraints_must_be_a_list_of_strings(constraints: object, path: str, reason: str) -> None:
    error = web_error(deployed({"placement": {"constraints": constraints}}))
    assert (error.path, error.reason) == (path, reason)


@pytest.mark.parametrize("value", [0, -1, True, "2"])
def test_max_replicas_per_node_must_be_positive(value: object) -> None:
    error = web_error(deployed({"placement": {"max_replicas_per_node": value}}))
    assert (error.path, error.reason) == (
        "services.web.deploy.placement.max_replicas_per_node",
        "must be a positive integer",
    )


# --- restart policy ---


def test_restart_policy() -> None:
    spec = web(
        deployed({"restart_policy": {"condition": "on-failure", "delay": "2.5s", "max_attempts": 3, "window": "2m"}})
    )
    assert spec.restart_policy == RestartPolicy(condition="on-failure", delay=2.5, max_attempts=3, window=120.0)


def test_restart_policy_keeps_defaults_for_missing_keys() -> None:
    assert web(deployed({"restart_policy": {"condition": "none"}})).restart_policy == RestartPolicy(condition="none")


@pytest.mark.parametrize(
    ("policy", "path", "reason"),
    [
        ({"condition": "always"}, "condition", "unknown condition 'always': expected none, on-failure or any"),
        ({"max_attempts": -1}, "max_attempts", "must be a non-negative integer"),
        ({"delay": "5 seconds"}, "delay", None),
        ({"window": [1]}, "window", None),
    ],
)
def test_restart_policy_errors(policy: dict[str, object], path: str, reason: str | None) -> None:
    error = web_error(deployed({"restart_policy": policy}))
    assert error.path == f"services.web.deploy.restart_policy.{path}"
    if reason is not None:
        assert error.reason == reason


# --- deploy.labels ---


def test_deploy_labels_are_service_labels() -> None:
    spec = web(deployed({"labels": ["tier=front", "owner=me"]}))
    assert spec.service_labels == {"tier": "front", "owner": "me"}
    assert spec.labels == {}
    assert web(deployed({"labels": {"tier": "front"}})).service_labels == {"tier": "front"}


def test_deploy_labels_error_path() -> None:
    error = web_error(deployed({"labels": "tier=front"}))
    assert (error.path, error.reason) == ("services.web.deploy.labels", "must be a list of KEY=VALUE strings or a mapping")
