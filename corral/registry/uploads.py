"""Streaming a request body into an upload, and reading the chunk's Content-Range.

The body is gathered into pieces of at most `PIECE` bytes, each appended
(and hashed) in a worker thread, so memory stays flat and the event loop
never blocks on the disk. When the client goes away mid-chunk, what arrived
is kept: the upload can be resumed from its reported offset.
"""

import re
from dataclasses import dataclass

import anyio.to_thread
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
    start = await anyio.to_thread.run_sync(storage.upload_size, name, upload_id)
    size = start
    piece = bytearray()

    async def flush() -> None:
        nonlocal size, piece
        if piece:
            size = await anyio.to_thread.run_sync(storage.append, name, upload_id, bytes(piece))
            piece = bytearray()

    try:
        async for chunk in request.stream():
            piece += chunk
            if len(piece) >= PIECE:
                await flush()
    except ClientDisconnect:
        await flush()
        raise
    await flush()
    if content_range is not None and size - start != content_range.length:
        await anyio.to_thread.run_sync(storage.truncate, name, upload_id, start)
        raise RegistryError(
            "SIZE_INVALID", f"chunk has {size - start} bytes but Content-Range says {content_range.length}: chunk discarded",
            {"received": size - start},
        )
    return size
