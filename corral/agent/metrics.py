"""The agent's Prometheus metrics, served at `/metrics` on `--metrics-listen` (default: the node address, port 7071).

Counted as they happen: container starts and their latency (engine create +
start, `corral_container_start_duration_seconds`), health probe results per
service. Read at scrape time from the engine (Docker's one-shot stats of each
running container of this node, concurrently, 2 s at most) and from the
agent's task list: per task CPU seconds, memory working set (usage less
inactive page cache, as kubelet counts it), network bytes, and the restarts
its slot has had. Plain HTTP, as Prometheus scrapes node exporters: it
shows resource figures and names of tasks, nothing secret; bind it to an
address only the monitoring network reaches (`--metrics-listen off` turns it off).
"""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from typing import TYPE_CHECKING

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from corral.agent.engines.base import ContainerInfo, ContainerStats, Engine
from corral.agent.health import ProbeResult
from corral.model import Task

if TYPE_CHECKING:  # the counters are every agent's; the app only that of an agent serving /metrics
    from starlette.applications import Starlette

log = logging.getLogger(__name__)

DEFAULT_PORT = 7071
START_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_TASK_LABELS = ["task", "service", "slot"]


@dataclass(frozen=True)
class TaskFigures:
    task: Task
    stats: ContainerStats | None


class AgentMetrics:
    def __init__(self, node: str) -> None:
        self.node = node
        self.registry = CollectorRegistry()
        r = self.registry
        self.starts = Counter("corral_container_starts", "containers this agent started, by result", ["result"], registry=r)
        self.start_latency = Histogram(
            "corral_container_start_duration_seconds", "engine create and start of a task's container",
            buckets=START_BUCKETS, registry=r,
        )
        self.probes = Counter("corral_health_probes", "health probe results", ["service", "result"], registry=r)
        self.cpu = Gauge("corral_task_cpu_seconds_total", "CPU time a task's container has used", _TASK_LABELS, registry=r)
        self.memory = Gauge("corral_task_memory_working_set_bytes", "memory a task's container uses, less inactive page cache", _TASK_LABELS, registry=r)
        self.rx = Gauge("corral_task_network_receive_bytes_total", "bytes a task's container received", _TASK_LABELS, registry=r)
        self.tx = Gauge("corral_task_network_transmit_bytes_total", "bytes a task's container sent", _TASK_LABELS, registry=r)
        self.restarts = Gauge("corral_task_restarts", "restarts of the task's slot charged to its restart policy", _TASK_LABELS, registry=r)

    def counted_probe(self, probe: Callable[[], Awaitable[ProbeResult]], service: str) -> Callable[[], Awaitable[ProbeResult]]:
        async def run() -> ProbeResult:
            result = await probe()
            self.probes.labels(service, "pass" if result.ok else "fail").inc()
            return result

        return run

    def set_tasks(self, figures: Iterable[TaskFigures]) -> None:
        """The per-task gauges: exactly the tasks given (a task gone since the last scrape leaves)."""
        for gauge in (self.cpu, self.memory, self.rx, self.tx, self.restarts):
            gauge.clear()
        for figure in figures:
            task = figure.task
            labels = (task.id, task.service, str(task.slot if task.slot is not None else task.node))
            self.restarts.labels(*labels).set(task.restarts)
            if figure.stats is not None:
                self.cpu.labels(*labels).set(figure.stats.cpu_seconds)
                self.memory.labels(*labels).set(figure.stats.memory_working_set)
                self.rx.labels(*labels).set(figure.stats.rx_bytes)
                self.tx.labels(*labels).set(figure.stats.tx_bytes)


async def gather_figures(engine: Engine, tasks: dict[str, Task], containers: list[ContainerInfo], timeout: float = 2.0) -> list[TaskFigures]:
    """Each task of the node with its container's stats (None when not running, or too slow to answer)."""
    running = {c.task_id: c for c in containers if c.running}

    async def one(task: Task) -> TaskFigures:
        container = running.get(task.id)
        if container is None:
            return TaskFigures(task, None)
        try:
            return TaskFigures(task, await asyncio.wait_for(engine.stats(container.id), timeout))
        except Exception as err:  # noqa: BLE001 - a container that went away meanwhile has no figures
            log.debug("no stats for %s: %s", container.id[:12], err)
            return TaskFigures(task, None)

    return list(await asyncio.gather(*(one(task) for task in tasks.values() if not task.terminal)))


def metrics_app(metrics: AgentMetrics, engine: Callable[[], Engine | None], tasks: Callable[[], dict[str, Task]]) -> "Starlette":
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    async def scrape(request: Request) -> Response:
        current = engine()
        if current is not None:
            started = time.perf_counter()
            metrics.set_tasks(await gather_figures(current, tasks(), await current.list()))
            log.debug("metrics gathered in %.3fs", time.perf_counter() - started)
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return Starlette(routes=[Route("/metrics", scrape, methods=["GET"])])
