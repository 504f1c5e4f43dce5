"""`GET /metrics` (Prometheus text format, a read: viewer), and the middleware that counts every request by route."""

import time

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from corral.manager.api.deps import context
from corral.manager.context import ManagerContext
from corral.manager.metrics import ManagerMetrics

router = APIRouter(tags=["cluster"])


@router.get("/metrics", response_class=Response, responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}})
async def metrics(request: Request, ctx: ManagerContext = Depends(context)) -> Response:
    """The manager's metrics in the Prometheus text format (see docs/api.md#metrics)."""
    measured: ManagerMetrics = request.app.state.metrics
    return Response(measured.exposition(), media_type=CONTENT_TYPE_LATEST)


class MeasureRequests:
    """Counts each request under its route's template (`/v1/services/{name}`), never its raw path (bounded labels)."""

    def __init__(self, app: ASGIApp, metrics: ManagerMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, note)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            self.metrics.observe(scope["method"], route, status, time.perf_counter() - started)


def install(app: FastAPI, ctx: ManagerContext) -> None:
    """Serve /metrics and measure every request of `app`."""
    if ctx.metrics is None:
        ctx.metrics = ManagerMetrics(ctx.cache)
    app.state.metrics = ctx.metrics
    app.add_middleware(MeasureRequests, metrics=app.state.metrics)
    app.include_router(router)
