"""Autoscaling decisions, as Kubernetes' HorizontalPodAutoscaler v2 makes them (pure: samples, window, now in).

- Usage, CPU: two samples of each task's CPU seconds give its CPU rate; the mean over the tasks sampled both
  times, in percent of the service's CPU reservation per replica (of one core when it reserves none).
- Usage, requests per second: two samples of each node's mesh counter of the service's connections give
  that node's rate; the sum over the nodes sampled both times, divided by the current replicas (as HPA's
  AverageValue targets: the recommendation is then ceil(total rate / target)).
- Recommendation: ceil(current * usage / target), none when usage/target is within 1 +- tolerance (10%).
- Stabilization: every recommendation is kept with its time; scaling up takes the lowest recommendation
  of the scale-up window (0 s by default: at once), scaling down the highest of the scale-down window
  (300 s by default: the service shrinks only when it has needed less for that long). A first decision
  (no history: a new service, a new leader) counts the current replicas as recommended now, as HPA does.
- Limits: at most double per step upwards; always within [min, max] (a service outside is brought in).
"""

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from corral.model.autoscale import AutoscaleDecision, AutoscaleSpec


@dataclass(frozen=True)
class CpuSample:
    time: float  # when it was read
    cpu_seconds: float  # the container's total CPU time so far


@dataclass(frozen=True)
class CountSample:
    time: float  # when it was read
    count: int  # a counter's total so far (a node mesh's connections of one service)


@dataclass(frozen=True)
class Recommendation:
    time: float
    replicas: int


def usage_percent(before: Mapping[str, CpuSample], after: Mapping[str, CpuSample], cores: float) -> float | None:
    """Mean CPU of the tasks sampled in both, in percent of `cores` per task; None when no task was (a restart's
    counter going back is not a figure either)."""
    rates = _rates({k: (s.time, s.cpu_seconds) for k, s in before.items()}, {k: (s.time, s.cpu_seconds) for k, s in after.items()})
    if not rates:
        return None
    return sum(rates) / len(rates) / cores * 100


def rate_per_replica(before: Mapping[str, CountSample], after: Mapping[str, CountSample], replicas: int) -> float | None:
    """The summed per-second rate of the counters sampled in both, per replica; None when none was (or no replica
    runs). A counter that went back (an agent restarted, a listener opened again) is left out of this sample."""
    rates = _rates({k: (s.time, s.count) for k, s in before.items()}, {k: (s.time, s.count) for k, s in after.items()})
    if not rates or replicas <= 0:
        return None
    return sum(rates) / replicas


def _rates(before: Mapping[str, tuple[float, float]], after: Mapping[str, tuple[float, float]]) -> list[float]:
    """Per-second rates of the (time, total) counters sampled in both, leaving out any that went back."""
    rates = []
    for key, (time, total) in after.items():
        first = before.get(key)
        if first is None or time <= first[0] or total < first[1]:
            continue
        rates.append((total - first[1]) / (time - first[0]))
    return rates


def base_cores(reserved_cpus: float) -> float:
    """What 100% is: the reservation per replica, or one core when the service reserves none."""
    return reserved_cpus if reserved_cpus > 0 else 1.0


def decide(
    spec: AutoscaleSpec, current: int, usage: float | None, history: Sequence[Recommendation], now: float
) -> tuple[AutoscaleDecision, list[Recommendation]]:
    """The decision now, and the recommendations to keep for the next one."""
    figures = _figures(spec, usage)
    if usage is None:
        raw, why = current, figures
    else:
        ratio = usage / spec.target
        if abs(ratio - 1) <= spec.tolerance:
            raw, why = current, f"{figures}: within the {spec.tolerance:.0%} tolerance"
        else:
            raw, why = math.ceil(current * ratio), figures
    past = list(history) or [Recommendation(now, current)]  # a first decision: as if the replicas were recommended now
    up = min([raw, *(r.replicas for r in past if r.time > now - spec.scale_up_stabilization)])
    down = max([raw, *(r.replicas for r in past if r.time > now - spec.scale_down_stabilization)])
    oldest = now - max(spec.scale_up_stabilization, spec.scale_down_stabilization)
    kept = [r for r in past if oldest < r.time <= now] + [Recommendation(now, raw)]
    stabilized = up if current < up else down if current > down else current
    notes = []
    if stabilized != raw:
        window = spec.scale_up_stabilization if raw > current else spec.scale_down_stabilization
        notes.append(f"recommends {raw}, stabilized to {stabilized} over {window:g}s")
    desired = stabilized
    if desired > 2 * current and current > 0:
        desired = 2 * current
        notes.append("at most double per step")
    bounded = min(max(desired, spec.min), spec.max)
    if bounded != desired:
        notes.append(f"within [{spec.min}, {spec.max}]")
    verb = "scale up" if bounded > current else "scale down" if bounded < current else "keep"
    reason = f"{why}: {verb} {current} -> {bounded}" if bounded != current else f"{why}: keep {current}"
    if notes:
        reason += " (" + "; ".join(notes) + ")"
    decision = AutoscaleDecision(time=now, current=current, desired=bounded, usage=usage, target=spec.target, reason=reason, metric=spec.metric)
    return decision, kept


def _figures(spec: AutoscaleSpec, usage: float | None) -> str:
    if spec.metric == "cpu":
        return f"cpu {usage:.0f}% of target {spec.target:g}%" if usage is not None else "no CPU figures yet"
    if usage is None:
        return "no request figures yet"
    return f"{usage:.1f} requests/s per replica (mesh connections) of target {spec.target:g}/s"
