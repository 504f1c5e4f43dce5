"""The autoscaling loop (the leader's): sample the CPU or the request rate of autoscaled services, decide, scale.

Every `tick` seconds (on the injected clock) each replicated service with `x-corral-autoscale` whose
`interval` has passed since its last sample is sampled: for a CPU target, each running task's CPU
seconds, from its node's agent; for a requests-per-second target, the connections every ready node's
routing mesh has accepted for the service (a published port answers on every node, and a VIP on
every node, so every node's mesh may carry its traffic). With the previous sample that gives the usage; `autoscale.decide` makes the decision.
A decision that changes the replicas is written with the scale (the service's `replicas` and its
`autoscale_status`, one compare-and-swap write: an event `autoscale` with the figures); one that keeps
them refreshes `autoscale_status` at most once a minute, so `corral service inspect` shows recent
usage without an event every sample. The recommendations of the stabilization windows live in memory:
a new leader starts with empty windows (as a restarted HPA controller does).
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from corral.manager import keys
from corral.manager.autoscale import CountSample, CpuSample, Recommendation, base_cores, decide, rate_per_replica, usage_percent
from corral.manager.cache import StateCache, Versioned
from corral.manager.context import ManagerContext
from corral.manager.mesh_counters import read_connections
from corral.manager.node_streams import NodeUnreachable
from corral.manager.service_changes import scaled
from corral.manager.task_stats import read_stats
from corral.manager.writes import put_with_retry
from corral.model import NodeState, Service, ServiceMode, Task
from corral.model.autoscale import AutoscaleDecision
from corral.model.errors import CorralError
from corral.store import Store

log = logging.getLogger(__name__)

STATUS_REFRESH = 60.0  # seconds between two writes of a decision that keeps the replicas

# A task's CPU seconds now (None: no figures), raising CorralError when its node cannot be asked.
ReadCpu = Callable[[Task], Awaitable[float | None]]
# Service name -> connections a node's mesh has accepted for it so far, raising CorralError when the node cannot be asked.
ReadMesh = Callable[[str], Awaitable[Mapping[str, int]]]


@dataclass
class _Watch:
    """What the loop remembers of one service between samples."""

    sampled_at: float
    samples: dict[str, CpuSample] = field(default_factory=dict)  # by task (a CPU target)
    counts: dict[str, CountSample] = field(default_factory=dict)  # by node (a requests-per-second target)
    history: list[Recommendation] = field(default_factory=list)


@dataclass
class Autoscaler:
    store: Store  # the leader's fenced store
    cache: StateCache
    read_cpu: ReadCpu
    clock: Callable[[], float]
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    tick: float = 1.0
    read_mesh: ReadMesh | None = None  # None: requests-per-second targets get no figures
    _watches: dict[str, _Watch] = field(default_factory=dict)

    async def run(self) -> None:
        while True:
            try:
                await self.step()
            except Exception:  # one bad pass must not end the loop: the next tries again
                log.exception("autoscaling pass failed")
            await self.sleep(self.tick)

    async def step(self) -> None:
        """One pass: sample and decide for every autoscaled service that is due."""
        services = {name: v.obj for name, v in self.cache.services.items() if _autoscaled(v.obj)}
        for gone in set(self._watches) - set(services):
            del self._watches[gone]
        now = self.clock()
        due = [s for s in services.values() if self._due(s, now)]
        await asyncio.gather(*(self._sample_and_decide(service) for service in due))

    def _due(self, service: Service, now: float) -> bool:
        watch = self._watches.get(service.spec.name)
        assert service.spec.autoscale is not None
        return watch is None or now - watch.sampled_at >= service.spec.autoscale.interval

    async def _sample_and_decide(self, service: Service) -> None:
        spec = service.spec.autoscale
        assert spec is not None
        name = service.spec.name
        first = name not in self._watches  # one sample is no rate yet
        if spec.metric == "cpu":
            samples = await self._sample(name)
            watch = self._watches.setdefault(name, _Watch(sampled_at=self.clock()))
            usage = usage_percent(watch.samples, samples, base_cores(service.spec.reservations.cpus))
            watch.samples = samples
        else:
            counts = await self._sample_mesh(name)
            watch = self._watches.setdefault(name, _Watch(sampled_at=self.clock()))
            usage = rate_per_replica(watch.counts, counts, service.spec.replicas)
            watch.counts = counts
        now = self.clock()
        watch.sampled_at = now
        if first:
            return
        decision, watch.history = decide(spec, service.spec.replicas, usage, watch.history, now)
        await self._write(name, decision)

    async def _sample(self, name: str) -> dict[str, CpuSample]:
        running = [t for t in self.cache.tasks_of(name) if t.state.value == "running" and t.node and t.container_id]

        async def one(task: Task) -> tuple[str, CpuSample | None]:
            try:
                seconds = await self.read_cpu(task)
            except CorralError as err:
                log.info("no CPU figures for task %s: %s", task.id, err)
                return task.id, None
            return task.id, CpuSample(self.clock(), seconds) if seconds is not None else None

        read = await asyncio.gather(*(one(t) for t in running))
        return {task: sample for task, sample in read if sample is not None}

    async def _sample_mesh(self, name: str) -> dict[str, CountSample]:
        """Each ready node's count of the service's connections (a node that cannot be asked gives none)."""
        read_mesh = self.read_mesh
        if read_mesh is None:
            return {}
        nodes = [n for n, v in self.cache.nodes.items() if v.obj.state == NodeState.ready]

        async def one(node: str) -> tuple[str, CountSample | None]:
            try:
                counts = await read_mesh(node)
            except CorralError as err:
                log.info("no mesh figures from node %s: %s", node, err)
                return node, None
            return node, CountSample(self.clock(), counts.get(name, 0))

        read = await asyncio.gather(*(one(node) for node in nodes))
        return {node: sample for node, sample in read if sample is not None}

    async def _write(self, name: str, decision: AutoscaleDecision) -> None:
        def edit(found: Versioned[Service] | None) -> Service:
            if found is None:
                raise LookupError(name)
            service = found.obj
            if service.spec.replicas != decision.current or not _autoscaled(service):
                return service  # changed since the sample (a user's scale, an update): decide again next time
            last = service.autoscale_status
            scaling = decision.desired != decision.current
            if not scaling and last is not None and decision.time - last.time < STATUS_REFRESH:
                return service
            changed = scaled(service, decision.desired, decision.time) if scaling else service
            return changed.model_copy(update={"autoscale_status": decision})

        try:
            await put_with_retry(
                self.store, self.cache, keys.service_key(name), lambda: self.cache.services.get(name), edit, f"service {name}"
            )
        except LookupError:
            return  # removed since the sample
        if decision.desired != decision.current:
            log.warning("autoscaled %s: %s", name, decision.reason)


def _autoscaled(service: Service) -> bool:
    return service.spec.autoscale is not None and service.spec.mode == ServiceMode.replicated


def mesh_reader(ctx: ManagerContext) -> ReadMesh:
    """Each node's mesh connections per service, from its agent over the manager's node streams."""

    async def read(node: str) -> Mapping[str, int]:
        if ctx.node_streams is None:
            raise NodeUnreachable("this manager reaches no agents (it runs without the cluster CA)")
        found = ctx.cache.nodes.get(node)
        if found is None or found.obj.agent_port is None:
            return {}  # gone, or a node without a listener (a hollow one) and so without a mesh
        return await read_connections(ctx.node_streams, found.obj)

    return read


def cpu_reader(ctx: ManagerContext) -> ReadCpu:
    """Tasks' CPU seconds from their nodes' agents, over the manager's node streams."""

    async def read(task: Task) -> float | None:
        if ctx.node_streams is None:
            raise NodeUnreachable("this manager reaches no agents (it runs without the cluster CA)")
        found = ctx.cache.nodes.get(task.node or "")
        if found is None:
            return None
        figures = await read_stats(ctx.node_streams, found.obj, task)
        value = figures.get("cpu_seconds") if figures else None
        return float(value) if isinstance(value, (int, float)) else None

    return read
