"""Autoscaling decisions, as Kubernetes' HorizontalPodAutoscaler v2 makes them (pure: samples, window, now in).

- Usage: two samples of each task's CPU seconds give its CPU rate; the mean over the tasks sampled both
  times, in percent of the service's CPU reservation per replica (of one core when it reserves none).
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
class Recommendation:
    time: float
    replicas: int


def usage_percent(before: Mapping[str, CpuSample], after: Mapping[str, CpuSample], cores: float) -> float | None:
    """Mean CPU of the tasks sampled in both, in percent of `cores` per task; None when no task was (a restart's
    counter going back is not a figure either)."""
    rates = []
    for task, last in after.items():
        first = before.get(task)
        if first is None or last.time <= first.time or last.cpu_seconds < first.cpu_seconds:
            continue
        rates.append((last.cpu_seconds - first.cpu_seconds) / (last.time - first.time))
    if not rates:
        return None
    return sum(rates) / len(rates) / cores * 100


def base_cores(reserved_cpus: float) -> float:
    """What 100% is: the reservation per replica, or one core when the service reserves none."""
    return reserved_cpus if reserved_cpus > 0 else 1.0


def decide(
    spec: AutoscaleSpec, current: int, usage: float | None, history: Sequence[Recommendation], now: float
) -> tuple[AutoscaleDecision, list[Recommendation]]:
    """The decision now, and the recommendations to keep for the next one."""
    figures = f"cpu {usage:.0f}% of target {spec.target_cpu:g}%" if usage is not None else "no CPU figures yet"
    if usage is None:
        raw, why = current, figures
    else:
        ratio = usage / spec.target_cpu
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
    decision = AutoscaleDecision(time=now, current=current, desired=bounded, usage=usage, target=spec.target_cpu, reason=reason)
    return decision, kept
