"""Sending blobs (sending.py) and writing files durably (durable.py)."""

import asyncio
import os
from pathlib import Path

import httpx
import pytest
from starlette.types import Message

from corral.registry import RegistryStorage
from corral.registry.durable import start_writeback, touch
from corral.registry.references import parse_digest
from corral.registry.sending import PIECE, BlobResponse
from tests.registry.registry_helpers import push_blob, sha256


def test_a_blob_of_several_pieces_comes_back_whole_and_head_has_only_headers(client: httpx.Client) -> None:
    data = os.urandom(2 * PIECE + 12345)
    digest = push_blob(client, "app", data)
    got = client.get(f"/v2/app/blobs/{digest}")
    assert got.status_code == 200 and got.content == data
    assert got.headers["Content-Length"] == str(len(data)) and got.headers["Docker-Content-Digest"] == digest
    head = client.head(f"/v2/app/blobs/{digest}")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["Content-Length"] == str(len(data)) and head.headers["Docker-Content-Digest"] == digest
    tail = client.get(f"/v2/app/blobs/{digest}", headers={"Range": f"bytes={2 * PIECE}-"})  # a resumed pull
    assert tail.status_code == 206 and tail.content == data[2 * PIECE:]


def test_empty_blob_is_one_empty_body(client: httpx.Client) -> None:
    digest = push_blob(client, "app", b"")
    got = client.get(f"/v2/app/blobs/{digest}")
    assert got.status_code == 200 and got.content == b"" and got.headers["Content-Length"] == "0"


def test_reading_stops_when_the_client_disconnects(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    storage = RegistryStorage(tmp_path)
    data = os.urandom(3 * PIECE)
    upload_id = storage.start_upload("app")
    storage.append("app", upload_id, data)
    storage.complete_upload("app", upload_id, parse_digest(sha256(data)))
    path, stat = storage.blob_file("app", parse_digest(sha256(data)))
    reads: list[int] = []
    real_pread = os.pread

    def counting_pread(fd: int, length: int, offset: int) -> bytes:
        reads.append(offset)
        return real_pread(fd, length, offset)

    monkeypatch.setattr(os, "pread", counting_pread)
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "headers": []}
    asyncio.run(BlobResponse(path, stat_result=stat)(scope, receive, send))
    assert sent[0]["type"] == "http.response.start"
    bodies = [message for message in sent if message["type"] == "http.response.body"]
    assert len(reads) < 3 and len(bodies) < 3, "kept reading after the client left"
    assert all(message["more_body"] for message in bodies)


def test_touch_makes_an_empty_file_once(tmp_path: Path) -> None:
    marker = tmp_path / "a" / "b" / "marker"
    touch(marker)
    assert marker.read_bytes() == b""
    marker.write_bytes(b"kept")  # touching again changes nothing
    touch(marker)
    assert marker.read_bytes() == b"kept"


def test_start_writeback_leaves_the_bytes_as_written(tmp_path: Path) -> None:
    path = tmp_path / "data"
    with path.open("wb") as out:
        out.write(b"x" * 10000)
        out.flush()
        start_writeback(out.fileno(), 0, 10000)
        start_writeback(out.fileno(), 10000, 0)
    assert path.read_bytes() == b"x" * 10000
