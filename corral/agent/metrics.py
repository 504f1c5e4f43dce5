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

What happens is counted here in plain Python; Prometheus' types are made from the counts at a scrape
(metrics_export.py), so an agent nobody scrapes never loads prometheus_client (about 1.4 MiB).
"""

import asyncio
import bisect
import logging
import time
from collections.abc import Awaitable, Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Generic, TypeVar

from corral.agent.engines.base import ContainerInfo, ContainerStats, Engine
from corral.agent.health import ProbeResult
from corral.model import Task

if TYPE_CHECKING:  # the counts are every agent's; Prometheus' registry and the app only that of an agent scraped
    from prometheus_client import CollectorRegistry
    from starlette.applications import Starlette

    from corral.agent.mesh import MeshCounters
    from corral.agent.mesh_metrics import ServicePort

log = logging.getLogger(__name__)

DEFAULT_PORT = 7071
START_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


@dataclass(frozen=True)
class TaskFigures:
    task: Task
    stats: ContainerStats | None


K = TypeVar("K", bound=Hashable)


class Tally(Generic[K]):
    """Counts by key, and when each key was first counted (the `_created` of its Prometheus series)."""

    def __init__(self) -> None:
        self.counts: dict[K, int] = {}
        self.created: dict[K, float] = {}

    def add(self, key: K) -> None:
        if key not in self.counts:
            self.counts[key] = 0
            self.created[key] = time.time()
        self.counts[key] += 1


@dataclass
class Latencies:
    """Observations in buckets, as a Prometheus histogram counts them: `counts[i]` those up to `bounds[i]`
    (and above the last bound, `counts[-1]`), not cumulative."""

    bounds: tuple[float, ...]
    counts: list[int] = field(default_factory=list)
    total: float = 0.0
    created: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        self.counts = [0] * (len(self.bounds) + 1)

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, seconds)] += 1
        self.total += seconds


class AgentMetrics:
    def __init__(self, node: str, mesh: "Callable[[], Mapping[ServicePort, MeshCounters]] | None" = None) -> None:
        """`mesh`: the mesh's counters per service port, read at each scrape."""
        self.node = node
        self.mesh = mesh
        self.starts: Tally[str] = Tally()  # containers this agent started, by result ("started", "failed")
        self.start_latency = Latencies(START_BUCKETS)  # engine create and start of a task's container, seconds
        self.probes: Tally[tuple[str, str]] = Tally()  # health probe results by (service, "pass" or "fail")
        self.tasks: list[TaskFigures] = []  # per task, as of the last scrape
        self._registry: "CollectorRegistry | None" = None

    @property
    def registry(self) -> "CollectorRegistry":
        """Prometheus' registry of these figures (made at the first scrape)."""
        if self._registry is None:
            from corral.agent.metrics_export import registry_of

            self._registry = registry_of(self)
        return self._registry

    def counted_probe(self, probe: Callable[[], Awaitable[ProbeResult]], service: str) -> Callable[[], Awaitable[ProbeResult]]:
        async def run() -> ProbeResult:
            result = await probe()
            self.probes.add((service, "pass" if result.ok else "fail"))
            return result

        return run

    def set_tasks(self, figures: Iterable[TaskFigures]) -> None:
        """The per-task figures: exactly the tasks given (a task gone since the last scrape leaves)."""
        self.tasks = list(figures)


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
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return Starlette(routes=[Route("/metrics", scrape, methods=["GET"])])
