"""A bound on request bodies, enforced while they arrive.

A body is read up to `max_bytes` before the route sees it; past that the
request is answered 413 at once, whether or not it declared a
Content-Length (a declared one over the bound is refused before a byte of
the body is read). Routes then read the body from memory, as FastAPI would
have anyway. After a 413 the server reads and drops the rest of the body,
so that a client which sends it all before reading (httpx, the CLI) still
gets the answer; a declared length of more than CLOSE_OVER times the bound
is not waited for: the connection is closed. The registry's blob uploads are served by another app and are
streamed to disk; they are not bounded here.
"""

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send


CLOSE_OVER = 16


class LimitRequestBody:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            if not declared.isdigit():
                await self._refuse(scope, receive, send, "invalid Content-Length", close=True)
            else:
                await self._refuse(scope, receive, send, close=int(declared) > CLOSE_OVER * self.max_bytes)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        await self.app(scope, _replay(b"".join(chunks), receive), send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, problem: str | None = None, close: bool = False) -> None:
        status = 400 if problem is not None else 413
        error = problem or f"the request body is larger than {self.max_bytes} bytes (the manager's --max-request-bytes)"
        headers = {"Connection": "close"} if close else None
        await JSONResponse({"error": error, "path": None}, status_code=status, headers=headers)(scope, receive, send)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that hands the app the body already read, then waits on the real one (for a disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay
