"""Every answer of a manager whose cache may be stale says so: the `X-Corral-Stale` header, with the reason.

A manager cut off from a healthy etcd keeps answering reads from its cache (as it does while etcd has no quorum);
the header tells a client that what it read may be old, and `corral manager ls` (manager/managers.py) shows such
a manager as not healthy. The header goes on from the moment the cache's watch is judged stalled until the cache
has listed the store again (`cache.StateCache.stale`). Headers only: bodies pass untouched, streams too.
"""

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from corral.manager.cache import StateCache
from corral.model.headers import STALE_HEADER


class MarkStale:
    def __init__(self, app: ASGIApp, cache: StateCache) -> None:
        self.app = app
        self.cache = cache

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_marked(message: Message) -> None:
            stale = self.cache.stale
            if message["type"] == "http.response.start" and stale is not None:
                reason = stale.encode("latin-1", "replace")[:500].replace(b"\r", b" ").replace(b"\n", b" ")
                message = {**message, "headers": [*message.get("headers", []), (STALE_HEADER.lower().encode(), reason)]}
            await send(message)

        await self.app(scope, receive, send_marked)
