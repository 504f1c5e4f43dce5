"""etcd v3's JSON gateway (`/v3/...`, served by every etcd >= 3.4 on its client port) spoken over httpx.

Why the gateway and not a gRPC client: Debian's etcd 3.4 serves it on the client URL, it needs no grpc
build or generated code, and httpx is already the one HTTP client of the project (async, pooled,
streaming for watches). The Python gRPC clients were weighed (python-etcd3: unmaintained since 2020 and
breaks with protobuf 4; aetcd and etcd-sdk-python: small, grpcio-based): the gateway gives the same
calls (Range, Txn, Watch, Compact, Lease) with fewer moving parts.

This module knows the wire only: endpoints (tried in turn when one does not answer), base64 keys and
values, int64 fields sent as strings, and etcd's errors turned into corral's (`TooLarge`,
`StoreUnavailable`). What the calls mean for the store is in `store.py`.

Every call asks etcd to refuse it at once when the member has no leader (the gRPC metadata `hasleader`, sent
through the gateway as the `Grpc-Metadata-hasleader` header), rather than hold it until its request timeout: a
member cut off from the majority, or all members once quorum is lost, answer "no leader" immediately, and a watch
on such a member is cancelled instead of going quiet. A refused call was not proposed to raft, so it is tried on
the other members and again for NO_LEADER_WAIT seconds (an etcd election takes about one election timeout)
before the caller hears that the store has no quorum.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import ssl
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any

import httpx
import orjson

from corral.model.errors import StoreUnavailable, TooLarge

log = logging.getLogger(__name__)

REQUIRE_LEADER = {"Grpc-Metadata-hasleader": "true"}  # etcd's rpctypes.MetadataRequireLeaderKey = MetadataHasLeader
NO_LEADER_WAIT = 3.0  # seconds a call refused for want of an etcd leader is tried again before "no quorum"
NO_LEADER_RETRY = 0.1
# etcd's gRPC status codes that mean "try later / elsewhere" (Unavailable, DeadlineExceeded).
_UNAVAILABLE_CODES = {4, 14}
_TLS_REFUSALS = ("CERTIFICATE", "HANDSHAKE", "UNKNOWN_CA")  # in an ssl.SSLError's reason: a TLS peer refused us (or we it)
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


class TlsRefused(StoreUnavailable):
    """The TLS handshake with an etcd member failed (its certificate not of our CA, or ours refused): nothing was sent."""


def _tls_error(endpoint: str, err: BaseException) -> TlsRefused | None:
    """A TlsRefused naming the TLS failure, when `err` comes from one (the request never reached etcd)."""
    if isinstance(err, httpx.TimeoutException):
        return None
    cause: BaseException | None = err
    while cause is not None and not isinstance(cause, ssl.SSLError):
        cause = cause.__cause__ or cause.__context__
    # Only a refusal of certificates: an EOF or a read cut short by TLS is a member that went away mid-request.
    reason = str(getattr(cause, "reason", "") or "")
    if cause is None or not any(word in reason for word in _TLS_REFUSALS):
        return None
    return TlsRefused(
        f"etcd at {endpoint} refused the TLS connection ({reason}): the store URL's"
        " cacert must be the CA that signed etcd's certificates, and cert/key a client certificate of it; nothing was changed"
    )


class NoQuorum(StoreUnavailable):
    """No etcd member has a leader: a majority of the members is gone or cut off. Nothing was changed."""


class Gateway:
    """The etcd cluster's client URLs; a call goes to the one that answered last, and moves on when it does not answer."""

    def __init__(
        self, endpoints: list[str], timeout: float = 5.0, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        if not endpoints:
            raise ValueError("no etcd endpoint")
        self.endpoints = endpoints
        self._current = 0
        self._sleep = sleep
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout, connect=1.0), limits=httpx.Limits(max_connections=64), headers=REQUIRE_LEADER,
            verify=verify,  # https:// endpoints: the etcd CA and the client certificate (`tls.py`)
        )

    async def call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST one request (see `_call_once`); refused for want of an etcd leader everywhere: tried again for
        NO_LEADER_WAIT seconds, then `NoQuorum`."""
        waits = round(NO_LEADER_WAIT / NO_LEADER_RETRY)
        for wait in range(waits + 1):
            try:
                return await self._call_once(path, body)
            except NoQuorum:
                if wait == waits:
                    raise
            await self._sleep(NO_LEADER_RETRY)
        raise AssertionError("unreachable")

    async def check(self, path: str, body: dict[str, Any], deadline: float) -> dict[str, Any] | None:
        """One request that must be answered within `deadline` seconds (no retry for want of a leader): its reply,
        or None. For reads that ask whether etcd is still there (`watch_check.py`)."""
        try:
            return await asyncio.wait_for(self._call_once(path, body), deadline)
        except (StoreUnavailable, TimeoutError):
            return None

    async def _call_once(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST one request; an endpoint that cannot be reached, or that has no leader, is skipped (nothing was
        proposed by it).

        A request sent but not answered (the member died meanwhile) is not repeated elsewhere: a write may
        or may not have been applied, and the caller hears so (StoreUnavailable)."""
        content = orjson.dumps(body)
        failures: list[str] = []
        no_leader = 0
        for attempt in range(len(self.endpoints)):
            at = (self._current + attempt) % len(self.endpoints)
            try:
                reply = await self._client.post(f"{self.endpoints[at]}{path}", content=content)
            except (httpx.ConnectError, httpx.ConnectTimeout) as err:
                failures.append(f"{self.endpoints[at]}: {err or type(err).__name__}")
                continue
            except httpx.TransportError as err:
                refused = _tls_error(self.endpoints[at], err)
                if refused is not None:
                    raise refused from err
                self._current = (at + 1) % len(self.endpoints)  # the next call tries another member
                raise Unanswered(
                    f"etcd at {self.endpoints[at]} did not answer {path} ({err or type(err).__name__}); a write may or may not"
                    " have been applied: read it back before retrying"
                ) from err
            self._current = at
            found: dict[str, Any] = orjson.loads(reply.content) if reply.content else {}
            if reply.status_code != 200:
                error = _error(path, reply.status_code, found)
                if isinstance(error, NoQuorum):
                    failures.append(f"{self.endpoints[at]}: no leader")
                    no_leader += 1
                    continue
                raise error
            return found
        if no_leader:
            raise NoQuorum(
                f"the store has no quorum: {no_leader} of {len(self.endpoints)} etcd members answer that they have no leader"
                f" ({'; '.join(failures)}), a majority of the members is down or cut off; nothing was changed"
            )
        raise StoreUnavailable(f"no etcd member answers ({'; '.join(failures)}); nothing was changed")

    async def stream(self, path: str, body: dict[str, Any]) -> AsyncGenerator[dict[str, Any], None]:
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
                raise _tls_error(self.endpoints[at], err) or StoreUnavailable(f"etcd at {self.endpoints[at]} ended the {path} stream: {err or type(err).__name__}") from err
        raise StoreUnavailable(f"no etcd member answers ({'; '.join(failures)})")

    async def close(self) -> None:
        try:
            await self._client.aclose()
        except (ssl.SSLError, OSError) as err:  # closing a connection etcd refused (a TLS alert) can fail too: it is gone
            log.debug("closing the etcd client: %s", err)


def _error(path: str, status: int, body: dict[str, Any]) -> Exception:
    message = str(body.get("message") or body.get("error") or body or f"HTTP {status}")
    code = body.get("code") or body.get("grpc_code")
    if any(part in message for part in _TOO_LARGE) or status == 413:
        return TooLarge(f"the store refused the write as too large ({message}); nothing was changed")
    if "no leader" in message:
        return NoQuorum(f"the store has no quorum: etcd has no leader ({message}); nothing was changed")
    if code in _UNAVAILABLE_CODES or status in (503, 504) or "timed out" in message:
        return StoreUnavailable(f"the store cannot take requests now ({message}); nothing is known to have changed")
    return RuntimeError(f"etcd {path}: {message}")
