"""The agent's metrics: Docker stats turned into figures, per-task gauges that follow the task list, probe counts."""

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from corral.agent.engines.base import ContainerStats
from corral.agent.engines.docker_streams import stats_of
from corral.agent.health import ProbeResult
from corral.agent.metrics import AgentMetrics, TaskFigures
from tests.manager.factories import make_service, make_task

V2_SAMPLE = {
    "cpu_stats": {"cpu_usage": {"total_usage": 2_500_000_000}},
    "memory_stats": {"usage": 10_000_000, "stats": {"inactive_file": 4_000_000}},
    "networks": {"eth0": {"rx_bytes": 100, "tx_bytes": 40}, "eth1": {"rx_bytes": 1, "tx_bytes": 2}},
}


def test_docker_stats_become_figures() -> None:
    assert stats_of(V2_SAMPLE) == ContainerStats(cpu_seconds=2.5, memory_working_set=6_000_000, rx_bytes=101, tx_bytes=42)
    v1 = {"memory_stats": {"usage": 5, "stats": {"total_inactive_file": 9}}}
    assert stats_of(v1) == ContainerStats(cpu_seconds=0.0, memory_working_set=0, rx_bytes=0, tx_bytes=0)


def _samples(metrics: AgentMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(metrics.registry).decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for f in text_string_to_metric_families(text) for s in f.samples}


async def test_per_task_gauges_follow_the_tasks_and_probes_are_counted() -> None:
    metrics = AgentMetrics("node-1")
    web = make_service("web")
    one, two = make_task(web, 1, id="t1", restarts=2), make_task(web, 2, id="t2")
    metrics.set_tasks([TaskFigures(one, stats_of(V2_SAMPLE)), TaskFigures(two, None)])
    samples = _samples(metrics)
    labels = (("service", "web"), ("slot", "1"), ("task", "t1"))
    assert samples[("corral_task_cpu_seconds_total", labels)] == 2.5
    assert samples[("corral_task_memory_working_set_bytes", labels)] == 6_000_000
    assert samples[("corral_task_restarts", labels)] == 2
    assert ("corral_task_cpu_seconds_total", (("service", "web"), ("slot", "2"), ("task", "t2"))) not in samples
    metrics.set_tasks([TaskFigures(two, None)])  # t1 went away: its series leave
    assert not any(dict(labels).get("task") == "t1" for _, labels in _samples(metrics))

    results = iter([ProbeResult(True), ProbeResult(False, "refused"), ProbeResult(True)])

    async def probe() -> ProbeResult:
        return next(results)

    counted = metrics.counted_probe(probe, "web")
    assert [(await counted()).ok for _ in range(3)] == [True, False, True]
    samples = _samples(metrics)
    assert samples[("corral_health_probes_total", (("result", "pass"), ("service", "web")))] == 2
    assert samples[("corral_health_probes_total", (("result", "fail"), ("service", "web")))] == 1


def test_starts_and_their_latency_are_counted_in_prometheus_terms() -> None:
    """Counted in plain Python, served as the Prometheus counter and histogram they always were."""
    metrics = AgentMetrics("node-1")
    for seconds in (0.04, 0.3, 0.3, 75.0):
        metrics.start_latency.observe(seconds)
        metrics.starts.add("started")
    metrics.starts.add("failed")
    samples = _samples(metrics)
    assert samples[("corral_container_starts_total", (("result", "started"),))] == 4
    assert samples[("corral_container_starts_total", (("result", "failed"),))] == 1
    name = "corral_container_start_duration_seconds"
    assert samples[(name + "_bucket", (("le", "0.05"),))] == 1
    assert samples[(name + "_bucket", (("le", "0.25"),))] == 1
    assert samples[(name + "_bucket", (("le", "0.5"),))] == 3  # cumulative, as Prometheus reads buckets
    assert samples[(name + "_bucket", (("le", "60.0"),))] == 3
    assert samples[(name + "_bucket", (("le", "+Inf"),))] == 4
    assert samples[(name + "_count", ())] == 4
    assert samples[(name + "_sum", ())] == pytest.approx(75.64)


def test_a_new_agent_serves_its_histogram_empty_and_its_counters_without_series() -> None:
    samples = _samples(AgentMetrics("node-1"))
    assert samples[("corral_container_start_duration_seconds_count", ())] == 0
    assert not any(name.startswith(("corral_container_starts", "corral_health_probes", "corral_task_")) for name, _ in samples)
