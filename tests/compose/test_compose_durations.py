"""parse_duration: Compose durations to seconds."""

import pytest

from corral.compose.durations import parse_duration
from corral.model.errors import InvalidSpec


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("10s", 10.0),
        ("1m30s", 90.0),
        ("500ms", 0.5),
        ("1h", 3600.0),
        ("2.5s", 2.5),
        ("1h2m3s", 3723.0),
        ("1.5m", 90.0),
        ("250us", 0.00025),
        ("250µs", 0.00025),
        ("100ns", 1e-7),
        ("0s", 0.0),
        (".5s", 0.5),
        ("30", 30.0),
        ("2.5", 2.5),
        (30, 30.0),
        (0.25, 0.25),
        (" 10s ", 10.0),
    ],
)
def test_parse_duration(value: object, seconds: float) -> None:
    assert parse_duration(value, "p") == pytest.approx(seconds)


@pytest.mark.parametrize("value", ["", "s", "10x", "-1s", "1 m", "1m 30s", "ten seconds", "1d", "1e3s", "١٠s"])
def test_invalid_duration_text(value: str) -> None:
    with pytest.raises(InvalidSpec) as caught:
        parse_duration(value, "services.web.stop_grace_period")
    assert caught.value.path == "services.web.stop_grace_period"
    assert caught.value.reason.startswith(f"invalid duration {value!r}: expected e.g. 10s")


@pytest.mark.parametrize("value", [-1, -0.5, float("inf"), float("nan"), 10**400, "9" * 400 + "s"])
def test_duration_must_be_finite_and_non_negative(value: object) -> None:
    with pytest.raises(InvalidSpec) as caught:
        parse_duration(value, "p")
    assert "must be a finite, non-negative time" in caught.value.reason


@pytest.mark.parametrize("value", [True, None, [1], {"s": 1}])
def test_duration_of_another_type(value: object) -> None:
    with pytest.raises(InvalidSpec) as caught:
        parse_duration(value, "p")
    assert caught.value.reason.startswith("must be a duration")
