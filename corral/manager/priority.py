"""Users' requests before agents' batch work.

During a large deploy the event loop is busy with what thousands of nodes send
(watch replies, status batches). Kubernetes puts node traffic in its own
priority level (API Priority and Fairness) so that it cannot crowd out users;
here a batch of many nodes' work waits, up to `LIMIT`, while a user's request
is being answered. The cache does not wait: users' requests wait for it
(read-your-writes), so making it wait for them would slow them down. Long-lived requests (event streams, `?watch=true`, logs, exec) do not
count: they would hold the agents back for as long as they are open.
"""

import asyncio
from dataclasses import dataclass, field

from starlette.types import ASGIApp, Receive, Scope, Send

LIMIT = 0.1  # seconds an agents' batch waits at most for users' requests to finish


@dataclass
class UsersFirst:
    in_flight: int = 0
    idle: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.idle.set()

    def started(self) -> None:
        self.in_flight += 1
        self.idle.clear()

    def finished(self) -> None:
        self.in_flight -= 1
        if self.in_flight == 0:
            self.idle.set()

    async def wait_turn(self, limit: float = LIMIT) -> None:
        """Let the event loop run other work, then wait (at most `limit`) until no user request is in flight."""
        await asyncio.sleep(0)
        if self.in_flight:
            try:
                await asyncio.wait_for(self.idle.wait(), limit)
            except TimeoutError:
                pass


def _counted(scope: Scope) -> bool:
    path: str = scope.get("path", "")
    if scope["type"] != "http" or path.startswith("/v1/agent/") or path == "/v1/events":
        return False
    if path.endswith(("/logs", "/exec")):  # log streams and command runs last as long as their reader wants
        return False
    return b"watch=true" not in scope.get("query_string", b"")


class CountUserRequests:
    """ASGI middleware: keeps `UsersFirst.in_flight` for the requests that are not agents' or streams."""

    def __init__(self, app: ASGIApp, users: UsersFirst) -> None:
        self.app = app
        self.users = users

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not _counted(scope):
            await self.app(scope, receive, send)
            return
        self.users.started()
        try:
            await self.app(scope, receive, send)
        finally:
            self.users.finished()
