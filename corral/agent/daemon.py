"""The agent's loops: register, heartbeat, follow assigned tasks, reconcile the engine.

The agent keeps no state of its own: the tasks come from the manager, the
containers from the engine (found by their labels), so an agent restarted
at any moment adopts the containers it started and carries on. When the
manager is away the containers keep running; the agent retries quietly.
"""

import asyncio
import hashlib
import logging
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from corral.agent.engines.base import ContainerInfo, Engine, EngineError
from corral.agent.engines.hollow import HollowEngine, HollowTiming
from corral.agent.health import HealthMonitor
from corral.agent.mesh import Mesh, MeshSettings
from corral.agent.probes import probe_for
from corral.agent.routing import MeshFollower
from corral.agent.vips import VipInterface
from corral.agent.reconcile import Report, Stop, describe_stop, plan
from corral.agent.secrets import task_files
from corral.agent.settings import AgentSettings
from corral.client import ApiError, ManagerClient
from corral.model import Resources, Task, TaskState
from corral.model.service import HealthCheck
from corral.model.task import DesiredState

log = logging.getLogger(__name__)


def machine_resources() -> Resources:
    pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return Resources(cpus=float(os.cpu_count() or 1), memory=int(pages))


@dataclass
class Registration:
    cluster_id: str
    heartbeat_interval: float


class Agent:
    def __init__(
        self, settings: AgentSettings, engine_factory: Callable[[str, str], Engine], client: ManagerClient | None = None
    ) -> None:
        """`client`: a client shared with other agents of this process (a fleet); it is theirs to close."""
        self.settings = settings
        self._owns_client = client is None
        # The client carries the node's credential once registered; the join token is sent only to register.
        self.client = client or ManagerClient(settings.manager_url, timeout=settings.long_poll + 10)
        self._engine_factory = engine_factory
        self.engine: Engine | None = None
        self.tasks: dict[str, Task] = {}
        self._tasks_revision = 0
        self._full_list = False  # the next look at the manager's tasks takes the whole list (see `resync`)
        self._wake = asyncio.Event()
        self._busy: set[str] = set()
        self._inflight: set[asyncio.Task[None]] = set()
        self._health: dict[str, HealthMonitor] = {}
        self.mesh: Mesh | None = None
        self.routing: MeshFollower | None = None
        self._loops: list[asyncio.Task[None]] = []
        self._watch_task: asyncio.Task[None] | None = None
        self.registered = asyncio.Event()

    @property
    def prefix(self) -> str:
        return f"agent {self.settings.name}"

    async def register(self) -> Registration:
        """Register with the manager; raises ApiError at once for a wrong token.

        The reply's node credential goes on every later call of the client; a client that holds one
        already (an earlier registration, another node of the fleet) presents it and keeps it.
        """
        settings = self.settings
        body = {
            "name": settings.name,
            "address": settings.address,
            "resources": (settings.resources or machine_resources()).model_dump(),
            "labels": settings.labels,
            "engine": settings.engine,
            "credential": self.client.token,
        }
        reply = await self.client.request("POST", "/v1/agent/register", json_body=body, token=settings.token)
        if reply["credential"] != self.client.token:
            self.client.use_token(reply["credential"])
        return Registration(reply["cluster_id"], float(reply["heartbeat_interval"]))

    async def start(self) -> None:
        registration = await self._register_patiently()
        self.engine = self._engine_factory(registration.cluster_id, self.settings.name)
        self.registered.set()
        if self.settings.mesh and self.settings.engine != "hollow":
            # iptables chains are per node: several agents of a local cluster share one host
            chains = hashlib.sha1(f"{registration.cluster_id}/{self.settings.name}".encode()).hexdigest()[:11]
            self.mesh = Mesh(MeshSettings(cluster=chains, data_path=self.settings.mesh_data_path))
            vip_mesh = Mesh(MeshSettings(cluster=registration.cluster_id, reuse_port=True))
            self.routing = MeshFollower(
                self.client, self.settings.name, self.settings.address, self.mesh, vip_mesh,
                VipInterface(registration.cluster_id), self.settings.long_poll,
            )
            self._loops.append(asyncio.create_task(self.routing.run(), name=f"{self.prefix} mesh"))
        self._watch_task = asyncio.create_task(self._watch_loop(), name=f"{self.prefix} watch")
        self._loops += [
            asyncio.create_task(self._heartbeat_loop(registration.heartbeat_interval), name=f"{self.prefix} heartbeat"),
            self._watch_task,
            asyncio.create_task(self._reconcile_loop(), name=f"{self.prefix} reconcile"),
        ]

    async def stop(self, remove_containers: bool = False) -> None:
        """Stop the loops. Containers keep running unless remove_containers (`corral up` teardown)."""
        for loop in self._loops:
            loop.cancel()
        await asyncio.gather(*self._loops, return_exceptions=True)
        for monitor in self._health.values():
            monitor.cancel()
        for op in list(self._inflight):
            op.cancel()
        await asyncio.gather(*self._inflight, return_exceptions=True)
        if self.routing is not None:
            await self.routing.close(remove_vips=remove_containers)
        if self.engine is not None:
            if remove_containers:
                for container in await self.engine.list():
                    await self.engine.remove(container.id)
            await self.engine.close()
        if self._owns_client:
            await self.client.close()

    async def _register_patiently(self, attempts: int = 30) -> Registration:
        """Register; a refusal (wrong token, bad request) raises at once, a busy or unreachable manager is retried."""
        for _ in range(attempts - 1):
            try:
                return await self.register()
            except ApiError as err:
                if 0 < err.status < 500 and err.status != 409:
                    raise
                log.warning("%s: cannot register yet (%s); retrying", self.prefix, err)
                await asyncio.sleep(1.0)
        return await self.register()

    def resync(self) -> None:
        """The node was down and is back (a partition, a stop, a manager that could not listen): the
        manager replaced its tasks meanwhile. List them afresh: the lost ones' containers are stopped
        and removed (`reconcile.plan`), the others adopted as they run."""
        log.warning("%s: the node is ready again after being down: listing its tasks afresh", self.prefix)
        self._full_list = True
        self._wake.set()
        watching = self._watch_task
        if watching is not None and not watching.done():
            # The long poll under way may sit on a connection the partition broke: ask again now.
            watching.cancel()
            self._watch_task = asyncio.create_task(self._watch_loop(), name=f"{self.prefix} watch")
            self._loops = [self._watch_task if loop is watching else loop for loop in self._loops]

    def take_full_list(self) -> bool:
        """Whether the next look at the tasks must take the whole list (once per `resync`)."""
        full, self._full_list = self._full_list, False
        return full

    async def _heartbeat_loop(self, interval: float) -> None:
        while True:
            try:
                reply = await self.client.request(
                    "POST", f"/v1/agent/{self.settings.name}/heartbeat", timeout=self.settings.heartbeat_timeout
                )
                if reply.get("recovered"):
                    self.resync()
            except ApiError as err:
                if err.status in (401, 404):  # the manager forgot us (node removed, store reset): join again
                    await self._reregister()
                else:
                    log.warning("%s: heartbeat failed: %s", self.prefix, err)
            await asyncio.sleep(interval)

    async def _reregister(self) -> None:
        try:
            await self.register()
        except ApiError as err:
            log.warning("%s: re-registration failed: %s", self.prefix, err)

    async def _watch_loop(self) -> None:
        """Long-poll the manager for this node's tasks; every answer is the whole list."""
        while True:
            after = 0 if self.take_full_list() else self._tasks_revision
            try:
                reply = await self.client.get(f"/v1/agent/{self.settings.name}/tasks", after=after, wait=self.settings.long_poll)
            except ApiError as err:
                log.warning("%s: cannot fetch tasks: %s", self.prefix, err)
                await asyncio.sleep(1.0)
                continue
            self.tasks = {t["id"]: Task.model_validate(t) for t in reply["tasks"]}
            self._tasks_revision = int(reply["revision"])
            self._wake.set()

    async def _reconcile_loop(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self.reconcile_once()
            except EngineError as err:
                log.warning("%s: %s", self.prefix, err)
            except Exception:
                log.exception("%s: reconcile failed", self.prefix)
            try:
                await asyncio.wait_for(self._wake.wait(), self.settings.poll_interval)
            except TimeoutError:
                pass

    async def reconcile_once(self) -> None:
        assert self.engine is not None
        # An operation that finishes while the engine is being listed is not
        # in that list yet: treat it as still in flight for this round.
        busy_before = set(self._busy)
        containers = await self.engine.list()
        tasks = list(self.tasks.values())
        self._watch_health(tasks, containers)
        health = {task_id: monitor.view() for task_id, monitor in self._health.items()}
        actions = plan(tasks, containers, busy_before | self._busy, health)
        for report in actions.report:
            await self._report(report)
        for task in actions.start:
            self._launch(task.id, self._start(task))
        for stop in actions.stop:
            self._launch(stop.task.id, self._stop(stop))
        for container in actions.remove:
            self._launch(container.id, self._remove(container))

    def _watch_health(self, tasks: list[Task], containers: list[ContainerInfo]) -> None:
        """One health monitor per running container whose task has a check, and no other."""
        assert self.engine is not None
        by_task = {c.task_id: c for c in containers if c.running}
        wanted: dict[str, tuple[ContainerInfo, HealthCheck]] = {}
        for task in tasks:
            container = by_task.get(task.id)
            check = task.spec.healthcheck
            if container and check and task.desired_state == DesiredState.running and not task.terminal:
                wanted[task.id] = (container, check)
        for task_id, monitor in list(self._health.items()):
            if task_id not in wanted or wanted[task_id][0].id != monitor.container_id:
                monitor.cancel()
                del self._health[task_id]
        for task_id, (container, check) in wanted.items():
            if task_id not in self._health:
                monitor = HealthMonitor(container.id, check, probe_for(check, self.engine, container), self._wake.set)
                monitor.start()
                self._health[task_id] = monitor

    def _launch(self, key: str, work: Awaitable[None]) -> None:
        self._busy.add(key)

        async def run() -> None:
            try:
                await work
            finally:
                self._busy.discard(key)
                self._wake.set()

        op = asyncio.create_task(run())
        self._inflight.add(op)
        op.add_done_callback(self._inflight.discard)

    async def _start(self, task: Task) -> None:
        assert self.engine is not None
        if task.state != TaskState.starting:
            await self._report(Report(task.id, TaskState.starting))
        try:
            files = await task_files(self.client, self.settings.name, task) if self.engine.takes_files else []
            info = await self.engine.start(task, self.settings.address, await self._hosts(task), files)
        except EngineError as err:
            state = TaskState.rejected if err.permanent else TaskState.failed
            await self._report(Report(task.id, state, error=str(err)))
            return
        if info.running:
            # With a health check the task stays `starting` until it passes (the reconcile loop decides).
            state = TaskState.starting if task.spec.healthcheck else TaskState.running
            await self._report(Report(task.id, state, info.id, ports=tuple(info.ports)))

    async def _hosts(self, task: Task) -> dict[str, str]:
        """The names of the other services of the task's stack, for its /etc/hosts (once the mesh is known)."""
        if self.routing is None:
            return {}
        try:
            await asyncio.wait_for(self.routing.synced.wait(), 5.0)
        except TimeoutError:
            log.warning("%s: starting %s before the mesh routes are known: no service names", self.prefix, task.id)
        return self.routing.hosts(task.stack)

    async def _stop(self, stop: Stop) -> None:
        assert self.engine is not None
        task, container = stop.task, stop.container
        grace = task.spec.stop_grace_period
        if _on_the_mesh(task):
            # The manager dropped it from the endpoints when it decided to stop it; give every
            # node's proxy a moment to let go before the container goes away.
            await asyncio.sleep(self.settings.drain_delay)
        began = time.monotonic()
        info = await self.engine.stop(container.id, grace)
        ending = describe_stop(info.exit_code, grace, time.monotonic() - began)
        error = stop.error or "; ".join(part for part in (task.error, ending) if part)
        await self._report(Report(task.id, stop.state, container.id, error=error, exit_code=info.exit_code))

    async def _remove(self, container: ContainerInfo) -> None:
        assert self.engine is not None
        await self.engine.remove(container.id)

    async def _report(self, report: Report) -> None:
        body = {
            "state": report.state.value,
            "container_id": report.container_id,
            "error": report.error,
            "exit_code": report.exit_code,
            "ports": [p.model_dump() for p in report.ports],
        }
        try:
            reply = await self.client.request(
                "PUT", f"/v1/agent/{self.settings.name}/tasks/{report.task_id}/status", json_body=body
            )
            self.tasks[report.task_id] = Task.model_validate(reply)
        except ApiError as err:
            if err.status == 404:
                self.tasks.pop(report.task_id, None)
            else:
                log.warning("%s: cannot report task %s: %s", self.prefix, report.task_id, err)


def _on_the_mesh(task: Task) -> bool:
    """A running task with ports is an endpoint: of its published ports, and of its service's VIP."""
    return task.state == TaskState.running and bool(task.spec.ports)


class EngineFactory:
    """Makes the engine once the cluster id is known (it goes into container labels)."""

    KINDS = ("docker", "hollow")

    def __init__(self, kind: str, hollow_timing: HollowTiming | None = None, secrets_dir: Path | None = None) -> None:
        """`secrets_dir`: the tmpfs where the Docker engine keeps containers' secrets and configs."""
        if kind not in self.KINDS:
            raise EngineError(f"unknown engine {kind!r}: expected one of {', '.join(self.KINDS)}", permanent=True)
        self.kind = kind
        self.hollow_timing = hollow_timing
        self.secrets_dir = secrets_dir

    def __call__(self, cluster_id: str, node: str) -> Engine:
        if self.kind == "hollow":
            return HollowEngine(node, self.hollow_timing or HollowTiming())
        from corral.agent.engines.docker import DockerEngine
        from corral.agent.engines.files import DEFAULT_ROOT

        return DockerEngine(cluster_id, node, files_root=self.secrets_dir or DEFAULT_ROOT)
