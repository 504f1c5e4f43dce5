"""Sending a blob: the whole file in large pieces read off the event loop, HEAD from the stat alone.

A pull is one GET of each blob, whole. `BlobResponse` takes the stat the
storage already made (so HEAD and the headers need no more disk access),
and sends the file in 4 MiB pieces, each read with `os.pread` in a worker
thread (`asyncio.to_thread`, not anyio's: nothing on a push or a pull loads
anyio's backend, 40-50 ms of imports on a registry's first request) while
the transport still sends the previous one; it stops reading as soon as the
client disconnects. A request with a Range header
(a resumed pull) goes to Starlette's `FileResponse`, which answers 206, 416
and multipart ranges.
"""

import asyncio
import os
from typing import IO

from starlette.responses import FileResponse
from starlette.types import Receive, Scope, Send

PIECE = 4 * 1024 * 1024


class BlobResponse(FileResponse):
    chunk_size = PIECE  # Starlette's reads for Range requests: fewer, larger sends than its 64 KiB default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        whole = scope["method"] == "GET" and self.stat_result is not None and not _has_range(scope)
        if not whole:
            await super().__call__(scope, receive, send)
            return
        assert self.stat_result is not None
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        gone = asyncio.ensure_future(_disconnect(receive))
        try:
            handle: IO[bytes] = await asyncio.to_thread(open, self.path, "rb")
            try:
                await _send_file(handle.fileno(), self.stat_result.st_size, send, gone)
            finally:
                handle.close()
        finally:
            gone.cancel()


def _has_range(scope: Scope) -> bool:
    return any(name == b"range" for name, _ in scope["headers"])


async def _disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _send_file(fd: int, size: int, send: Send, gone: "asyncio.Future[None]") -> None:
    offset = 0
    while True:
        piece = await asyncio.to_thread(os.pread, fd, PIECE, offset)
        offset += len(piece)
        more = bool(piece) and offset < size
        if gone.done():
            return  # the client went away: stop reading
        await send({"type": "http.response.body", "body": piece, "more_body": more})
        if not more:
            return
