"""Streaming a request body into an upload, and reading the chunk's Content-Range.

The body is gathered into pieces of about `PIECE` bytes, each appended
(and hashed) in a worker thread while the next piece is received, so memory
stays flat, the event loop never blocks on the disk, and the socket is
never left unread while the disk works. When the client goes away mid-chunk, what arrived
is kept: the upload can be resumed from its reported offset.
"""

import asyncio
import re
from dataclasses import dataclass

from starlette.requests import ClientDisconnect, Request

from corral.registry.errors import RegistryError
from corral.registry.storage import RegistryStorage

PIECE = 4 * 1024 * 1024
CONTENT_RANGE = re.compile(r"(?:bytes[ =])?(\d+)-(\d+)(?:/(?:\d+|\*))?")


@dataclass(frozen=True)
class ContentRange:
    start: int
    end: int  # inclusive

    @property
    def length(self) -> int:
        return self.end - self.start + 1


def parse_content_range(header: str | None, content_length: str | None) -> ContentRange | None:
    """'START-END' (inclusive) -> ContentRange; None without the header; 400 when malformed."""
    if header is None:
        return None
    match = CONTENT_RANGE.fullmatch(header.strip())
    if match is None:
        raise RegistryError("BLOB_UPLOAD_INVALID", f"invalid Content-Range {header!r}: expected START-END", {"Content-Range": header})
    found = ContentRange(int(match.group(1)), int(match.group(2)))
    if found.end < found.start:
        raise RegistryError("BLOB_UPLOAD_INVALID", f"invalid Content-Range {header!r}: END before START", {"Content-Range": header})
    if content_length is not None and content_length.isdigit() and int(content_length) != found.length:
        raise RegistryError(
            "SIZE_INVALID", f"Content-Length {content_length} does not match Content-Range {header!r} ({found.length} bytes)",
            {"Content-Range": header, "Content-Length": content_length},
        )
    return found


async def receive_into(request: Request, storage: RegistryStorage, name: str, upload_id: str, content_range: ContentRange | None) -> int:
    """Append the request body to the upload; returns the upload's new size.

    A chunk whose length differs from its Content-Range is taken back out
    and refused (SIZE_INVALID), leaving the upload as it was.
    """
    start = await asyncio.to_thread(storage.upload_size, name, upload_id)
    size = start
    pieces: list[bytes] = []
    gathered = 0
    # At most one piece is being written while the next one arrives: the disk and the hash (both release the GIL)
    # overlap with reading the socket instead of pausing it, and memory stays at about two pieces.
    writing: asyncio.Future[int] | None = None

    async def written() -> None:
        nonlocal size, writing
        if writing is not None:
            size = await asyncio.shield(writing)  # cancelled or not, the write in its thread goes on to the end
            writing = None

    async def flush() -> None:
        nonlocal pieces, gathered, writing
        await written()
        if pieces:
            piece, pieces, gathered = pieces, [], 0
            writing = asyncio.ensure_future(asyncio.to_thread(storage.append, name, upload_id, piece))

    try:
        async for chunk in request.stream():
            pieces.append(chunk)
            gathered += len(chunk)
            if gathered >= PIECE:
                await flush()
    except ClientDisconnect:
        await flush()
        await written()
        raise
    except BaseException:
        if writing is not None:
            await asyncio.wait([writing])  # never leave a write running behind a failed request
        raise
    await flush()
    await written()
    if content_range is not None and size - start != content_range.length:
        await asyncio.to_thread(storage.truncate, name, upload_id, start)
        raise RegistryError(
            "SIZE_INVALID", f"chunk has {size - start} bytes but Content-Range says {content_range.length}: chunk discarded",
            {"received": size - start},
        )
    return size
