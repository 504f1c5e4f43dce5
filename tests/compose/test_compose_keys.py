"""The key table: every key honoured, ignored with a reason, or refused with a reason and an alternative."""

import pytest
import yaml

from corral.compose import keys, parse_compose
from corral.model.errors import InvalidSpec
from tests.compose.compose_helpers import web, web_error, web_result


def test_every_ignored_or_refused_key_says_why() -> None:
    for table in (keys.TOP_LEVEL, keys.SERVICE):
        for key, rule in table.items():
            assert rule.verdict in ("honoured", "ignored", "refused"), key
            assert (rule.why != "") == (rule.verdict != "honoured"), key


@pytest.mark.parametrize("key", sorted(k for k, r in keys.SERVICE.items() if r.verdict == "ignored"))
def test_an_ignored_key_is_one_warning_line_and_the_deploy_goes_on(key: str) -> None:
    result = web_result({"image": "nginx", key: ["x"]})
    assert result.warnings == [f"services.web.{key} is ignored: {keys.SERVICE[key].why}"]


@pytest.mark.parametrize("key", sorted(k for k, r in keys.SERVICE.items() if r.verdict == "refused"))
def test_a_refused_key_is_an_error_with_its_reason(key: str) -> None:
    error = web_error({"image": "nginx", key: "value"})
    assert f"services.web.{key}: not supported: {keys.SERVICE[key].why}" in str(error).splitlines()


def test_restart_is_the_restart_policy_unless_deploy_sets_one() -> None:
    expected = {"always": "any", "unless-stopped": "any", "no": "none", "on-failure": "on-failure"}
    for value, condition in expected.items():
        result = web_result({"image": "nginx", "restart": value})
        assert result.warnings == []
        assert result.services[0].restart_policy.condition == condition, value
    both = web({"image": "nginx", "restart": "no", "deploy": {"restart_policy": {"condition": "on-failure"}}})
    assert both.restart_policy.condition == "on-failure"
    assert web_error({"image": "nginx", "restart": "sometimes"}).path == "services.web.restart"


def test_a_misspelled_key_is_refused_with_a_hint() -> None:
    assert str(web_error({"image": "nginx", "enviroment": {"A": "1"}})) == (
        "services.web.enviroment: not a Compose key corral knows; did you mean environment?"
    )


def test_relative_bind_mounts_are_refused_and_absolute_ones_only_outside_allow_bind() -> None:
    service = {"image": "nginx", "volumes": ["data:/data", "./conf:/etc/conf:ro", {"type": "bind", "source": "/srv", "target": "/srv"}]}
    error = web_error(service)  # the CLI: the cluster's --allow-bind is not known here, the manager decides
    assert [line.split(":")[0] for line in str(error).splitlines()] == ["services.web.volumes[1]"]
    text = yaml.safe_dump({"services": {"web": service}, "volumes": {"data": None}})
    with pytest.raises(InvalidSpec) as caught:  # the manager, with no directory allowed
        parse_compose(text, "app", allow_bind=())
    lines = str(caught.value).splitlines()
    assert [line.split(":")[0] for line in lines] == ["services.web.volumes[1]", "services.web.volumes[2]"]
    assert "bind mount of '/srv': not under a directory the cluster allows (allowed: none)" in lines[1]
    assert "--allow-bind" in lines[1]


def test_errors_of_several_services_and_sections_come_together() -> None:
    text = (
        "services:\n"
        "  web: {image: nginx, deploy: {replicas: -1}, ports: ['x:y']}\n"
        "  db: {image: '', group_add: [postgres]}\n"
        "  ok: {image: nginx}\n"
        "secrets: {s: {}}\n"
    )
    with pytest.raises(Exception) as caught:
        parse_compose(text, "app")
    paths = [line.split(": ")[0] for line in str(caught.value).splitlines()]
    assert paths == ["secrets.s", "services.web.deploy.replicas", "services.web.ports[0]", "services.db.group_add", "services.db.image"]


def test_thousands_of_problems_make_a_readable_answer() -> None:
    service = {"image": "nginx", **{f"bad{i}": 1 for i in range(500)}}
    lines = str(web_error(service)).splitlines()
    assert len(lines) == 101 and lines[-1] == "... and 400 more problems"


def test_a_nested_key_that_changes_behaviour_is_refused_with_the_rest() -> None:
    error = web_error({"image": "nginx", "runtime": "runsc", "deploy": {"resources": {"reservations": {"devices": [{"capabilities": ["gpu"]}]}}}})
    assert [line.split(": ")[0] for line in str(error).splitlines()] == [
        "services.web.runtime",
        "services.web.deploy.resources.reservations.devices",
    ]
    assert "group_add" not in str(web_error({"image": "nginx", "group_add": [], "runtime": "x"}))  # empty asks for nothing
