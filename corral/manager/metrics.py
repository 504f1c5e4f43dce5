"""The manager's Prometheus metrics: what its API serves, and the cluster as its cache sees it.

Counted as they happen: API requests by method, route template and status
(`corral_api_requests_total`) with their latency
(`corral_api_request_duration_seconds`), log/exec streams open, events stream
subscribers, the leader's reconcile passes and their duration, store writes by
result and their latency (store/measured.py wraps the store), and the image
registry's bytes received and sent (request and response bodies). Read at
scrape time from the cache (no extra bookkeeping, nothing to drift): store
revision, tasks by state, nodes by state, each service's desired and running
replicas, services by rollout state. Each manager has its own registry (several run in one test process).
"""

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from corral.manager.cache import StateCache
from corral.model import NodeState, TaskState
from corral.model.service import UpdateState

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class ClusterCollector(Collector):
    def __init__(self, cache: StateCache) -> None:
        self._cache = cache

    def collect(self) -> Iterator[GaugeMetricFamily]:
        cache = self._cache
        yield GaugeMetricFamily("corral_store_revision", "the store revision the manager's cache has seen", value=cache.revision)
        tasks = GaugeMetricFamily("corral_tasks", "tasks by observed state", labels=["state"])
        by_state = {state.value: 0 for state in TaskState}
        for versioned in cache.tasks.values():
            by_state[versioned.obj.state.value] += 1
        for state, count in by_state.items():
            tasks.add_metric([state], count)
        yield tasks
        nodes = GaugeMetricFamily("corral_nodes", "nodes by state", labels=["state"])
        node_states = {state.value: 0 for state in NodeState}
        for node in cache.nodes.values():
            node_states[node.obj.state.value] += 1
        for state, count in node_states.items():
            nodes.add_metric([state], count)
        yield nodes
        desired = GaugeMetricFamily("corral_service_replicas_desired", "replicas a service asks for (live tasks of a global one)", labels=["service"])
        running = GaugeMetricFamily("corral_service_replicas_running", "tasks of a service that are running", labels=["service"])
        for name, service in cache.services.items():
            live, up = cache.service_counts.get(name, [0, 0])
            spec = service.obj.spec
            desired.add_metric([name], spec.replicas if spec.mode.value == "replicated" else live)
            running.add_metric([name], up)
        yield desired
        yield running
        rollouts = GaugeMetricFamily("corral_rollouts", "services by the state of their latest rollout", labels=["state"])
        by_rollout = {state.value: 0 for state in UpdateState}
        for service in cache.services.values():
            if service.obj.update_status is not None:
                by_rollout[service.obj.update_status.state.value] += 1
        for state, count in by_rollout.items():
            rollouts.add_metric([state], count)
        yield rollouts


class ManagerMetrics:
    def __init__(self, cache: StateCache) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "corral_api_requests", "API requests answered", ["method", "route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "corral_api_request_duration_seconds", "time to answer an API request (to the end of a streamed body)",
            ["method", "route"], buckets=LATENCY_BUCKETS, registry=self.registry,
        )
        self.streams = Gauge("corral_log_streams", "log and exec streams open through the manager", registry=self.registry)
        self.event_subscribers = Gauge("corral_event_subscribers", "clients following /v1/events now", registry=self.registry)
        self.reconcile_passes = Counter(
            "corral_reconcile_passes", "the leader's controller passes, by result (ok, error)", ["result"], registry=self.registry
        )
        self.reconcile_duration = Histogram(
            "corral_reconcile_pass_duration_seconds", "time of one controller pass (health, replication, scheduling, their writes)",
            buckets=LATENCY_BUCKETS, registry=self.registry,
        )
        self.store_writes = Counter(
            "corral_store_writes", "store transactions, by result (ok, conflict: an expectation failed, error)", ["result"],
            registry=self.registry,
        )
        self.store_write_duration = Histogram(
            "corral_store_write_duration_seconds", "time of one store transaction", buckets=LATENCY_BUCKETS, registry=self.registry
        )
        self.loop_lag = Histogram(
            "corral_manager_loop_lag_seconds", "how late the event loop ran a probe asked for (what any request's next step waits)",
            buckets=LATENCY_BUCKETS, registry=self.registry,
        )
        self.registry_bytes = Counter(
            "corral_registry_bytes", "bytes of request (in) and response (out) bodies of the image registry", ["direction"],
            registry=self.registry,
        )
        for result in ("ok", "error"):
            self.reconcile_passes.labels(result)
        for result in ("ok", "conflict", "error"):
            self.store_writes.labels(result)
        for direction in ("in", "out"):
            self.registry_bytes.labels(direction)
        self.registry.register(ClusterCollector(cache))

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)

    def observe_pass(self, seconds: float, ok: bool) -> None:
        self.reconcile_passes.labels("ok" if ok else "error").inc()
        self.reconcile_duration.observe(seconds)

    def observe_write(self, seconds: float, result: str) -> None:
        self.store_writes.labels(result).inc()
        self.store_write_duration.observe(seconds)

    def count_registry_bytes(self, direction: str, count: int) -> None:
        self.registry_bytes.labels(direction).inc(count)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
