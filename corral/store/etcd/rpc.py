"""etcd v3's gRPC API, spoken with grpcio and the etcd messages that aetcd generates (`aetcd.rpc`).

Why gRPC and not etcd's JSON gateway (`/v3/...` over HTTP, which the first backend spoke through httpx): measured on
one etcd member, a batch of 2,000 puts of 1.3 KB cost etcd 100-140 us of CPU per key through the gateway (its JSON
decoding of base64 values, then the same on the way back for every watcher) and 14-22 us over gRPC, and took 0.21-0.25 s
against 0.04-0.06 s (docs/performance.md, "etcd over gRPC"). aetcd is used for its generated messages only: the calls
below need what its client does not give (every call asking for a member with a leader, moving to another member,
telling a request that may have been applied from one that was never sent).

This module knows the wire only: endpoints (tried in turn when one cannot be reached), TLS, deadlines, and etcd's
errors turned into corral's (`TooLarge`, `NoQuorum`, `Unanswered`, `TlsRefused`, `StoreUnavailable`). What the calls
mean for the store is in `store.py`.

Every call carries the gRPC metadata `hasleader: true` (etcd's `rpctypes.MetadataRequireLeaderKey`): a member
without a leader (cut off from the majority, or all members once quorum is lost) refuses it at once instead of
holding it until its request timeout, and a watch on such a member is cancelled instead of going quiet. A refused
call was not proposed to raft, so it is tried on the other members and again for NO_LEADER_WAIT seconds (an etcd
election takes about one election timeout) before the caller hears that the store has no quorum.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
from aetcd.rpc import rpc_pb2 as pb

from corral.model.errors import InvalidSpec, StoreUnavailable, TooLarge

log = logging.getLogger(__name__)

REQUIRE_LEADER = (("hasleader", "true"),)
NO_LEADER_WAIT = 3.0  # seconds a call refused for want of an etcd leader is tried again before "no quorum"
NO_LEADER_RETRY = 0.1
MAX_MESSAGE = 1 << 30  # a list's page or a watch message can be many MB; etcd bounds what it takes itself
_CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", MAX_MESSAGE),
    ("grpc.max_send_message_length", MAX_MESSAGE),
    ("grpc.enable_retries", 0),  # a retry is decided here and in store.py: a write may have been applied
    # A member that comes back is dialled again within a second (gRPC's default back-off grows to 2 minutes).
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
]
# The calls the store makes: gRPC path -> (request, response) message classes.
_UNARY: dict[str, tuple[Any, Any]] = {
    "/etcdserverpb.KV/Range": (pb.RangeRequest, pb.RangeResponse),
    "/etcdserverpb.KV/Txn": (pb.TxnRequest, pb.TxnResponse),
    "/etcdserverpb.KV/Compact": (pb.CompactionRequest, pb.CompactionResponse),
    "/etcdserverpb.Lease/LeaseGrant": (pb.LeaseGrantRequest, pb.LeaseGrantResponse),
    "/etcdserverpb.Lease/LeaseRevoke": (pb.LeaseRevokeRequest, pb.LeaseRevokeResponse),
}
_STREAMS: dict[str, tuple[Any, Any]] = {
    "/etcdserverpb.Watch/Watch": (pb.WatchRequest, pb.WatchResponse),
    "/etcdserverpb.Lease/LeaseKeepAlive": (pb.LeaseKeepAliveRequest, pb.LeaseKeepAliveResponse),
}
RANGE, TXN, COMPACT = "/etcdserverpb.KV/Range", "/etcdserverpb.KV/Txn", "/etcdserverpb.KV/Compact"
LEASE_GRANT, LEASE_REVOKE = "/etcdserverpb.Lease/LeaseGrant", "/etcdserverpb.Lease/LeaseRevoke"
WATCH, KEEP_ALIVE = "/etcdserverpb.Watch/Watch", "/etcdserverpb.Lease/LeaseKeepAlive"

_TOO_LARGE = ("request is too large", "too many operations", "larger than max")
# In an UNAVAILABLE's details: the connection was never made, so nothing was sent (another member may be tried).
_NOT_CONNECTED = ("failed to connect", "connection refused", "connections to all backends failing", "dns resolution failed")
_TLS = ("ssl", "handshake", "certificate", "tls")


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


class NoQuorum(StoreUnavailable):
    """No etcd member has a leader: a majority of the members is gone or cut off. Nothing was changed."""


def credentials(cacert: str, cert: str, key: str) -> grpc.ChannelCredentials:
    """TLS for the channels: trust `cacert` (the system's CAs when empty), present `cert`/`key` if given. A file that
    cannot be read is an InvalidSpec naming its option (whether it holds a certificate is checked by `tls.py`)."""

    def read(option: str, path: str) -> bytes | None:
        if not path:
            return None
        try:
            return Path(path).read_bytes()
        except OSError as err:
            raise InvalidSpec("store", f"{option} {path}: cannot be read ({err.strerror or err})") from None

    return grpc.ssl_channel_credentials(read("cacert", cacert), read("key", key), read("cert", cert))


class EtcdClient:
    """The etcd cluster's client endpoints (HOST:PORT); a call goes to the one that answered last, and moves on when
    it cannot be reached."""

    def __init__(
        self, endpoints: list[str], tls: grpc.ChannelCredentials | None = None, timeout: float = 5.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if not endpoints:
            raise ValueError("no etcd endpoint")
        self.endpoints = endpoints
        self._tls = tls
        self._timeout = timeout
        self._sleep = sleep
        self._current = 0
        self._channels: dict[int, Any] = {}

    def _channel(self, at: int) -> Any:
        """The channel to endpoint `at`, made on first use (in the event loop that uses it: gRPC's are bound to one)."""
        channel = self._channels.get(at)
        if channel is None:
            target = self.endpoints[at]
            if self._tls is not None:
                channel = grpc.aio.secure_channel(target, self._tls, options=_CHANNEL_OPTIONS)
            else:
                channel = grpc.aio.insecure_channel(target, options=_CHANNEL_OPTIONS)
            self._channels[at] = channel
        return channel

    async def _invoke(self, at: int, method: str, request: Any, timeout: float) -> Any:
        """One unary call to endpoint `at` (tests replace this to play etcd's answers)."""
        request_type, response_type = _UNARY[method]
        call = self._channel(at).unary_unary(
            method, request_serializer=request_type.SerializeToString, response_deserializer=response_type.FromString
        )
        return await call(request, timeout=timeout, metadata=REQUIRE_LEADER)

    async def call(self, method: str, request: Any, timeout: float | None = None) -> Any:
        """One request (see `_call_once`); refused for want of an etcd leader everywhere: tried again for
        NO_LEADER_WAIT seconds, then `NoQuorum`."""
        waits = round(NO_LEADER_WAIT / NO_LEADER_RETRY)
        for wait in range(waits + 1):
            try:
                return await self._call_once(method, request, timeout or self._timeout)
            except NoQuorum:
                if wait == waits:
                    raise
            await self._sleep(NO_LEADER_RETRY)
        raise AssertionError("unreachable")

    async def check(self, method: str, request: Any, deadline: float) -> Any | None:
        """One request that must be answered within `deadline` seconds (no retry for want of a leader): its reply,
        or None. For reads that ask whether etcd is still there (`watch_check.py`)."""
        try:
            return await asyncio.wait_for(self._call_once(method, request, deadline), deadline)
        except (StoreUnavailable, TimeoutError):
            return None

    async def _call_once(self, method: str, request: Any, timeout: float) -> Any:
        """One request; an endpoint that cannot be reached, or that has no leader, is skipped (nothing was proposed
        by it).

        A request sent but not answered (the member died meanwhile, or the deadline passed) is not repeated
        elsewhere: a write may or may not have been applied, and the caller hears so (Unanswered)."""
        failures: list[str] = []
        no_leader = 0
        for attempt in range(len(self.endpoints)):
            at = (self._current + attempt) % len(self.endpoints)
            endpoint = self.endpoints[at]
            try:
                reply = await self._invoke(at, method, request, timeout)
            except grpc.aio.AioRpcError as err:
                details = err.details() or err.code().name
                if _no_leader(err):
                    failures.append(f"{endpoint}: no leader")
                    no_leader += 1
                    continue
                if _not_connected(err):
                    refused = _tls_refused(endpoint, details)
                    if refused is not None:
                        raise refused from None
                    failures.append(f"{endpoint}: {details}")
                    continue
                if err.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED):
                    self._current = (at + 1) % len(self.endpoints)  # the next call tries another member
                    raise Unanswered(
                        f"etcd at {endpoint} did not answer {method} ({details}); a write may or may not"
                        " have been applied: read it back before retrying"
                    ) from None
                raise _error(method, err) from None
            self._current = at
            return reply
        if no_leader:
            raise NoQuorum(
                f"the store has no quorum: {no_leader} of {len(self.endpoints)} etcd members answer that they have no leader"
                f" ({'; '.join(failures)}), a majority of the members is down or cut off; nothing was changed"
            )
        raise StoreUnavailable(f"no etcd member answers ({'; '.join(failures)}); nothing was changed")

    async def stream(self, method: str, request: Any) -> AsyncGenerator[Any, None]:
        """A streaming call (Watch, LeaseKeepAlive): `request` sent, then each message of the reply as it arrives."""
        request_type, response_type = _STREAMS[method]
        failures: list[str] = []
        for attempt in range(len(self.endpoints)):
            at = (self._current + attempt) % len(self.endpoints)
            endpoint = self.endpoints[at]
            call = self._channel(at).stream_stream(
                method, request_serializer=request_type.SerializeToString, response_deserializer=response_type.FromString
            )(metadata=REQUIRE_LEADER)
            answered = False
            try:
                await call.write(request)
                while True:
                    message = await call.read()
                    if message is grpc.aio.EOF:
                        return
                    answered = True
                    self._current = at
                    yield message
            except grpc.aio.AioRpcError as err:
                details = err.details() or err.code().name
                if not answered and (_not_connected(err) or _no_leader(err)):
                    refused = _tls_refused(endpoint, details)
                    if refused is not None:
                        raise refused from None
                    failures.append(f"{endpoint}: {details}")
                    continue
                if err.code() in (grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.INVALID_ARGUMENT):
                    raise _error(method, err) from None
                if _no_leader(err):
                    raise NoQuorum(f"etcd at {endpoint} ended the {method} stream: it has no leader ({details})") from None
                raise StoreUnavailable(f"etcd at {endpoint} ended the {method} stream: {details}") from None
            finally:
                call.cancel()
        raise StoreUnavailable(f"no etcd member answers ({'; '.join(failures)})")

    async def close(self) -> None:
        channels, self._channels = list(self._channels.values()), {}
        for channel in channels:
            try:
                await channel.close()
            except Exception as err:  # closing a channel of a loop that is gone: it is gone with it
                log.debug("closing an etcd channel: %s", err)


def _no_leader(err: grpc.aio.AioRpcError) -> bool:
    return "no leader" in (err.details() or "")


def _not_connected(err: grpc.aio.AioRpcError) -> bool:
    details = (err.details() or "").lower()
    return err.code() == grpc.StatusCode.UNAVAILABLE and any(part in details for part in _NOT_CONNECTED)


def _tls_refused(endpoint: str, details: str) -> TlsRefused | None:
    """A TlsRefused naming the TLS failure, when `details` says the handshake failed (the request never reached etcd)."""
    lowered = details.lower()
    if not any(word in lowered for word in _TLS):
        return None
    if "certificate_verify_failed" in lowered or "certificate verify failed" in lowered:
        return TlsRefused(
            f"etcd at {endpoint}: certificate verify failed ({details}): the store URL's cacert must be the CA that"
            " signed etcd's certificates; nothing was changed"
        )
    return TlsRefused(
        f"etcd at {endpoint} refused the TLS connection ({details}): the store URL's cacert must be the CA that"
        " signed etcd's certificates, and cert/key a client certificate of it; nothing was changed"
    )


def _error(method: str, err: grpc.aio.AioRpcError) -> Exception:
    message = err.details() or err.code().name
    if any(part in message for part in _TOO_LARGE) or err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
        return TooLarge(f"the store refused the write as too large ({message}); nothing was changed")
    if "no leader" in message:
        return NoQuorum(f"the store has no quorum: etcd has no leader ({message}); nothing was changed")
    if err.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED) or "timed out" in message:
        return StoreUnavailable(f"the store cannot take requests now ({message}); nothing is known to have changed")
    return RuntimeError(f"etcd {method.rsplit('/', 1)[-1]}: {message}")
