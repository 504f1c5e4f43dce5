"""One node's agent: register, follow its tasks, make its engine run exactly those.

The agent keeps no state of its own: the tasks come from the manager, the
containers from the engine (found by their labels), so an agent restarted
at any moment adopts the containers it started and carries on. When the
manager is away the containers keep running; the agent retries quietly.

Heartbeats, the watch of its tasks and its status reports go through a
`ManagerLink` (link.py): its own when it runs alone, a fleet's when it is
one of many nodes in a process (fleet.py). The protocol is the same.
"""

import asyncio
import hashlib
import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from corral.agent.clock import SYSTEM_CLOCK, Backoff, Clock, wait_event
from corral.agent.engines.base import ContainerInfo, Engine, EngineError
from corral.agent.engines.hollow import HollowEngine, HollowTiming
from corral.agent.health import HealthMonitor
from corral.agent.link import LinkSettings, ManagerLink
from corral.agent.mesh import Mesh, MeshCounters, MeshSettings
from corral.agent.mesh_metrics import ServicePort, by_service
from corral.agent.metrics import AgentMetrics, metrics_app
from corral.agent.probes import probe_for
from corral.agent.routing import MeshFollower
from corral.agent.vips import VipInterface
from corral.agent.volumes import VolumeRemover
from corral.agent.reconcile import Report, Stop, describe_stop, plan
from corral.agent.secrets import task_files
from corral.agent.settings import AgentSettings
from corral.agent.identity import NodeIdentity
from corral.client import ApiError, ManagerClient
from corral.model import Resources, Task, TaskState
from corral.model.service import HealthCheck
from corral.model.task import DesiredState

if TYPE_CHECKING:  # imported where used: an agent of hollow nodes serves no listener and keeps no networks
    from starlette.applications import Starlette

    from corral.agent.networks.keeper import NetworkKeeper
    from corral.agent.node_listener import NodeListener

log = logging.getLogger(__name__)

EngineMaker = Callable[[str, str], Engine]  # (cluster id, node name) -> engine


def machine_resources() -> Resources:
    pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return Resources(cpus=float(os.cpu_count() or 1), memory=int(pages))


@dataclass
class Registration:
    cluster_id: str
    heartbeat_interval: float
    registry: str | None = None  # HOST:PORT of the cluster's registry: pulled from with the node's credential
    registries: tuple[str, ...] = ()  # HOST:PORT of every manager's registry (several managers): they hold the same images


class Agent:
    def __init__(
        self, settings: AgentSettings, engine_factory: EngineMaker, link: ManagerLink | None = None, clock: Clock | None = None,
        identity: NodeIdentity | None = None,
    ) -> None:
        """`link`, `identity`: a fleet's, shared with the other nodes of this process (theirs to stop); else the agent's own."""
        self.settings = settings
        self._owns_link = link is None
        # The node's TLS identity: the CA pinned by the join token, its key and certificate (see identity.py).
        self.identity = identity or NodeIdentity(settings.state_dir)
        if link is None:
            # The client carries the node's credential once registered; the join token is sent only to register.
            client = ManagerClient(settings.manager_url, timeout=settings.long_poll + 30, verify=self.identity.context)
            link = ManagerLink(client, settings.long_poll, LinkSettings.lone(), clock or SYSTEM_CLOCK, settings.heartbeat_timeout)
        self.link = link
        self.client = link.client
        self.clock = clock or link.clock
        self._engine_factory = engine_factory
        self.engine: Engine | None = None
        self.tasks: dict[str, Task] = {}
        self._wake = asyncio.Event()
        self._retry_soon = False  # the last round failed somewhere: look again on the fast timer, not the resync
        # Set by the first whole task list: until then an empty `tasks` means "not known yet", not
        # "none", and a reconcile would remove every container this node runs (an agent restarted).
        self.listed = asyncio.Event()
        self._busy: set[str] = set()
        self._inflight: set[asyncio.Task[None]] = set()
        self._health: dict[str, HealthMonitor] = {}
        self.mesh: Mesh | None = None
        self.routing: MeshFollower | None = None
        self.keeper: NetworkKeeper | None = None  # DNS responder, per-stack networks, isolation (real engines)
        self._loops: list[asyncio.Task[None]] = []
        self.registered = asyncio.Event()
        self.node_listener: NodeListener | None = None  # where the manager reaches this node (logs, exec): node_listener.py
        self.metrics = AgentMetrics(settings.name, mesh=self.mesh_counters)
        self.metrics_listener: NodeListener | None = None  # /metrics for Prometheus (metrics.py)

    def _engine_changed(self) -> None:
        """The engine told of a change of one of this node's containers: reconcile, and bring the networks in line."""
        self._wake.set()
        if self.keeper is not None:
            self.keeper.wake()

    def mesh_counters(self) -> dict[ServicePort, MeshCounters]:
        """What this node's mesh has carried per service port (none before the routes are known)."""
        return self.routing.counters() if self.routing is not None else {}

    @property
    def name(self) -> str:
        return self.settings.name

    @property
    def prefix(self) -> str:
        return f"agent {self.settings.name}"

    async def register(self) -> Registration:
        """Register with the manager; raises ApiError at once for a wrong token.

        The reply's node credential goes on every later call of the client; a client that holds one
        already (an earlier registration, another node of the fleet) presents it and keeps it.
        """
        settings = self.settings
        body: dict[str, Any] = {
            "name": settings.name,
            "address": settings.address,
            "resources": (settings.resources or machine_resources()).model_dump(),
            "labels": settings.labels,
            "engine": settings.engine,
            "credential": self.client.token,
        }
        if self.node_listener is not None and settings.manager_url.startswith("https://"):
            body["agent_port"] = self.node_listener.port
        reply = await self._send_registration(body)
        if reply["credential"] != self.client.token:
            self.client.use_token(reply["credential"])
        if reply.get("certificate"):
            await self.identity.install(settings.name, reply["certificate"], self.client)
        return Registration(
            reply["cluster_id"], float(reply["heartbeat_interval"]), reply.get("registry"), tuple(reply.get("registries") or ()),
        )

    async def _send_registration(self, body: dict[str, Any]) -> Any:
        """Over TLS: the manager's CA checked against the join token first, and a certificate request for this node.
        Before the node has a certificate, the call goes on a connection of its own (the client's connections
        must all carry the certificate)."""
        settings, identity = self.settings, self.identity
        await identity.pin(settings.manager_url, settings.token)
        if not identity.wants_certificate(settings.name, settings.manager_url):
            return await self.client.request("POST", "/v1/agent/register", json_body=body, token=settings.token)
        body["csr"] = await identity.request(settings.name)
        if identity.certificate is not None:
            return await self.client.request("POST", "/v1/agent/register", json_body=body, token=settings.token)
        async with ManagerClient(settings.manager_url, timeout=30, verify=identity.join_context()) as joining:
            return await joining.request("POST", "/v1/agent/register", json_body=body, token=settings.token)

    async def start(self) -> None:
        """Register (patiently), then follow the tasks; a lone agent starts its link too (and its node listener)."""
        if self._owns_link and self.settings.node_port is not None and self.settings.engine != "hollow":
            from corral.agent.node_listener import NodeListener  # (uvicorn, starlette: only an agent that serves them)

            self.node_listener = NodeListener(self.settings.address, self.settings.node_port)
        registration = await self._register_patiently()
        self.engine = self._engine_factory(registration.cluster_id, self.settings.name)
        if registration.registry:
            self.engine.use_registry(registration.registry, self.settings.name, lambda: self.client.token, registration.registries)
        self.link.heartbeat_interval = registration.heartbeat_interval
        self.link.attach(self)
        self.registered.set()
        self._loops.append(asyncio.create_task(self.engine.follow(self._engine_changed, self.clock), name=f"{self.prefix} engine events"))
        if self.settings.mesh and self.settings.engine != "hollow":
            # iptables chains are per node: several agents of a local cluster share one host
            chains = hashlib.sha1(f"{registration.cluster_id}/{self.settings.name}".encode()).hexdigest()[:11]
            self.mesh = Mesh(MeshSettings(cluster=chains, data_path=self.settings.mesh_data_path), self.clock)
            vip_mesh = Mesh(MeshSettings(cluster=registration.cluster_id, reuse_port=True), self.clock)
            if self.settings.dns:
                from corral.agent.networks.keeper import keeper_for  # (dnspython)

                self.keeper = keeper_for(self.engine, registration.cluster_id, self.settings.dns_upstreams, self.clock)
            self.routing = MeshFollower(
                self.client, self.settings.name, self.settings.address, self.mesh, vip_mesh,
                VipInterface(registration.cluster_id, self.clock), self.settings.long_poll, self.clock,
                on_names=self._names_changed if self.keeper is not None else None,
            )
            self._loops.append(asyncio.create_task(self.routing.run(), name=f"{self.prefix} mesh"))
            if self.keeper is not None:
                self._loops.append(asyncio.create_task(self.keeper.run(), name=f"{self.prefix} networks"))
        self._loops.append(asyncio.create_task(self._reconcile_loop(), name=f"{self.prefix} reconcile"))
        if self.settings.engine != "hollow":  # a fleet of simulated nodes holds no volumes
            remover = VolumeRemover(self.client, self.name, self.engine, self.clock, self.settings.volume_poll)
            self._loops.append(asyncio.create_task(remover.run(), name=f"{self.prefix} volumes"))
        if self.node_listener is not None and self.identity.certificate is not None and self.identity.ca_pem is not None:
            await self.node_listener.serve(self._node_app, self.identity.cert_file, self.identity.key_file, self.identity.ca_pem)
        await self._serve_metrics()
        if self._owns_link:
            self._loops.append(asyncio.create_task(self.identity.keep_renewed(self.client, self.clock.sleep), name=f"{self.prefix} certificate"))
            self.link.start()

    async def stop(self, remove_containers: bool = False) -> None:
        """Stop the loops. Containers keep running unless remove_containers (`corral up` teardown)."""
        self.link.detach(self.name)
        for listener in (self.node_listener, self.metrics_listener):
            if listener is not None:
                await listener.close()
        if self._owns_link:
            await self.link.stop()
            self.identity.forget_temporary()
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
        if self.keeper is not None:  # after the containers: their networks can go
            await self.keeper.close(remove=remove_containers)
        if self.engine is not None:
            await self.engine.close()
        if self._owns_link:
            await self.client.close()

    async def _serve_metrics(self) -> None:
        """/metrics on the node address; a port already taken is a warning: the node runs on without it."""
        port = self.settings.metrics_port
        if port is None or self.settings.engine == "hollow" or not self._owns_link:
            return
        from corral.agent.node_listener import NodeListener

        try:
            self.metrics_listener = NodeListener(self.settings.address, port, "--metrics-port")
        except OSError as err:
            log.warning("%s: metrics not served: %s", self.prefix, err)
            return
        await self.metrics_listener.serve_plain(self._metrics_app)

    def _node_app(self) -> "Starlette":
        """The node API the manager calls (logs, exec, stats, mesh counters): made at the listener's first connection."""
        from corral.agent.node_api import node_app

        return node_app(lambda: self.engine, self.clock, lambda: by_service(self.mesh_counters()))

    def _metrics_app(self) -> "Starlette":
        """/metrics: made at its listener's first connection (a scrape)."""
        return metrics_app(self.metrics, lambda: self.engine, lambda: self.tasks)

    async def _register_patiently(self) -> Registration:
        """Register; a refusal (wrong token, bad request) raises at once, a busy or unreachable manager
        is retried with back-off for `register_patience` seconds."""
        backoff = Backoff(self.clock)
        give_up = self.clock.now() + self.settings.register_patience
        while True:
            try:
                return await self.register()
            except ApiError as err:
                if (0 < err.status < 500 and err.status != 409) or self.clock.now() >= give_up:
                    raise
                log.warning("%s: cannot register yet (%s); retrying", self.prefix, err)
            await backoff.wait()

    async def rejoin(self) -> None:
        """The manager forgot this node (removed, store reset): register again, and take the whole task list."""
        try:
            await self.register()
        except ApiError as err:
            log.warning("%s: re-registration failed: %s", self.prefix, err)
            return
        self.link.start_over(self.name)

    def take_changes(self, full: bool, tasks: list[Task], removed: list[str]) -> None:
        """Take this node's entry of a watch answer: the whole list, or what changed.

        The manager does not send a node's own reports back to it (see `_report`, which keeps
        what the manager answered), so every entry here is news.
        """
        if full:
            self.tasks = {task.id: task for task in tasks}
            self.listed.set()
        else:
            for task in tasks:
                self.tasks[task.id] = task
            for task_id in removed:
                self.tasks.pop(task_id, None)
        self._wake.set()

    async def _reconcile_loop(self) -> None:
        """One round whenever woken: new tasks, an operation done, a health verdict, an engine event. Without a wake,
        the next round comes after `resync_interval` while the engine tells of every change of its containers, else
        (and after a round that failed) after `poll_interval`."""
        await self.listed.wait()  # no reconcile on the strength of a task list not yet received
        while True:
            self._wake.clear()
            self._retry_soon = False
            try:
                await self.reconcile_once()
            except EngineError as err:
                self._retry_soon = True
                log.warning("%s: %s", self.prefix, err)
            except Exception:
                self._retry_soon = True
                log.exception("%s: reconcile failed", self.prefix)
            await wait_event(self.clock, self._wake, self._next_round())

    def _next_round(self) -> float:
        """Seconds until the containers are listed again if nothing wakes the loop first."""
        assert self.engine is not None
        if self.engine.following and not self._retry_soon:
            return self.settings.resync_interval
        return self.settings.poll_interval

    async def reconcile_once(self) -> None:
        assert self.engine is not None
        # An operation that finishes while the engine is being listed is not
        # in that list yet: treat it as still in flight for this round.
        busy_before = set(self._busy)
        containers = await self.engine.list()
        if self.routing is not None:
            self.routing.containers_listed(containers)
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
                probe = self.metrics.counted_probe(probe_for(check, self.engine, container), self.tasks[task_id].service if task_id in self.tasks else "")
                monitor = HealthMonitor(container.id, check, probe, self._wake.set, self.clock)
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
        # `starting` goes to the manager while the engine works (one round trip off the path to
        # `running`); every later report of the task waits until it has been answered, so they keep their order.
        starting = asyncio.create_task(self._report(Report(task.id, TaskState.starting))) if task.state != TaskState.starting else None
        try:
            files = await task_files(self.client, self.settings.name, task) if self.engine.takes_files else []
            hosts = await self._hosts(task)
            began = self.clock.now()
            info = await self.engine.start(task, self.settings.address, hosts, files)
            self.metrics.start_latency.observe(self.clock.now() - began)
            self.metrics.starts.add("started")
        except EngineError as err:
            self.metrics.starts.add("failed")
            state = TaskState.rejected if err.permanent else TaskState.failed
            await _answered(starting)
            await self._report(Report(task.id, state, error=str(err)))
            return
        await _answered(starting)
        if info.running:
            # With a health check the task stays `starting` until it passes (the reconcile loop decides).
            state = TaskState.starting if task.spec.healthcheck else TaskState.running
            await self._report(Report(task.id, state, info.id, ports=tuple(info.ports)))
        if self.keeper is not None:
            # A new network's bridge gets its rules: they let the container reach its stack's VIPs (until then
            # the catch-all rule rejects that, so nothing is open early). After the report, since they change
            # nothing for the traffic that `running` lets in: the container has been running since the engine
            # started it, and the mesh reaches it from the host, not through these rules.
            await self.keeper.sync()

    async def _hosts(self, task: Task) -> dict[str, str]:
        """The names of the other services of the task's stack, for its /etc/hosts (once the mesh is known);
        none when the node's DNS responder serves them (names then follow changes)."""
        if self.routing is None:
            return {}
        if not await wait_event(self.clock, self.routing.synced, 5.0):
            log.warning("%s: starting %s before the mesh routes are known: no service names", self.prefix, task.id)
        return {} if self.routing.dns else self.routing.hosts(task.stack)

    async def _names_changed(self, names: list[Any], dns: str, service_network: str) -> None:
        assert self.keeper is not None and self.engine is not None
        self.engine.use_dns(dns)
        await self.keeper.update(names, dns, service_network)

    async def _stop(self, stop: Stop) -> None:
        assert self.engine is not None
        task, container = stop.task, stop.container
        grace = task.spec.stop_grace_period
        if _on_the_mesh(task):
            # The manager dropped it from the endpoints when it decided to stop it; give every
            # node's proxy a moment to let go before the container goes away.
            await self.clock.sleep(self.settings.drain_delay)
        began = self.clock.now()
        info = await self.engine.stop(container.id, grace)
        ending = describe_stop(info.exit_code, grace, self.clock.now() - began)
        error = stop.error or "; ".join(part for part in (task.error, ending) if part)
        await self._report(Report(task.id, stop.state, container.id, error=error, exit_code=info.exit_code))

    async def _remove(self, container: ContainerInfo) -> None:
        assert self.engine is not None
        await self.engine.remove(container.id)

    async def _report(self, report: Report) -> None:
        try:
            result = await self.link.send(self.settings.name, report)
        except ApiError as err:
            self._retry_soon = True  # reported again by the next round
            log.warning("%s: cannot report task %s: %s", self.prefix, report.task_id, err)
            return
        task = self.tasks.get(report.task_id)
        if result["status"] == 404:  # no longer this node's (removed, or placed elsewhere)
            self.tasks.pop(report.task_id, None)
        elif result["status"] != 200:
            self._retry_soon = True
            log.warning("%s: cannot report task %s: %s", self.prefix, report.task_id, result.get("error"))
        elif task is not None:
            # What the manager now holds; the watch does not send it back (only what others change).
            update: dict[str, object] = {"state": TaskState(result["state"])}
            if result["state"] == report.state.value:
                update.update(error=report.error, exit_code=report.exit_code)
                if report.container_id:
                    update["container_id"] = report.container_id
                if report.ports:
                    update["ports"] = list(report.ports)
            self.tasks[report.task_id] = task.model_copy(update=update)


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


async def _answered(report: "asyncio.Task[None] | None") -> None:
    """Wait for a report sent ahead (its failure is logged by `_report` itself)."""
    if report is not None:
        await report
