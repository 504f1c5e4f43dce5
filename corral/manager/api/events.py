"""/v1/events: a live stream (NDJSON) of what the cluster does."""

import json
import logging
from collections.abc import AsyncIterator

from fastapi import APIRouter, Depends
from fastapi.responses import StreamingResponse

from corral.manager.api.deps import context
from corral.manager.api.openapi import error_responses
from corral.manager.context import ManagerContext
from corral.manager.events import describe
from corral.model.errors import Compacted

router = APIRouter(prefix="/v1/events", tags=["events"])

log = logging.getLogger(__name__)


@router.get("", responses=error_responses(410))
async def events(since: int | None = None, ctx: ManagerContext = Depends(context)) -> StreamingResponse:
    """Events after revision `since` (default: from now on), one JSON object per line.

    410 Gone when `since` has been compacted away (the error names the oldest revision left).
    A stream that fails once started ends with one line `{"error": ..., "path": null}`.
    """
    oldest = await ctx.store.oldest_revision()
    start = max(ctx.cache.revision, oldest) if since is None else since  # "now": a lagging cache is no reason for a 410
    if start < oldest:
        raise Compacted(start, oldest)

    subscribers = ctx.metrics.event_subscribers if ctx.metrics is not None else None

    async def lines() -> AsyncIterator[bytes]:
        yield b""  # send the headers now, so a client knows it is connected
        if subscribers is not None:
            subscribers.inc()
        try:
            async for change in ctx.store.watch("", start):
                event = describe(change)
                if event is not None:
                    yield (json.dumps(event.model_dump()) + "\n").encode()
        except Compacted as err:  # compacted between the check above and the watch's start
            log.info("events stream from %d ended: %s", start, err)
            yield (json.dumps({"error": str(err), "path": None}) + "\n").encode()
        finally:
            if subscribers is not None:
                subscribers.dec()

    return StreamingResponse(lines(), media_type="application/x-ndjson")
