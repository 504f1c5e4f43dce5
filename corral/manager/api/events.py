"""/v1/events: a live stream (NDJSON) of what the cluster does."""

import json
from collections.abc import AsyncIterator

from fastapi import APIRouter, Depends
from fastapi.responses import StreamingResponse

from corral.manager.api.deps import context
from corral.manager.context import ManagerContext
from corral.manager.events import describe

router = APIRouter(prefix="/v1/events", tags=["events"])


@router.get("")
async def events(since: int | None = None, ctx: ManagerContext = Depends(context)) -> StreamingResponse:
    """Events after revision `since` (default: from now on), one JSON object per line."""
    start = ctx.cache.revision if since is None else since

    async def lines() -> AsyncIterator[bytes]:
        yield b""  # send the headers now, so a client knows it is connected
        async for change in ctx.store.watch("", start):
            event = describe(change)
            if event is not None:
                yield (json.dumps(event.model_dump()) + "\n").encode()

    return StreamingResponse(lines(), media_type="application/x-ndjson")
