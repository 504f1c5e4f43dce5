"""What a dry run lists: per service, each field that changes, old -> new (corral/model/spec_diff.py)."""

from corral.model.spec_diff import FieldChange, show, spec_changes
from tests.compose.compose_helpers import web


def test_an_update_lists_only_the_fields_that_change() -> None:
    old = web({"image": "app:1", "environment": {"A": "1", "B": "2"}, "deploy": {"replicas": 2, "resources": {"limits": {"memory": "64m"}}}})
    new = web({"image": "app:2", "environment": {"A": "1", "C": "3"}, "deploy": {"replicas": 2, "resources": {"limits": {"memory": "128m"}}}})
    assert spec_changes(old, new) == [
        FieldChange("environment.B", "2", None),
        FieldChange("environment.C", None, "3"),
        FieldChange("image", "app:1", "app:2"),
        FieldChange("limits.memory", 64 * 1024 * 1024, 128 * 1024 * 1024),
    ]
    assert spec_changes(new, new) == []


def test_a_new_service_lists_what_differs_from_the_defaults() -> None:
    spec = web({"image": "app:1", "command": ["run"], "ports": ["8080:80"]})
    changes = {c.field: (c.old, c.new) for c in spec_changes(None, spec)}
    assert changes["image"] == (None, "app:1")
    assert changes["command"] == (None, ["run"])
    assert changes["ports"][1][0]["published"] == 8080
    assert "replicas" not in changes and "restart_policy.condition" not in changes  # defaults are not news
    assert "name" not in changes and "stack" not in changes  # the heading names the service


def test_values_show_as_json() -> None:
    assert [show(v) for v in (None, "a", 3, ["x"], {"k": True})] == ["-", '"a"', "3", '["x"]', '{"k": true}']
