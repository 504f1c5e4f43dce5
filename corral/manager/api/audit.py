"""The audit trail: every write a token makes becomes an event naming the token (`corral events`).

An ASGI middleware, so it sees the status the route answered: when a write
(POST, PUT, PATCH, DELETE) that `auth.authorize` let through answers, it
stores `audit/last` = {actor, role, method, path, status, time} before the
answer leaves, and events.py turns each version of that key into an event.
One key overwritten, not one per write: the history the store keeps (and
compacts) is the trail, and nothing grows without bound. The agents'
routes are not audited (no token: node identity; their writes are the
tasks' own states, already events).
"""

import logging
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from corral.manager import keys
from corral.manager.access.roles import WRITE
from corral.manager.access.tokens import TokenRecord
from corral.manager.context import ManagerContext

log = logging.getLogger(__name__)


def audit_record(caller: TokenRecord, method: str, path: str, status: int, now: float) -> dict[str, Any]:
    return {"actor": caller.name, "token_id": caller.id, "role": caller.role.value, "method": method, "path": path,
            "status": status, "time": now}


class AuditWrites:
    def __init__(self, app: ASGIApp, ctx: ManagerContext) -> None:
        self.app = app
        self.ctx = ctx

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in WRITE:
            await self.app(scope, receive, send)
            return
        state: dict[str, Any] = scope.setdefault("state", {})  # auth.authorize puts the caller here (request.state)

        async def send_after_audit(message: Message) -> None:
            caller = state.get("caller")
            if message["type"] == "http.response.start" and isinstance(caller, TokenRecord):
                record = audit_record(caller, scope["method"], scope["path"], message["status"], self.ctx.clock())
                try:
                    await self.ctx.store.put(keys.AUDIT, record)
                except Exception:  # noqa: BLE001 - the write itself is done: answer it, say the trail missed it
                    log.exception("audit: could not record %s %s by %s", scope["method"], scope["path"], caller.name)
            await send(message)

        await self.app(scope, receive, send_after_audit)
