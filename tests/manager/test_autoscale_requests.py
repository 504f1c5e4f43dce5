"""The requests-per-second target (HPA v2, AverageValue): the rate from each node's mesh counters, per
replica, and the decisions it drives, on a fake clock."""

from corral.manager.autoscale import CountSample, decide, rate_per_replica
from corral.model.autoscale import AutoscaleSpec

SPEC = AutoscaleSpec(min=1, max=8, target_requests_per_second=10, scale_down_stabilization=30)


def test_the_rate_is_the_sum_over_nodes_per_replica() -> None:
    before = {"n1": CountSample(100.0, 50), "n2": CountSample(100.0, 0), "gone": CountSample(100.0, 9)}
    after = {"n1": CountSample(110.0, 250), "n2": CountSample(105.0, 100), "new": CountSample(110.0, 1000)}
    # n1: 20/s, n2: 20/s; 40/s over 2 replicas
    assert rate_per_replica(before, after, 2) == 20.0
    assert rate_per_replica(before, after, 4) == 10.0


def test_no_figures_when_no_node_was_sampled_twice_a_counter_went_back_or_no_replica_runs() -> None:
    assert rate_per_replica({}, {"n1": CountSample(1.0, 5)}, 1) is None
    assert rate_per_replica({"n1": CountSample(1.0, 5)}, {"n1": CountSample(2.0, 1)}, 1) is None  # agent restarted
    assert rate_per_replica({"n1": CountSample(1.0, 5)}, {"n1": CountSample(1.0, 9)}, 1) is None  # no time passed
    assert rate_per_replica({"n1": CountSample(1.0, 5)}, {"n1": CountSample(2.0, 9)}, 0) is None
    # an idle service is a figure: 0/s
    assert rate_per_replica({"n1": CountSample(1.0, 5)}, {"n1": CountSample(2.0, 5)}, 3) == 0.0


def test_recommends_the_total_rate_over_the_target_with_the_figures_in_the_reason() -> None:
    decision, _ = decide(SPEC, 2, 25.0, [], now=1000.0)  # 50/s in all: ceil(50 / 10) = 5, at most double: 4
    assert decision.desired == 4 and decision.metric == "requests_per_second" and decision.target == 10
    assert decision.reason == "25.0 requests/s per replica (mesh connections) of target 10/s: scale up 2 -> 4 (at most double per step)"
    assert decide(SPEC, 4, 10.5, [], 1000.0)[0].desired == 4  # within the 10% tolerance
    assert "no request figures yet" in decide(SPEC, 4, None, [], 1000.0)[0].reason


def test_scales_down_only_once_the_window_has_passed() -> None:
    first, history = decide(SPEC, 4, 10.0, [], now=0.0)
    assert first.desired == 4
    now, replicas = 0.0, 4
    seen = []
    while now < 60:
        now += 5
        decision, history = decide(SPEC, replicas, 0.0, history, now)
        replicas = decision.desired
        seen.append((now, replicas))
    assert [r for t, r in seen if t < 30] == [4] * 5  # the 4 recommended at 0 s holds for 30 s
    assert seen[-1][1] == 1 and next(t for t, r in seen if r == 1) == 30.0
