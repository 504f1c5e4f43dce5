"""The agent's figures as Prometheus metrics: made from metrics.py's counts and the mesh's at each scrape.

Imported at the first scrape of `/metrics` (prometheus_client, about 1.4 MiB, is loaded then and not before). The
names, labels and types are those the agent has always served: counters `corral_container_starts_total{result}`,
`corral_health_probes_total{service,result}`, the histogram `corral_container_start_duration_seconds`, the per-task
gauges `corral_task_*{task,service,slot}` and the mesh's counters `corral_mesh_*_total{service,port,protocol,listener}`.
"""

from collections.abc import Callable, Iterator, Mapping

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from corral.agent.mesh import MeshCounters
from corral.agent.mesh_metrics import ServicePort
from corral.agent.metrics import AgentMetrics

_TASK_LABELS = ["task", "service", "slot"]
_TASK_GAUGES = (
    ("corral_task_cpu_seconds_total", "CPU time a task's container has used", "cpu_seconds"),
    ("corral_task_memory_working_set_bytes", "memory a task's container uses, less inactive page cache", "memory_working_set"),
    ("corral_task_network_receive_bytes_total", "bytes a task's container received", "rx_bytes"),
    ("corral_task_network_transmit_bytes_total", "bytes a task's container sent", "tx_bytes"),
)
_MESH_FAMILIES = (
    ("corral_mesh_connections", "connections the mesh accepted (UDP: sessions, one per client address)", "connections"),
    ("corral_mesh_receive_bytes", "bytes the mesh received from clients", "received_bytes"),
    ("corral_mesh_transmit_bytes", "bytes the mesh sent to clients", "sent_bytes"),
    ("corral_mesh_retries", "backends tried after another failed (refused, timed out, closed unanswered)", "retries"),
    ("corral_mesh_errors", "connections (UDP: datagrams) dropped because no backend could take them", "errors"),
)
_MESH_LABELS = ["service", "port", "protocol", "listener"]


def registry_of(metrics: AgentMetrics) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(AgentCollector(metrics))
    if metrics.mesh is not None:
        registry.register(MeshCollector(metrics.mesh))
    return registry


class AgentCollector(Collector):
    """Container starts, their latency, probe results and the per-task figures, as counted by `AgentMetrics`."""

    def __init__(self, metrics: AgentMetrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        m = self.metrics
        starts = CounterMetricFamily("corral_container_starts", "containers this agent started, by result", labels=["result"])
        for result, count in sorted(m.starts.counts.items()):
            starts.add_metric([result], count, created=m.starts.created[result])
        yield starts
        latency = m.start_latency
        cumulative, buckets = 0, []
        for bound, count in zip((*map(repr, latency.bounds), "+Inf"), latency.counts):
            cumulative += count
            buckets.append((bound, float(cumulative)))
        name, text = "corral_container_start_duration_seconds", "engine create and start of a task's container"
        yield HistogramMetricFamily(name, text, buckets=buckets, sum_value=latency.total)
        yield GaugeMetricFamily(name + "_created", text, value=latency.created)  # (a histogram family takes none)
        probes = CounterMetricFamily("corral_health_probes", "health probe results", labels=["service", "result"])
        for (service, result), count in sorted(m.probes.counts.items()):
            probes.add_metric([service, result], count, created=m.probes.created[service, result])
        yield probes
        gauges = {field: GaugeMetricFamily(name, text, labels=_TASK_LABELS) for name, text, field in _TASK_GAUGES}
        restarts = GaugeMetricFamily("corral_task_restarts", "restarts of the task's slot charged to its restart policy", labels=_TASK_LABELS)
        for figure in m.tasks:
            task = figure.task
            labels = [task.id, task.service, str(task.slot if task.slot is not None else task.node)]
            restarts.add_metric(labels, task.restarts)
            if figure.stats is not None:
                for field, gauge in gauges.items():
                    gauge.add_metric(labels, getattr(figure.stats, field))
        yield from gauges.values()
        yield restarts


class MeshCollector(Collector):
    """Prometheus counters read from the mesh at each scrape."""

    def __init__(self, source: Callable[[], Mapping[ServicePort, MeshCounters]]) -> None:
        self.source = source

    def collect(self) -> Iterator[CounterMetricFamily]:
        figures = self.source()
        for name, documentation, field in _MESH_FAMILIES:
            family = CounterMetricFamily(name, documentation, labels=_MESH_LABELS)
            for key, counters in sorted(figures.items(), key=lambda item: (item[0].service, item[0].port, item[0].protocol, item[0].listener)):
                family.add_metric([key.service, str(key.port), key.protocol, key.listener], getattr(counters, field))
            yield family
