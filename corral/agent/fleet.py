"""Many agents in one process: a fleet of nodes (hollow ones, for scale tests, as kubemark does).

Each node is a `FleetAgent`: an `Agent` that registers itself and reconciles
its own engine exactly as a lone agent does. What would cost the most with
thousands of nodes in one process, a heartbeat, a long poll and a status
report per node each over HTTP, is done by the fleet for all its nodes at
once over one shared connection pool, through the batched routes of the
manager (`/v1/agent/heartbeats`, `/v1/agent/watch`, `/v1/agent/status`):

- heartbeats: the nodes are split in groups, one call per group, the groups
  spread over the heartbeat interval (no thundering herd);
- tasks: one long poll for every node, answered with only what changed on
  each node since it last looked;
- status reports: queued for a few milliseconds and sent together; a newer
  report of a task replaces one not sent yet (the manager only ever takes a
  task forward, so the newest says it all).
"""

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from corral.agent.daemon import Agent, EngineFactory
from corral.agent.engines.base import Engine
from corral.agent.reconcile import Report
from corral.agent.settings import AgentSettings
from corral.client import ApiError, ManagerClient
from corral.model import Task, TaskState
from corral.model.task import SharedSpecs

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FleetSettings:
    count: int
    name_prefix: str
    register_concurrency: int = 32  # registrations in flight at once
    heartbeat_groups: int = 10  # heartbeat calls per interval, each for 1/groups of the nodes
    report_interval: float = 0.05  # how long a status report may wait to be sent with others
    report_batch: int = 1000  # at most this many reports per call (the manager handles a call in one go)
    watch_interval: float = 0.5  # least time between two watch calls (changes in between come together)

    def __post_init__(self) -> None:
        if self.count < 1:
            raise ValueError(f"a fleet needs at least one node, not {self.count}")
        if not self.name_prefix:
            raise ValueError("a fleet needs a name prefix for its nodes")

    def names(self) -> list[str]:
        return [f"{self.name_prefix}{i}" for i in range(1, self.count + 1)]


class FleetAgent(Agent):
    """One node of a fleet: its own registration, engine and reconcile loop; the fleet does the rest."""

    def __init__(self, settings: AgentSettings, engine_factory: Callable[[str, str], Engine], fleet: "Fleet") -> None:
        super().__init__(settings, engine_factory, client=fleet.client)
        self.fleet = fleet

    async def start(self) -> None:
        registration = await self.register()
        self.engine = self._engine_factory(registration.cluster_id, self.settings.name)
        self.fleet.heartbeat_interval = registration.heartbeat_interval
        self.registered.set()
        self._loops = [asyncio.create_task(self._reconcile_loop(), name=f"{self.prefix} reconcile")]

    def take_changes(self, full: bool, tasks: list[dict[str, Any]], removed: list[str]) -> None:
        """Apply one node's entry of a watch reply: the whole list, or what changed.

        The manager does not send a node's own reports back to it (see `_report`, which keeps
        the reply), so every entry here is news.
        """
        read = self.fleet.specs.task
        if full:
            self.tasks = {t["id"]: read(t) for t in tasks}
        else:
            for raw in tasks:
                self.tasks[raw["id"]] = read(raw)
            for task_id in removed:
                self.tasks.pop(task_id, None)
        self._wake.set()

    async def _report(self, report: Report) -> None:
        try:
            result = await self.fleet.reports.send(self.settings.name, report)
        except ApiError as err:
            log.warning("%s: cannot report task %s: %s", self.prefix, report.task_id, err)
            return
        task = self.tasks.get(report.task_id)
        if result["status"] == 404:
            self.tasks.pop(report.task_id, None)
        elif result["status"] != 200:
            log.warning("%s: cannot report task %s: %s", self.prefix, report.task_id, result.get("error"))
        elif task is not None:
            # What the manager now holds, until the watch brings the stored copy.
            update: dict[str, object] = {"state": TaskState(result["state"])}
            if result["state"] == report.state.value:
                update.update(error=report.error, exit_code=report.exit_code)
                if report.container_id:
                    update["container_id"] = report.container_id
                if report.ports:
                    update["ports"] = list(report.ports)
            self.tasks[report.task_id] = task.model_copy(update=update)


class ReportBatcher:
    """Status reports of many nodes, sent together; `send` returns the manager's result for one report."""

    def __init__(self, client: ManagerClient, interval: float, batch: int) -> None:
        self.client = client
        self.interval = interval
        self.batch = batch
        self._pending: dict[str, tuple[dict[str, Any], list[asyncio.Future[dict[str, Any]]]]] = {}  # by task id

    async def send(self, node: str, report: Report) -> dict[str, Any]:
        body = {
            "node": node,
            "task_id": report.task_id,
            "state": report.state.value,
            "container_id": report.container_id,
            "error": report.error,
            "exit_code": report.exit_code,
            "ports": [p.model_dump() for p in report.ports],
        }
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        queued = self._pending.get(report.task_id)
        if queued is None:
            self._pending[report.task_id] = (body, [future])
        else:
            self._pending[report.task_id] = (body, [*queued[1], future])
        return await future

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            while self._pending:
                await self._flush()

    async def _flush(self) -> None:
        ids = list(self._pending)[: self.batch]
        taken = [self._pending.pop(task_id) for task_id in ids]
        began = time.perf_counter()
        try:
            reply = await self.client.request("POST", "/v1/agent/status", json_body={"reports": [b for b, _ in taken]})
            log.debug("fleet: %d status reports sent in %.3fs", len(taken), time.perf_counter() - began)
        except ApiError as err:
            for _, futures in taken:
                for future in futures:
                    if not future.done():
                        future.set_exception(err)
            return
        for (_, futures), result in zip(taken, reply["results"]):
            for future in futures:
                if not future.done():
                    future.set_result(result)


class Fleet:
    def __init__(
        self,
        template: AgentSettings,
        settings: FleetSettings,
        engine_factory: Callable[[str, str], Engine] | EngineFactory,
    ) -> None:
        self.settings = settings
        self.template = template
        # Its nodes share one credential: the first registration gets it, the others keep it (see `start`).
        self.client = ManagerClient(template.manager_url, timeout=template.long_poll + 30)
        self.reports = ReportBatcher(self.client, settings.report_interval, settings.report_batch)
        self.specs = SharedSpecs()  # the fleet's nodes read their tasks sharing one spec per service version
        self.heartbeat_interval = 1.0
        self.agents = [FleetAgent(replace(template, name=name), engine_factory, self) for name in settings.names()]
        self._by_name = {agent.settings.name: agent for agent in self.agents}
        self._loops: list[asyncio.Task[None]] = []
        self._watch_task: asyncio.Task[None] | None = None
        self._after: dict[str, int] = {}  # node -> the revision of its tasks last seen

    async def start(self) -> None:
        """Register every node (raises the first ApiError: wrong token, bad name...), then run the fleet's loops."""
        limit = asyncio.Semaphore(self.settings.register_concurrency)

        async def start_one(agent: FleetAgent) -> None:
            async with limit:
                await agent.start()

        self._loops = [asyncio.create_task(self.reports.run(), name="fleet reports")]
        await self.agents[0].start()  # alone: it brings the credential the others then present
        results = await asyncio.gather(*(start_one(agent) for agent in self.agents[1:]), return_exceptions=True)
        failed = [r for r in results if isinstance(r, BaseException)]
        if failed:
            raise failed[0]
        self._watch_task = asyncio.create_task(self._watch_loop(), name="fleet watch")
        self._loops += [asyncio.create_task(self._heartbeat_loop(), name="fleet heartbeats"), self._watch_task]

    async def stop(self) -> None:
        for loop in self._loops:
            loop.cancel()
        await asyncio.gather(*self._loops, return_exceptions=True)
        await asyncio.gather(*(agent.stop() for agent in self.agents), return_exceptions=True)
        await self.client.close()

    def agent(self, name: str) -> FleetAgent:
        return self._by_name[name]

    async def stop_node(self, name: str) -> None:
        """Stop one node as if its machine died: no more heartbeats, watches or reports for it."""
        agent = self._by_name.pop(name)
        await agent.stop()

    async def _heartbeat_loop(self) -> None:
        groups = max(1, min(self.settings.heartbeat_groups, len(self._by_name)))
        while True:
            names = list(self._by_name)
            for group in range(groups):
                try:
                    reply = await self.client.request(
                        "POST", "/v1/agent/heartbeats", json_body={"nodes": names[group::groups]},
                        timeout=self.template.heartbeat_timeout,
                    )
                    for name in reply["unknown"]:  # the manager forgot them (node removed, store reset)
                        if name in self._by_name:
                            await self._by_name[name]._reregister()
                    recovered = [name for name in reply.get("recovered", ()) if name in self._by_name]
                    for name in recovered:  # down until now: their tasks were replaced
                        self._by_name[name].resync()
                    if recovered:
                        self._restart_watch()
                except ApiError as err:
                    log.warning("fleet: heartbeat failed: %s", err)
                    if err.status == 401:  # no node holds the fleet's credential any more (store reset): join again
                        for name in names[group::groups]:
                            if name in self._by_name:
                                await self._by_name[name]._reregister()
                await asyncio.sleep(self.heartbeat_interval / groups)

    def _restart_watch(self) -> None:
        """Some nodes recovered: the long poll under way may sit on a connection a partition broke."""
        watching = self._watch_task
        if watching is not None and not watching.done():
            watching.cancel()
            self._watch_task = asyncio.create_task(self._watch_loop(), name="fleet watch")
            self._loops = [self._watch_task if loop is watching else loop for loop in self._loops]

    async def _watch_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            began = loop.time()
            self._after = after = {
                name: 0 if agent.take_full_list() else self._after.get(name, 0) for name, agent in self._by_name.items()
            }
            try:
                reply = await self.client.request(
                    "POST", "/v1/agent/watch", json_body={"after": after, "wait": self.template.long_poll}
                )
            except ApiError as err:
                log.warning("fleet: cannot fetch tasks: %s", err)
                await asyncio.sleep(1.0)
                continue
            log.debug("fleet: watch answered in %.3fs with %d nodes, %d tasks", loop.time() - began, len(reply["nodes"]),
                      sum(len(e["tasks"]) for e in reply["nodes"].values()))
            for name, entry in reply["nodes"].items():
                agent = self._by_name.get(name)
                if agent is not None:
                    agent.take_changes(entry["full"], entry["tasks"], entry["removed"])
                    after[name] = int(entry["revision"])
            if not reply.get("more"):  # the manager held some changes back: fetch them now
                await asyncio.sleep(max(0.0, self.settings.watch_interval - (loop.time() - began)))
