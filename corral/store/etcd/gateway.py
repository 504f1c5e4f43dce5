"""etcd v3's JSON gateway (`/v3/...`, served by every etcd >= 3.4 on its client port) spoken over httpx.

Why the gateway and not a gRPC client: Debian's etcd 3.4 serves it on the client URL, it needs no grpc
build or generated code, and httpx is already the one HTTP client of the project (async, pooled,
streaming for watches). The Python gRPC clients were weighed (python-etcd3: unmaintained since 2020 and
breaks with protobuf 4; aetcd and etcd-sdk-python: small, grpcio-based): the gateway gives the same
calls (Range, Txn, Watch, Compact, Lease) with fewer moving parts.

This module knows the wire only: endpoints (tried in turn when one does not answer), base64 keys and
values, int64 fields sent as strings, and etcd's errors turned into corral's (`TooLarge`,
`StoreUnavailable`). What the calls mean for the store is in `store.py`.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson

from corral.model.errors import StoreUnavailable, TooLarge

log = logging.getLogger(__name__)

# etcd's gRPC status codes that mean "try later / elsewhere" (Unavailable, DeadlineExceeded).
_UNAVAILABLE_CODES = {4, 14}
_TOO_LARGE = ("request is too large", "too many operations", "larger than max")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def unb64(text: str) -> bytes:
    return base64.b64decode(text)


def prefix_end(prefix: bytes) -> bytes:
    """etcd's range_end for every key starting with prefix (the prefix with its last byte raised)."""
    end = bytearray(prefix)
    while end:
        if end[-1] < 0xFF:
            end[-1] += 1
            return bytes(end)
        end.pop()
    return b"\0"  # every key


class Unanswered(StoreUnavailable):
    """A request was sent (or may have been) and no answer came: a write may or may not have been applied."""


class Gateway:
    """The etcd cluster's client URLs; a call goes to the one that answered last, and moves on when it does not answer."""

    def __init__(self, endpoints: list[str], timeout: float = 5.0) -> None:
        if not endpoints:
            raise ValueError("no etcd endpoint")
        self.endpoints = endpoints
        self._current = 0
        self._client = httpx.AsyncClient(timeout=httpx.Timeout(timeout, connect=1.0), limits=httpx.Limits(max_connections=64))

    async def call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST one request; an endpoint that cannot be reached is skipped (nothing was sent to it).

        A request sent but not answered (the member died meanwhile) is not repeated elsewhere: a write may
        or may not have been applied, and the caller hears so (StoreUnavailable)."""
        content = orjson.dumps(body)
        failures: list[str] = []
        for attempt in range(len(self.endpoints)):
            at = (self._current + attempt) % len(self.endpoints)
            try:
                reply = await self._client.post(f"{self.endpoints[at]}{path}", content=content)
            except (httpx.ConnectError, httpx.ConnectTimeout) as err:
                failures.append(f"{self.endpoints[at]}: {err or type(err).__name__}")
                continue
            except httpx.TransportError as err:
                self._current = (at + 1) % len(self.endpoints)  # the next call tries another member
                raise Unanswered(
                    f"etcd at {self.endpoints[at]} did not answer {path} ({err or type(err).__name__}); a write may or may not"
                    " have been applied: read it back before retrying"
                ) from err
            self._current = at
            found: dict[str, Any] = orjson.loads(reply.content) if reply.content else {}
            if reply.status_code != 200:
                raise _error(path, reply.status_code, found)
            return found
        raise StoreUnavailable(f"no etcd member answers ({'; '.join(failures)}); nothing was changed")

    async def stream(self, path: str, body: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """A streaming call (Watch): each message of the reply as it arrives."""
        content = orjson.dumps(body)
        failures: list[str] = []
        for attempt in range(len(self.endpoints)):
            at = (self._current + attempt) % len(self.endpoints)
            try:
                async with self._client.stream(
                    "POST", f"{self.endpoints[at]}{path}", content=content, timeout=httpx.Timeout(None, connect=1.0)
                ) as reply:
                    self._current = at
                    if reply.status_code != 200:
                        raise _error(path, reply.status_code, orjson.loads(await reply.aread() or b"{}"))
                    async for line in reply.aiter_lines():
                        if line.strip():
                            message: dict[str, Any] = orjson.loads(line)
                            if "error" in message:
                                raise _error(path, 200, message["error"])
                            yield message.get("result", {})
                    return
            except (httpx.ConnectError, httpx.ConnectTimeout) as err:
                failures.append(f"{self.endpoints[at]}: {err or type(err).__name__}")
                continue
            except httpx.TransportError as err:
                raise StoreUnavailable(f"etcd at {self.endpoints[at]} ended the {path} stream: {err or type(err).__name__}") from err
        raise StoreUnavailable(f"no etcd member answers ({'; '.join(failures)})")

    async def close(self) -> None:
        await self._client.aclose()


def _error(path: str, status: int, body: dict[str, Any]) -> Exception:
    message = str(body.get("message") or body.get("error") or body or f"HTTP {status}")
    code = body.get("code") or body.get("grpc_code")
    if any(part in message for part in _TOO_LARGE) or status == 413:
        return TooLarge(f"the store refused the write as too large ({message}); nothing was changed")
    if code in _UNAVAILABLE_CODES or status in (503, 504) or "no leader" in message or "timed out" in message:
        return StoreUnavailable(f"the store cannot take requests now ({message}); nothing is known to have changed")
    return RuntimeError(f"etcd {path}: {message}")
