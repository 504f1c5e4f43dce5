"""The autoscaling rule (HPA v2) on a fake clock: usage from samples, tolerance, stabilization windows,
step limits and bounds; properties with hypothesis."""

import math

from hypothesis import given, settings, strategies as st

from corral.manager.autoscale import CpuSample, Recommendation, base_cores, decide, usage_percent
from corral.model.autoscale import AutoscaleSpec

SPEC = AutoscaleSpec(min=1, max=10, target_cpu=50, scale_down_stabilization=300)


def test_usage_is_the_mean_rate_of_the_tasks_sampled_twice_in_percent_of_the_base() -> None:
    before = {"a": CpuSample(100.0, 1.0), "b": CpuSample(100.0, 5.0), "gone": CpuSample(100.0, 0.0)}
    after = {"a": CpuSample(110.0, 2.0), "b": CpuSample(110.0, 8.0), "new": CpuSample(110.0, 50.0)}
    # a: 0.1 core, b: 0.3 core; mean 0.2 core of a 0.1 core reservation = 200%
    assert usage_percent(before, after, base_cores(0.1)) == 200.0
    assert usage_percent(before, after, base_cores(0.0)) == 20.0  # no reservation: of one core


def test_no_figures_when_nothing_was_sampled_twice_or_a_counter_went_back() -> None:
    assert usage_percent({}, {"a": CpuSample(1.0, 1.0)}, 1.0) is None
    assert usage_percent({"a": CpuSample(1.0, 5.0)}, {"a": CpuSample(2.0, 1.0)}, 1.0) is None  # restarted container
    assert usage_percent({"a": CpuSample(1.0, 1.0)}, {"a": CpuSample(1.0, 2.0)}, 1.0) is None  # no time passed


def test_scales_up_at_once_at_most_doubling() -> None:
    decision, kept = decide(SPEC, 2, 400.0, [], now=1000.0)  # wants ceil(2 * 8) = 16
    assert decision.desired == 4
    assert "scale up 2 -> 4" in decision.reason and "at most double per step" in decision.reason
    assert decision.usage == 400.0 and decision.target == 50
    assert kept == [Recommendation(1000.0, 2), Recommendation(1000.0, 16)]  # the first decision's seed: the current 2


def test_within_tolerance_nothing_changes() -> None:
    assert decide(SPEC, 4, 54.0, [], 1000.0)[0].desired == 4
    assert "tolerance" in decide(SPEC, 4, 46.0, [], 1000.0)[0].reason
    assert decide(SPEC, 4, 56.0, [], 1000.0)[0].desired == 5  # ceil(4 * 1.12)


def test_scales_down_only_when_the_window_has_wanted_less() -> None:
    history: list[Recommendation] = []
    decision, history = decide(SPEC, 6, 50.0, history, 1000.0)  # at target: 6
    assert decision.desired == 6
    now = 1000.0
    for _ in range(19):  # idle every 15 s for 285 s: the 6 of t=1000 is still in the window
        now += 15
        decision, history = decide(SPEC, 6, 10.0, history, now)
        assert decision.desired == 6, decision.reason
    assert "stabilized to 6 over 300s" in decision.reason
    now += 16  # t=1301: the 6 left the window, the highest left is 2 (ceil(6 * 0.2))
    decision, history = decide(SPEC, 6, 10.0, history, now)
    assert decision.desired == 2 and "scale down 6 -> 2" in decision.reason
    assert all(r.time > now - 300 for r in history[:-1]) and history[-1] == Recommendation(now, 2)


def test_a_scale_up_window_takes_the_lowest_recommendation() -> None:
    spec = SPEC.model_copy(update={"scale_up_stabilization": 60.0})
    _, history = decide(spec, 2, 50.0, [], 1000.0)  # 2 at t=1000
    decision, history = decide(spec, 2, 100.0, history, 1030.0)
    assert decision.desired == 2  # the 2 of t=1000 is the lowest of the last 60 s
    decision, _ = decide(spec, 2, 100.0, history, 1061.0)
    assert decision.desired == 4


def test_bounds_bring_a_service_in_and_no_figures_keep_it() -> None:
    spec = AutoscaleSpec(min=2, max=5, target_cpu=70)
    assert decide(spec, 8, None, [], 0.0)[0].desired == 5
    assert decide(spec, 1, None, [], 0.0)[0].desired == 2
    decision, _ = decide(spec, 3, None, [], 0.0)
    assert decision.desired == 3 and "no CPU figures" in decision.reason
    assert decide(spec, 3, 1000.0, [], 0.0)[0].desired == 5  # max
    assert decide(spec, 3, 0.0, [], 0.0)[0].desired == 3  # a first decision: 3 counts as recommended now...
    assert decide(spec.model_copy(update={"scale_down_stabilization": 0.0}), 3, 0.0, [], 0.0)[0].desired == 2  # ...or min


SPECS = st.builds(
    lambda low, span, target, up, down: AutoscaleSpec(
        min=low, max=low + span, target_cpu=target, scale_up_stabilization=up, scale_down_stabilization=down
    ),
    st.integers(1, 5), st.integers(0, 20), st.floats(1, 200), st.sampled_from([0.0, 30.0]), st.sampled_from([0.0, 60.0, 300.0]),
)


@settings(max_examples=200, deadline=None)
@given(SPECS, st.integers(1, 30), st.lists(st.one_of(st.none(), st.floats(0, 2000)), min_size=1, max_size=40), st.floats(1, 60))
def test_properties_on_a_fake_clock(spec: AutoscaleSpec, start: int, usages: list[float | None], step: float) -> None:
    """Replicas stay in [min, max] after the first decision, never more than double, never go down within
    the scale-down window of a higher recommendation, and the history holds no more than the windows."""
    current, history, now = start, list[Recommendation](), 1000.0
    for usage in usages:
        before = history
        decision, history = decide(spec, current, usage, history, now)
        assert spec.min <= decision.desired <= spec.max
        if decision.desired > current:
            assert decision.desired <= max(2 * current, spec.min)
        if decision.desired < current:
            recent = [r.replicas for r in before if r.time > now - spec.scale_down_stabilization]
            assert all(r <= decision.desired for r in recent) or current > spec.max
        assert all(r.time > now - max(spec.scale_up_stabilization, spec.scale_down_stabilization) for r in history[:-1])
        current = decision.desired
        now += step


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 20), st.floats(1, 200), st.floats(0, 2000))
def test_with_no_windows_it_is_the_hpa_formula(current: int, target: float, usage: float) -> None:
    spec = AutoscaleSpec(min=1, max=1000, target_cpu=target, scale_down_stabilization=0)
    ratio = usage / target
    wanted = current if abs(ratio - 1) <= 0.1 else math.ceil(current * ratio)
    assert decide(spec, current, usage, [], 0.0)[0].desired == min(max(wanted, 1), 2 * current)
