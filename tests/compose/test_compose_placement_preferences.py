"""placement.preferences (spread) and x-corral-affinity / x-corral-anti-affinity in compose."""

import pytest
import yaml

from compose_helpers import web, web_error
from corral.compose import parse_compose
from corral.model.affinity import Affinity


def test_spread_preferences_in_order() -> None:
    spec = web({"image": "x", "deploy": {"placement": {"preferences": [{"spread": "node.labels.zone"}, {"spread": "node.labels.rack"}]}}})
    assert spec.placement.preferences == ["node.labels.zone", "node.labels.rack"]


def test_affinities_name_the_stacks_services_by_full_name() -> None:
    text = yaml.safe_dump(
        {
            "services": {
                "cache": {"image": "x"},
                "app": {
                    "image": "x",
                    "x-corral-affinity": {"service": "cache", "mode": "prefer"},
                    "x-corral-anti-affinity": [{"service": "app"}, {"service": "other_db"}],
                },
            }
        }
    )
    app = {s.name: s for s in parse_compose(text, "shop").services}["shop_app"]
    assert app.affinities == [
        Affinity(service="shop_cache", mode="prefer"),
        Affinity(service="shop_app", anti=True),
        Affinity(service="other_db", anti=True),
    ]


@pytest.mark.parametrize(
    ("service", "path", "reason"),
    [
        ({"deploy": {"placement": {"preferences": [{"spread": "zone"}]}}}, "services.web.deploy.placement.preferences[0].spread", "expected node.labels.KEY"),
        ({"deploy": {"placement": {"preferences": [{"spread": "node.labels."}]}}}, "services.web.deploy.placement.preferences[0].spread", "expected node.labels.KEY"),
        ({"deploy": {"placement": {"preferences": [{"pack": "node.labels.zone"}]}}}, "services.web.deploy.placement.preferences[0]", "spread is the only preference"),
        ({"deploy": {"placement": {"preferences": {"spread": "node.labels.zone"}}}}, "services.web.deploy.placement.preferences", "must be a list"),
        ({"x-corral-affinity": {"service": "web"}}, "services.web.x-corral-affinity.service", "cannot require affinity with itself"),
        ({"x-corral-affinity": {"service": "db", "mode": "always"}}, "services.web.x-corral-affinity.mode", "unknown mode 'always'"),
        ({"x-corral-anti-affinity": [{"mode": "prefer"}]}, "services.web.x-corral-anti-affinity[0].service", "required"),
    ],
)
def test_bad_preferences_and_affinities_name_the_field(service: dict[str, object], path: str, reason: str) -> None:
    error = web_error({"image": "x", **service})
    assert error.path == path
    assert reason in error.reason


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, (True, 60.0)), (False, (False, 60.0)), (True, (True, 60.0)), ({"cooldown": "10s"}, (True, 10.0))],
)
def test_rebalance_switch_and_cooldown(value: object, expected: tuple[bool, float]) -> None:
    spec = web({"image": "x", "x-corral-rebalance": value})
    assert (spec.rebalance, spec.rebalance_cooldown) == expected


def test_bad_rebalance_names_the_field() -> None:
    error = web_error({"image": "x", "x-corral-rebalance": "sometimes"})
    assert (error.path, error.reason) == ("services.web.x-corral-rebalance", "must be true, false or {cooldown: DURATION}")
    error = web_error({"image": "x", "x-corral-rebalance": {"cooldown": "soon"}})
    assert error.path == "services.web.x-corral-rebalance.cooldown"
