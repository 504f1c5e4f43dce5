"""The agent's one protocol with the manager, for a lone node or a fleet of thousands.

A node registers itself (`POST /v1/agent/register`, see daemon.py); all the
rest goes through its process's `ManagerLink`, which speaks for every node
of the process at once, over one pooled connection, through the manager's
batched routes. A lone agent is a fleet of one: one path to test and to
make fast.

- heartbeats (`POST /v1/agent/heartbeats`): the nodes are split in groups,
  one call per group, the groups spread over the heartbeat interval (no
  thundering herd); a node the manager does not know registers again (all
  of the group when the credential is refused: the store was reset), a
  node it had marked down and now hears from again starts over;
- tasks (`POST /v1/agent/watch`): one long poll for every node, answered
  with only what changed on each node since the revision it last saw (its
  whole list when that revision is 0). A node that must start over (it
  registered again) asks from 0; a `410 Gone` (the revisions asked were
  compacted away) makes every node start over;
- status reports (`POST /v1/agent/status`): sent together when several are
  ready within `report_window`; a newer report of a task replaces one not
  sent yet (the manager only ever takes a task forward, so the newest says
  it all).

Tuning differs with the count (`LinkSettings.lone()`: no batching window,
so a lone agent reacts at once), the path does not.
"""

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from corral.agent.clock import SYSTEM_CLOCK, Backoff, Clock, wait_event
from corral.agent.reconcile import Report
from corral.client import ApiError, ManagerClient
from corral.model import Task
from corral.model.task import SharedSpecs

log = logging.getLogger(__name__)

Json = dict[str, Any]


@dataclass(frozen=True)
class LinkSettings:
    heartbeat_groups: int = 10  # heartbeat calls per interval, each for 1/groups of the nodes
    report_window: float = 0.05  # how long a ready status report waits for others to go with it
    report_batch: int = 1000  # at most this many reports per call (the manager handles a call in one go)
    watch_interval: float = 0.5  # least time between two watch calls (changes in between come together)

    @classmethod
    def lone(cls) -> "LinkSettings":
        """For one node: nothing to batch with, so nothing waits."""
        return cls(heartbeat_groups=1, report_window=0.0, watch_interval=0.0)


class LinkedNode(Protocol):
    """What the link needs of a node (daemon.Agent)."""

    @property
    def name(self) -> str: ...

    def take_changes(self, full: bool, tasks: list[Task], removed: list[str]) -> None: ...

    async def rejoin(self) -> None: ...


class ReportBatcher:
    """Status reports of many nodes, sent together; `send` returns the manager's result for one report."""

    def __init__(self, client: ManagerClient, window: float, batch: int, clock: Clock) -> None:
        self.client = client
        self.window = window
        self.batch = batch
        self.clock = clock
        self._pending: dict[str, tuple[Json, list[asyncio.Future[Json]]]] = {}  # by task id
        self._ready = asyncio.Event()

    async def send(self, node: str, report: Report) -> Json:
        body = {
            "node": node,
            "task_id": report.task_id,
            "state": report.state.value,
            "container_id": report.container_id,
            "error": report.error,
            "exit_code": report.exit_code,
            "ports": [p.model_dump() for p in report.ports],
        }
        future: asyncio.Future[Json] = asyncio.get_running_loop().create_future()
        queued = self._pending.get(report.task_id)
        self._pending[report.task_id] = (body, [*queued[1], future] if queued else [future])
        self._ready.set()
        return await future

    async def run(self) -> None:
        while True:
            await self._ready.wait()
            if self.window > 0:
                await self.clock.sleep(self.window)
            while self._pending:
                await self._flush()
            self._ready.clear()

    async def _flush(self) -> None:
        ids = list(self._pending)[: self.batch]
        taken = [self._pending.pop(task_id) for task_id in ids]
        began = time.perf_counter()
        try:
            reply = await self.client.request("POST", "/v1/agent/status", json_body={"reports": [b for b, _ in taken]})
            log.debug("link: %d status reports sent in %.3fs", len(taken), time.perf_counter() - began)
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


class ManagerLink:
    """Heartbeats, the task watch and status reports of every node of this process."""

    def __init__(
        self,
        client: ManagerClient,
        long_poll: float,
        settings: LinkSettings | None = None,
        clock: Clock = SYSTEM_CLOCK,
        heartbeat_timeout: float = 3.0,
    ) -> None:
        """`heartbeat_timeout`: a heartbeat not answered by then is given up (the next goes on a fresh try)."""
        self.client = client
        self.long_poll = long_poll
        self.heartbeat_timeout = heartbeat_timeout
        self.settings = settings or LinkSettings()
        self.clock = clock
        self.reports = ReportBatcher(client, self.settings.report_window, self.settings.report_batch, clock)
        self.specs = SharedSpecs()  # the nodes read their tasks sharing one spec per service version
        self.heartbeat_interval = 1.0  # the manager's, from a registration
        self.nodes: dict[str, LinkedNode] = {}
        self._seen: dict[str, int] = {}  # node -> the revision of its tasks it has seen (0: none, send all)
        self._watch_call: asyncio.Future[Json] | None = None
        self._restart = asyncio.Event()  # set by start_over: ends a back-off wait of the watch
        self._loops: list[asyncio.Task[None]] = []

    def attach(self, node: LinkedNode) -> None:
        """Speak for `node` from now on; its first watch answer is its whole task list."""
        self.nodes[node.name] = node
        self.start_over(node.name)

    def detach(self, name: str) -> None:
        """No more heartbeats, watches or reports for `name` (its machine died, or it stopped)."""
        self.nodes.pop(name, None)
        self._seen.pop(name, None)

    def start_over(self, *names: str) -> None:
        """The next watch sends these nodes (all of them when none is named) their whole task list."""
        for name in names or list(self.nodes):
            if name in self.nodes:
                self._seen[name] = 0
        self._restart.set()
        if self._watch_call is not None:  # a long poll already out does not name them so: ask again now
            self._watch_call.cancel()

    def start(self) -> None:
        self._loops = [
            asyncio.create_task(self.reports.run(), name="link reports"),
            asyncio.create_task(self._heartbeat_loop(), name="link heartbeats"),
            asyncio.create_task(self._watch_loop(), name="link watch"),
        ]

    async def stop(self) -> None:
        for loop in self._loops:
            loop.cancel()
        await asyncio.gather(*self._loops, return_exceptions=True)
        self._loops = []

    async def send(self, node: str, report: Report) -> Json:
        """The manager's result for one report: {"status": 200, "state": ...} or {"status": 404 | 409, "error": ...}."""
        return await self.reports.send(node, report)

    # -- heartbeats

    async def _heartbeat_loop(self) -> None:
        while True:
            names = list(self.nodes)
            groups = max(1, min(self.settings.heartbeat_groups, len(names)))
            for group in range(groups):
                await self.heartbeat(names[group::groups])
                await self.clock.sleep(self.heartbeat_interval / groups)

    async def heartbeat(self, names: list[str]) -> None:
        """Renew the leases of `names`. The nodes the manager does not know (removed, store reset) join
        again; those it had marked down (`recovered`: their tasks were replaced) list their tasks afresh."""
        if not names:
            return
        try:
            reply = await self.client.request(
                "POST", "/v1/agent/heartbeats", json_body={"nodes": names}, timeout=self.heartbeat_timeout
            )
        except ApiError as err:
            log.warning("link: heartbeat failed: %s", err)
            if err.status == 401:  # no node holds this process's credential any more (store reset)
                await self._rejoin(names)
            return
        await self._rejoin(reply["unknown"])
        recovered = [name for name in reply.get("recovered", ()) if name in self.nodes]
        if recovered:
            # (the long poll under way may sit on a connection a partition broke: start_over asks anew)
            log.warning("link: %s ready again after being down: listing their tasks afresh", ", ".join(recovered[:5]))
            self.start_over(*recovered)

    async def _rejoin(self, names: list[str]) -> None:
        for name in names:
            node = self.nodes.get(name)
            if node is not None:
                await node.rejoin()

    # -- the task watch

    async def _watch_loop(self) -> None:
        backoff = Backoff(self.clock)
        while True:
            began = self.clock.now()
            self._restart.clear()
            seen = {name: self._seen.get(name, 0) for name in self.nodes}
            try:
                reply = await self._ask(seen)
            except ApiError as err:
                if err.status == 410:  # the revisions asked were compacted away: every node re-lists
                    log.warning("link: %s; every node takes its whole task list again", err)
                    self.start_over()
                    continue
                log.warning("link: cannot fetch tasks: %s", err)
                await wait_event(self.clock, self._restart, backoff.next())  # (a node that joins again asks at once)
                continue
            if reply is None:
                continue  # start_over cancelled the call: ask again at once
            backoff.reset()
            self.take(reply, seen)
            pause = self.settings.watch_interval - (self.clock.now() - began)
            if pause > 0 and not reply.get("more"):  # (more: the manager held changes back: fetch them now)
                await self.clock.sleep(pause)

    async def _ask(self, seen: dict[str, int]) -> Json | None:
        """One watch call (ApiError when it fails); None when `start_over` cancelled it."""
        call: asyncio.Future[Json] = asyncio.ensure_future(
            self.client.request("POST", "/v1/agent/watch", json_body={"after": seen, "wait": self.long_poll})
        )
        self._watch_call = call
        try:
            await asyncio.wait({call})
        finally:
            self._watch_call = None
            call.cancel()  # (done already, unless this loop is being stopped)
        return None if call.cancelled() else call.result()

    def take(self, reply: Json, seen: dict[str, int]) -> None:
        """Hand each node its entry of a watch reply; remember the revision it has now seen."""
        read: Callable[[Json], Task] = self.specs.task
        for name, entry in reply["nodes"].items():
            node = self.nodes.get(name)
            if node is None or self._seen.get(name) != seen.get(name):
                continue  # gone, or started over since the call went out: the next answer is its
            node.take_changes(entry["full"], [read(raw) for raw in entry["tasks"]], entry["removed"])
            self._seen[name] = int(entry["revision"])
