"""Users' requests before agents' batch work.

During a large deploy the event loop is busy with what thousands of nodes send
(watch replies, status batches). Kubernetes puts node traffic in its own
priority level (API Priority and Fairness) so that it cannot crowd out users;
here a batch of many nodes' work waits, up to `LIMIT`, while a user's request
is being answered: parsing its body, working out and writing its status
reports, building a watch reply, and sending the answer back (`CountUserRequests`
holds an agent's answer until no user's request is in flight). The cache does
not stop: users' writes wait for it (read-your-writes), so making it wait for
them would slow them down; it applies fewer changes between two turns of the
event loop while users wait (`busy`, cache.py). Long-lived requests (event
streams, `?watch=true`, logs, exec) do not count: they would hold the agents
back for as long as they are open.

Work in worker threads steps aside too: a thread running Python shares the GIL
with the loop in 1 ms slices, so a user's request answered meanwhile gets about
half of the interpreter. The status plans sleep while a user's request is in
flight (`step_aside`), and the controller waits for users' turn before each
piece of its thread work and each write (`Controller.users_turn`).
"""

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from starlette.types import ASGIApp, Message, Receive, Scope, Send

LIMIT = 0.1  # seconds an agents' batch waits at most for users' requests to finish
NAP = 0.001  # seconds a worker thread sleeps at a time while it steps aside for users' requests


@dataclass
class UsersFirst:
    in_flight: int = 0
    idle: asyncio.Event = field(default_factory=asyncio.Event)
    clock: Callable[[], float] = time.monotonic  # for `step_aside`, in a worker thread
    nap: Callable[[float], None] = time.sleep

    def __post_init__(self) -> None:
        self.idle.set()

    def started(self) -> None:
        self.in_flight += 1
        self.idle.clear()

    def finished(self) -> None:
        self.in_flight -= 1
        if self.in_flight == 0:
            self.idle.set()

    def busy(self) -> bool:
        """Whether a user's request is in flight now."""
        return self.in_flight > 0

    async def wait_turn(self, limit: float = LIMIT) -> None:
        """Let the event loop run other work, then wait (at most `limit`) until no user request is in flight.

        Checked again when woken: the batches woken by one request's end run one after the other, and a
        request that came in meanwhile sends the later ones back to wait (within the same limit)."""
        await asyncio.sleep(0)
        if not self.in_flight:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit
        while self.in_flight and (left := deadline - loop.time()) > 0:
            try:
                async with asyncio.timeout(left):
                    await self.idle.wait()
            except TimeoutError:
                return

    def step_aside(self, limit: float = LIMIT) -> None:
        """For agents' work in a worker thread, called between two pieces of it: while a user's request is
        in flight, sleep (at most `limit`), so that the event loop answering it holds the GIL alone instead
        of sharing it in 1 ms slices (runtime.SWITCH_INTERVAL) with this thread."""
        if not self.in_flight:
            return
        deadline = self.clock() + limit
        while self.in_flight and self.clock() < deadline:
            self.nap(NAP)


def _agents(scope: Scope) -> bool:
    """An agent's call (heartbeats, watch, status, mesh): its answer waits for users' requests."""
    return scope["type"] == "http" and str(scope.get("path", "")).startswith("/v1/agent/")


def _counted(scope: Scope) -> bool:
    path: str = scope.get("path", "")
    if scope["type"] != "http" or _agents(scope) or path == "/v1/events":
        return False
    if path.endswith(("/logs", "/exec")):  # log streams and command runs last as long as their reader wants
        return False
    return b"watch=true" not in scope.get("query_string", b"")


class CountUserRequests:
    """ASGI middleware: keeps `UsersFirst.in_flight` for the requests that are not agents' or streams, and
    holds an agent's answer (encrypted and written on the event loop: a watch reply is about 1,000 tasks)
    until no user's request is in flight, at most `LIMIT`."""

    def __init__(self, app: ASGIApp, users: UsersFirst) -> None:
        self.app = app
        self.users = users

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if _agents(scope):
            await self.app(scope, receive, self._after_users(send))
            return
        if not _counted(scope):
            await self.app(scope, receive, send)
            return
        self.users.started()
        try:
            await self.app(scope, receive, send)
        finally:
            self.users.finished()

    def _after_users(self, send: Send) -> Send:
        async def send_after_users(message: Message) -> None:
            if message["type"] == "http.response.start":
                await self.users.wait_turn()
            await send(message)

        return send_after_users
