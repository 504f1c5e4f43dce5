"""x-corral-autoscale in compose: the HPA-like settings, their defaults, and clear errors for bad ones."""

import pytest

from compose_helpers import web, web_error
from corral.model.autoscale import AutoscaleSpec


def test_full_shape() -> None:
    spec = web(
        {
            "image": "busybox",
            "deploy": {"replicas": 2, "resources": {"reservations": {"cpus": "0.5"}}},
            "x-corral-autoscale": {
                "min": 2, "max": 20, "target": {"cpu": 70}, "interval": "5s", "tolerance": 0.2,
                "behavior": {"scale_up": {"stabilization": "10s"}, "scale_down": {"stabilization": "30s"}},
            },
        }
    )
    assert spec.autoscale == AutoscaleSpec(
        min=2, max=20, target_cpu=70, interval=5, tolerance=0.2, scale_up_stabilization=10, scale_down_stabilization=30
    )


def test_defaults_are_hpas() -> None:
    spec = web({"image": "busybox", "x-corral-autoscale": {"max": 3, "target": {"cpu": 50}}})
    assert spec.autoscale == AutoscaleSpec(min=1, max=3, target_cpu=50, tolerance=0.1, interval=15, scale_up_stabilization=0, scale_down_stabilization=300)
    assert web({"image": "busybox"}).autoscale is None


@pytest.mark.parametrize(
    ("setting", "path", "words"),
    [
        ({"target": {"cpu": 50}}, "x-corral-autoscale.max", "required"),
        ({"max": 3}, "x-corral-autoscale.target", "cpu: PERCENT"),
        ({"max": 3, "target": {"cpu": 0}}, "x-corral-autoscale.target.cpu", "percentage above 0"),
        ({"max": 3, "target": {"cpu": 50, "memory": 10}}, "x-corral-autoscale.target.memory", "unknown setting"),
        ({"max": 3, "targt": {"cpu": 50}}, "x-corral-autoscale.targt", "unknown setting"),
        ({"min": 4, "max": 3, "target": {"cpu": 50}}, "x-corral-autoscale", "min (4) is more than max (3)"),
        ({"min": 0, "max": 3, "target": {"cpu": 50}}, "x-corral-autoscale.min", "positive integer"),
        ({"max": 3, "target": {"cpu": 50}, "behavior": {"scale_down": {"stabilization": "soon"}}}, "stabilization", ""),
        ({"max": 3, "target": {"cpu": 50}, "behavior": {"down": {}}}, "x-corral-autoscale.behavior.down", "unknown setting"),
        ("fast", "x-corral-autoscale", "mapping"),
        ({"max": 3, "target": {"cpu": 50, "requests_per_second": 10}}, "x-corral-autoscale.target", "needs one of"),
        ({"max": 3, "target": {"requests_per_second": 0}}, "x-corral-autoscale.target.requests_per_second", "above 0"),
        ({"max": 3, "target": {"requests_per_second": "lots"}}, "x-corral-autoscale.target.requests_per_second", "requests per second"),
        ({"max": 3, "target": {}}, "x-corral-autoscale.target", "requests_per_second: N"),
    ],
)
def test_bad_settings_are_refused_naming_the_key(setting: object, path: str, words: str) -> None:
    error = web_error({"image": "busybox", "x-corral-autoscale": setting})
    assert path in error.path and words in str(error), (error.path, str(error))


def test_a_requests_per_second_target() -> None:
    spec = web({"image": "busybox", "x-corral-autoscale": {"min": 1, "max": 5, "target": {"requests_per_second": 20}, "interval": "2s"}})
    assert spec.autoscale == AutoscaleSpec(min=1, max=5, target_requests_per_second=20, interval=2)
    assert spec.autoscale.metric == "requests_per_second" and spec.autoscale.target == 20


def test_only_a_replicated_service_autoscales() -> None:
    error = web_error({"image": "busybox", "deploy": {"mode": "global"}, "x-corral-autoscale": {"max": 3, "target": {"cpu": 50}}})
    assert "only a replicated service autoscales (this one is global)" in str(error)
