"""parse_compose: the top level, service names and the service's own keys."""

import pytest

from compose_helpers import compose_error, web, web_error, web_result
from corral.compose import parse_compose
from corral.model.errors import InvalidSpec
from corral.model.service import ServiceMode

MINIMAL = "services:\n  web:\n    image: nginx\n"


# --- the file and the stack ---


def test_minimal_file_gives_one_spec_with_defaults() -> None:
    result = parse_compose(MINIMAL, "shop")
    assert result.warnings == []
    [spec] = result.services
    assert spec.name == "shop_web"
    assert spec.stack == "shop"
    assert spec.image == "nginx"
    assert spec.command is None and spec.entrypoint is None
    assert spec.mode is ServiceMode.replicated and spec.replicas == 1
    assert spec.stop_grace_period == 10.0


def test_services_keep_file_order() -> None:
    text = "services:\n  b:\n    image: x\n  a:\n    image: y\n"
    assert [spec.name for spec in parse_compose(text, "s").services] == ["s_b", "s_a"]


def test_version_name_and_extensions_are_accepted_silently() -> None:
    text = "version: '3.8'\nname: other\nx-common: &c {image: nginx}\nservices:\n  web:\n    <<: *c\n    x-note: hi\n"
    result = parse_compose(text, "app")
    assert result.warnings == []
    assert result.services[0].image == "nginx"


def test_x_keys_under_services_are_extensions_not_services() -> None:
    text = MINIMAL + "  x-template:\n    whatever: 1\n"
    assert [spec.name for spec in parse_compose(text, "app").services] == ["app_web"]


@pytest.mark.parametrize("stack", ["", "-app", "my app", "app/1", "_x"])
def test_invalid_stack_name(stack: str) -> None:
    error = compose_error(MINIMAL, stack=stack)
    assert error.path == "stack"
    assert "invalid stack name" in error.reason


@pytest.mark.parametrize("stack", ["a", "my-stack", "A.b_c-1", "9lives"])
def test_valid_stack_names(stack: str) -> None:
    assert parse_compose(MINIMAL, stack).services[0].name == f"{stack}_web"


def test_invalid_yaml_names_the_line() -> None:
    error = compose_error("services:\n  web:\n    image: [nginx\n")
    assert error.path == ""
    assert error.reason.startswith("invalid YAML: line ")


def test_yaml_that_loads_into_nonsense_is_invalid_yaml() -> None:
    # PyYAML raises ValueError for a date that does not exist.
    error = compose_error("services:\n  web:\n    image: 2024-13-45\n")
    assert (error.path, error.reason.startswith("invalid YAML")) == ("", True)


def test_unreadable_character_names_the_line() -> None:
    error = compose_error("services:\n  web:\n    image: \x00\n")
    assert error.path == "" and error.reason.startswith("invalid YAML: line 3: ")
    assert error.reason.endswith("characters are not allowed")  # "control" from libyaml, "special" from PyYAML


@pytest.mark.parametrize("text", ["", "- a\n- b\n", "just text", "42"])
def test_top_level_must_be_a_mapping(text: str) -> None:
    error = compose_error(text)
    assert error.path == ""
    assert "must be a mapping" in error.reason


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("version: '3'\n", "is required: a mapping of service names to services"),
        ("services:\n", "is required: a mapping of service names to services"),
        ("services: [web]\n", "must be a mapping of service names to services"),
        ("services: {}\n", "defines no service"),
        ("services:\n  x-base: {image: nginx}\n", "defines no service"),
    ],
)
def test_services_must_be_a_non_empty_mapping(text: str, reason: str) -> None:
    error = compose_error(text)
    assert (error.path, error.reason) == ("services", reason)


def test_non_string_key_is_an_error() -> None:
    error = compose_error("services:\n  1:\n    image: nginx\n")
    assert (error.path, error.reason) == ("services", "key 1 must be a string")


@pytest.mark.parametrize("name", ["my web", "web/1", "wéb"])
def test_invalid_service_name(name: str) -> None:
    error = compose_error(f"services:\n  '{name}':\n    image: nginx\n")
    assert error.path == f"services.{name}"
    assert "invalid service name" in error.reason


def test_full_name_longer_than_128_characters_is_an_error() -> None:
    error = compose_error(f"services:\n  {'w' * 125}:\n    image: nginx\n")
    assert error.path == f"services.{'w' * 125}"
    assert "longer than 128" in error.reason


def test_service_body_must_be_a_mapping() -> None:
    error = compose_error("services:\n  web: nginx\n")
    assert (error.path, error.reason) == ("services.web", "must be a mapping")


# --- image ---


@pytest.mark.parametrize("service", [{}, None, {"image": None}, {"image": ""}, {"image": "  "}, {"image": 5}, {"image": ["nginx"]}])
def test_image_is_a_required_non_empty_string(service: object) -> None:
    error = web_error(service)
    assert (error.path, error.reason) == ("services.web.image", "must be a non-empty string")


# --- command and entrypoint ---


@pytest.mark.parametrize("key", ["command", "entrypoint"])
def test_command_string_is_split_like_a_shell(key: str) -> None:
    spec = web({"image": "nginx", key: "nginx -g 'daemon off;'"})
    assert getattr(spec, key) == ["nginx", "-g", "daemon off;"]


@pytest.mark.parametrize("key", ["command", "entrypoint"])
def test_command_list_is_kept(key: str) -> None:
    spec = web({"image": "nginx", key: ["sh", "-c", "echo $HOME"]})
    assert getattr(spec, key) == ["sh", "-c", "echo $HOME"]


@pytest.mark.parametrize("key", ["command", "entrypoint"])
def test_null_command_means_the_image_default(key: str) -> None:
    assert getattr(web({"image": "nginx", key: None}), key) is None


@pytest.mark.parametrize("key", ["command", "entrypoint"])
@pytest.mark.parametrize("value", [5, True, {"a": 1}])
def test_command_of_another_type_is_an_error(key: str, value: object) -> None:
    error = web_error({"image": "nginx", key: value})
    assert (error.path, error.reason) == (f"services.web.{key}", "must be a string or a list of strings")


def test_command_list_item_must_be_a_string() -> None:
    error = web_error({"image": "nginx", "command": ["sleep", 10]})
    assert (error.path, error.reason) == ("services.web.command[1]", "must be a string")


def test_command_with_unbalanced_quote_is_an_error() -> None:
    error = web_error({"image": "nginx", "command": "echo 'oops"})
    assert error.path == "services.web.command"
    assert error.reason.startswith("cannot split")


# --- environment ---


def test_environment_list_form() -> None:
    result = web_result({"image": "nginx", "environment": ["A=1", "B=x=y", "C="]})
    assert result.services[0].environment == {"A": "1", "B": "x=y", "C": ""}
    assert result.warnings == []


def test_environment_bare_name_is_empty_with_a_warning() -> None:
    result = web_result({"image": "nginx", "environment": ["A=1", "B"]})
    assert result.services[0].environment == {"A": "1", "B": ""}
    assert result.warnings == ['services.web.environment.B has no value; set to ""']


def test_environment_mapping_form_converts_values_to_text() -> None:
    text = MINIMAL + "    environment:\n      A: 1\n      B:\n      C: true\n      D: false\n      E: 1.5\n      F: text\n      G: off\n"
    result = parse_compose(text, "app")
    # YAML 1.2 as Compose reads it: `off` is text, not a boolean
    assert result.services[0].environment == {
        "A": "1", "B": "", "C": "true", "D": "false", "E": "1.5", "F": "text", "G": "off"
    }
    assert result.warnings == []


def test_environment_null_is_empty() -> None:
    assert web({"image": "nginx", "environment": None}).environment == {}


@pytest.mark.parametrize(
    ("environment", "path", "reason"),
    [
        ("A=1", "services.web.environment", "must be a list of KEY=VALUE strings or a mapping"),
        ([1], "services.web.environment[0]", "must be a KEY=VALUE string"),
        (["A=1", "=2"], "services.web.environment[1]", "the name is empty in '=2'"),
        ({"A": [1]}, "services.web.environment.A", "must be a string, number, boolean or null"),
        ({"A": {"b": 1}}, "services.web.environment.A", "must be a string, number, boolean or null"),
        ({"": "x"}, "services.web.environment", "a key is empty"),
    ],
)
def test_environment_errors(environment: object, path: str, reason: str) -> None:
    error = web_error({"image": "nginx", "environment": environment})
    assert (error.path, error.reason) == (path, reason)


# --- labels ---


def test_labels_list_form() -> None:
    assert web({"image": "nginx", "labels": ["a=b", "c.d=e=f", "flag"]}).labels == {"a": "b", "c.d": "e=f", "flag": ""}


def test_labels_mapping_form() -> None:
    assert web({"image": "nginx", "labels": {"a": "b", "n": 2, "t": False, "e": None}}).labels == {
        "a": "b",
        "n": "2",
        "t": "false",
        "e": "",
    }


def test_labels_are_container_labels_not_service_labels() -> None:
    spec = web({"image": "nginx", "labels": {"a": "b"}})
    assert spec.service_labels == {}


def test_labels_errors_name_the_item() -> None:
    error = web_error({"image": "nginx", "labels": ["a=b", ["c"]]})
    assert (error.path, error.reason) == ("services.web.labels[1]", "must be a KEY=VALUE string")


# --- stop_grace_period ---


@pytest.mark.parametrize(("value", "seconds"), [("1m30s", 90.0), ("500ms", 0.5), (30, 30.0), ("2.5s", 2.5), (None, 10.0)])
def test_stop_grace_period(value: object, seconds: float) -> None:
    assert web({"image": "nginx", "stop_grace_period": value}).stop_grace_period == seconds


def test_stop_grace_period_error_names_the_path() -> None:
    error = web_error({"image": "nginx", "stop_grace_period": "soon"})
    assert error.path == "services.web.stop_grace_period"
    assert error.reason.startswith("invalid duration 'soon'")


# --- unsupported options ---


def test_unsupported_options_are_one_warning_each_saying_why() -> None:
    text = """\
services:
  web:
    image: nginx
    volumes: [data:/data]
    container_name: web1
    healthcheck: {test: [CMD, "true"]}
    deploy:
      update_config: {parallelism: 1, x-extra: 2, window: 3}
      endpoint_mode: vip
      resources:
        limits: {cpus: '1', pids: 10}
        reservations: {devices: []}
      placement: {preferences: [{spread: node.labels.zone}], x-extra: 1}
      restart_policy: {condition: any, x-extra: 1, jitter: 1}
networks: {}
volumes: {data: {}}
"""
    warnings = parse_compose(text, "app").warnings
    here = "is ignored: corral does not support this option here"
    assert sorted(warnings) == sorted(
        [
            "services.web.deploy.endpoint_mode is ignored: every service gets a virtual IP, and `tasks.NAME` resolves to its replicas",
            "services.web.deploy.resources.limits.pids is ignored: corral does not limit the number of processes yet",
            "services.web.deploy.restart_policy.jitter is ignored: not part of the Compose Specification",
            f"services.web.deploy.update_config.window {here}",
            "services.web.container_name is ignored: a service's replicas each get their own name; other services reach it by its service name",
        ]
    )


def test_ignored_options_of_every_service_are_gathered() -> None:
    text = "services:\n  a:\n    image: x\n    container_name: a1\n  b:\n    image: y\n    pull_policy: always\n"
    warnings = parse_compose(text, "s").warnings
    assert [w.split(" ")[0] for w in warnings] == ["services.a.container_name", "services.b.pull_policy"]


def test_invalid_spec_is_what_is_raised() -> None:
    with pytest.raises(InvalidSpec):
        parse_compose("services:\n  web: {}\n", "app")


def test_unquoted_host_and_container_port_is_not_base_60() -> None:
    result = web_result({"image": "nginx", "ports": []})
    text = MINIMAL + "    ports:\n      - 22:22\n"
    result = parse_compose(text, "app")
    assert [(p.published, p.target) for p in result.services[0].ports] == [(22, 22)]
