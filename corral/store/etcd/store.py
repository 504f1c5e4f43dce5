"""The etcd v3 backend: corral's keys under one prefix of an etcd cluster (`etcd://HOST:PORT[,HOST:PORT...]`).

How the store's rules map onto etcd:
- revisions are etcd's: a key's `mod_revision`, the cluster's revision in every reply header. etcd gives
  all the writes of one transaction one revision (SQLite gives each op its own): a transaction returns
  that revision, and its events share it, in one watch message.
- compare-and-swap is a Txn comparing each expected key's MOD revision (0: absent); `txns.py` folds an op
  list into one Txn. A lost compare reads the keys back in the Txn's failure branch to name the key.
- `txn_each` tries its ops as one Txn; if a compare loses, it reads the keys (same failure branch), leaves
  out the ops that lost and tries again with compares on what it judged: still one atomic Txn per try.
  A batch larger than etcd takes at once (`max_ops`, `max_bytes`) goes as several Txns, each complete;
  an all-or-nothing `txn` that does not fit is refused (TooLarge), never split.
- `watch(prefix, after)` is etcd's Watch from `after` (its events at `after` dropped), so etcd itself
  says when `after` is compacted; etcd replays and follows without gaps or duplicates. A member that
  goes away is left for another, resuming after the last whole revision delivered.
- a watch that goes quiet is checked (`watch_check.py`): a manager cut off from a healthy etcd hears of it within
  about two `watch_check` periods (WatchStalled), instead of when TCP gives up.
- TLS: the URL's `cacert`, `cert` and `key` options (`tls.py`) make the channels TLS with a client certificate.
- the wire is etcd's gRPC API (`rpc.py`), with keys and values as bytes: values are corral's JSON.
- `compact(keep)` is etcd's Compact (physical) at `revision - keep`; `oldest_revision` finds etcd's
  compacted revision by reading at older revisions (etcd has no call that tells it). Compaction is
  cluster-wide in etcd: give corral an etcd of its own, or a prefix whose neighbours accept it.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
from aetcd.rpc import rpc_pb2 as pb

from corral.model.errors import Compacted, Conflict, InvalidSpec, NotLeader, StoreUnavailable, TooLarge
from corral.store.base import KeyValue, Op, Store, WatchEvent, WatchExpired, WatchStalled
from corral.store.election import Election
from corral.store.etcd import rpc, txns
from corral.store.etcd.election import EtcdElection
from corral.store.etcd.rpc import EtcdClient, Unanswered, prefix_end
from corral.store.etcd.tls import client_context
from corral.store.etcd.watch_check import QuietWatch

log = logging.getLogger(__name__)

DEFAULT_PREFIX = "/corral/"
ETCD_MAX_TXN_OPS = 128  # etcd's defaults (--max-txn-ops, --max-request-bytes)
ETCD_MAX_REQUEST_BYTES = 1_572_864
RANGE_PAGE = 5_000  # keys per Range call when listing
WATCH_RETRY = 0.2  # seconds between tries to resume a watch whose member went away
WATCH_CHECK = 1.0  # seconds of a quiet watch before etcd is asked (with this deadline) whether it is alive (watch_check.py)
_DELETE = 1  # etcd's mvccpb.Event.DELETE
WATCH_PATIENCE = 3  # watch checks' worth of seconds without any member before a watch gives up (WatchStalled: list again)


@dataclass(frozen=True)
class EtcdSettings:
    endpoints: list[str]
    prefix: str = DEFAULT_PREFIX
    max_ops: int = ETCD_MAX_TXN_OPS
    max_bytes: int = ETCD_MAX_REQUEST_BYTES
    # TLS (`tls.py`): the CA that signed the members' certificates, and the client certificate and key. Any of
    # them makes every endpoint https://; etcd's `--client-cert-auth` refuses a client without the certificate.
    cacert: str = ""
    cert: str = ""
    key: str = ""
    watch_check: float = WATCH_CHECK

    @property
    def tls(self) -> bool:
        return bool(self.cacert or self.cert)

    @staticmethod
    def parse(url: str) -> "EtcdSettings":
        """`etcd://HOST:PORT[,HOST:PORT...][/PREFIX][?max-txn-ops=N&max-request-bytes=N&cacert=FILE&cert=FILE&key=FILE]`."""
        parts = urlsplit(url)
        if parts.scheme != "etcd" or not parts.netloc:
            raise InvalidSpec("store", f"invalid etcd URL {url!r}: expected etcd://HOST:PORT[,HOST:PORT...][/PREFIX]")
        endpoints = []
        for member in parts.netloc.split(","):
            host, _, port = member.rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise InvalidSpec("store", f"invalid etcd member {member!r} in {url!r}: expected HOST:PORT")
            endpoints.append(member)
        prefix = parts.path.strip("/")
        query = parse_qs(parts.query)
        limits: dict[str, Any] = {}
        for name, field in (("max-txn-ops", "max_ops"), ("max-request-bytes", "max_bytes")):
            if name in query:
                value = query.pop(name)[-1]
                if not value.isdigit() or int(value) < 1:
                    raise InvalidSpec("store", f"{name} in {url!r}: expected a positive whole number, not {value!r}")
                limits[field] = int(value)
        for name in ("cacert", "cert", "key"):
            if name in query:
                limits[name] = query.pop(name)[-1]
        if bool(limits.get("cert")) != bool(limits.get("key")):
            raise InvalidSpec("store", f"{url!r}: cert and key go together (the client certificate and its private key)")
        if query:
            raise InvalidSpec(
                "store", f"unknown option {sorted(query)[0]!r} in {url!r}: expected max-txn-ops, max-request-bytes, cacert, cert or key"
            )
        settings = EtcdSettings(endpoints, f"/{prefix}/" if prefix else DEFAULT_PREFIX, **limits)
        scheme = "https" if settings.tls else "http"
        return replace(settings, endpoints=[f"{scheme}://{member}" for member in endpoints])

    def verify(self) -> ssl.SSLContext | bool:
        """What an HTTP client verifies etcd with (its /health): the TLS context of the files (read now: a bad one is
        an InvalidSpec)."""
        return client_context(self.cacert, self.cert, self.key) if self.tls else True

    def client(self) -> EtcdClient:
        """The gRPC client of these endpoints (the TLS files checked first: a bad one is an InvalidSpec)."""
        if not self.tls:
            return EtcdClient([_host_port(url) for url in self.endpoints])
        self.verify()
        return EtcdClient([_host_port(url) for url in self.endpoints], rpc.credentials(self.cacert, self.cert, self.key))


def _host_port(url: str) -> str:
    return url.split("://", 1)[-1]


def _tls_hint(settings: EtcdSettings) -> str:
    """What to check when the first call to etcd got no answer: often TLS (etcd drops what it will not take)."""
    if not settings.tls:
        return "an etcd that serves TLS drops plain requests: give the store URL its cacert, cert and key, or `corral manager --etcd-cacert --etcd-cert --etcd-key`"
    if not settings.cert:
        return "an etcd with --client-cert-auth drops a client without a certificate: give the store URL cert and key too"
    return "if etcd is up, it may have refused the client certificate: cert must be signed by the CA etcd trusts (its --trusted-ca-file)"


class EtcdStore(Store):
    def __init__(self, settings: EtcdSettings, client: EtcdClient | None = None, fence: int = 0) -> None:
        self.settings = settings
        self.client = client or settings.client()
        self._prefix = settings.prefix.encode()
        self.leader_key = settings.prefix.rstrip("/").encode() + b".leader"  # beside the prefix: no watcher of it sees it
        self._fence = fence  # when set, every Txn requires the leader key's create revision to be this
        self._max_ops = settings.max_ops - 1  # one compare and one read are kept for the fence
        self._oldest = 0  # the compacted revision last found (it only moves forward)

    def election(self, ttl: float) -> Election:
        return EtcdElection(self, ttl)

    def with_fence(self, revision: int) -> "EtcdStore":
        """This store, whose every write also requires the leader term that began at `revision` (shares the connections)."""
        fenced = EtcdStore(self.settings, self.client, revision)
        fenced._oldest = self._oldest
        return fenced

    async def open(self) -> "EtcdStore":
        try:
            await self.revision()
        except StoreUnavailable as err:
            await self.client.close()
            if isinstance(err, rpc.NoQuorum) or not self.settings.tls and "connection refused" in str(err).lower():
                raise  # no quorum, nobody listening: the error is clear
            # A connection taken and dropped, or a handshake refused: what etcd does with a client it will not take over TLS.
            raise StoreUnavailable(f"{err} ({_tls_hint(self.settings)})") from err
        return self

    def _key(self, key: str) -> bytes:
        return self._prefix + key.encode("utf-8")

    def _kv(self, kv: Any) -> KeyValue:
        return KeyValue(
            key=kv.key[len(self._prefix):].decode(),
            value=orjson.loads(kv.value),
            create_revision=kv.create_revision,
            mod_revision=kv.mod_revision,
        )

    # -- reads ---------------------------------------------------------------

    async def get(self, key: str) -> KeyValue | None:
        reply = await self.client.call(rpc.RANGE, pb.RangeRequest(key=self._key(key)))
        return self._kv(reply.kvs[0]) if reply.kvs else None

    async def range(self, prefix: str) -> tuple[list[KeyValue], int]:
        """Every key under prefix at one revision, read in pages (a large cluster's list is many MB)."""
        start, end = self._key(prefix), prefix_end(self._key(prefix))
        items: list[KeyValue] = []
        revision = 0
        while True:
            # every page from the first page's revision (0: the newest, for the first)
            reply = await self.client.call(rpc.RANGE, pb.RangeRequest(key=start, range_end=end, limit=RANGE_PAGE, revision=revision))
            revision = revision or int(reply.header.revision)
            items += [self._kv(kv) for kv in reply.kvs]
            if not reply.more or not reply.kvs:
                return items, revision
            start = bytes(reply.kvs[-1].key) + b"\0"

    async def revision(self) -> int:
        reply = await self.client.call(rpc.RANGE, pb.RangeRequest(key=self._prefix, count_only=True))
        return int(reply.header.revision)

    # -- writes --------------------------------------------------------------

    async def txn(self, ops: Sequence[Op]) -> int:
        plan = txns.plan(ops, each=False)
        if plan.conflict is not None:
            raise Conflict(plan.conflict)
        if not plan.writes:
            return await self.revision()
        txns.refuse_if_too_large(plan, self._prefix, self._max_ops, self.settings.max_bytes)
        succeeded, revision, found = await self._commit(plan, list(plan.compares))
        if not succeeded:
            raise txns.conflict(plan.compares, found)
        return revision

    async def txn_each(self, ops: Sequence[Op]) -> tuple[int, list[int]]:
        for op in ops:
            txns.encode(op)  # a value that cannot be stored refuses the whole call before any part is written
        groups = txns.chunks(ops, self._max_ops, self.settings.max_bytes - len(self._prefix) * 2)
        revision, skipped = 0, []
        for group in groups:  # one after the other: sending them at once was no faster (docs/performance.md, etcd's batches)
            written, left_out = await self._each([ops[at] for at in group])
            revision = max(revision, written)
            skipped += [group[at] for at in left_out]
        return revision or await self.revision(), skipped

    async def _each(self, ops: list[Op]) -> tuple[int, list[int]]:
        keys = list(dict.fromkeys(op.key for op in ops))
        known: dict[str, int] | None = None
        for _ in range(100):
            plan = txns.plan(ops, each=True, known=known)
            if not plan.writes:
                return await self.revision(), plan.skipped
            succeeded, revision, found = await self._commit(plan, keys)
            if succeeded:
                return revision, plan.skipped
            known = found
        raise Conflict("the keys of a batch kept changing while it was written (100 tries); nothing more of it was written")

    async def _commit(self, plan: txns.EtcdTxn, read_back: list[str]) -> tuple[bool, int, dict[str, int]]:
        """Send the Txn; (succeeded, its revision, the mod_revision of each `read_back` key if it failed).

        A Txn left unanswered (its member died) is sent once more, to another member: if the first one was
        applied after all, the second loses its compares, and the keys read back holding exactly what it
        wrote say so (it succeeded). NotLeader when the store is fenced and its term is over."""
        try:
            return await self._send(plan, read_back)
        except Unanswered as err:
            log.warning("%s; trying another etcd member", err)
        succeeded, revision, found = await self._send(plan, read_back)
        if succeeded or not plan.writes:
            return succeeded, revision, found
        applied = await self._holds(plan.writes)
        return (True, applied, {}) if applied else (False, revision, found)

    async def _holds(self, writes: dict[str, bytes | None]) -> int:
        """The revision at which the store holds exactly `writes` (0: it does not)."""
        revision = 0
        for key, value in writes.items():
            found = await self.get(key)
            if (found is None) != (value is None) or (found is not None and value is not None and found.value != orjson.loads(value)):
                return 0
            revision = max(revision, found.mod_revision if found is not None else 0)
        return revision or await self.revision()

    async def _send(self, plan: txns.EtcdTxn, read_back: list[str]) -> tuple[bool, int, dict[str, int]]:
        compare = [
            pb.Compare(key=self._key(key), target=pb.Compare.MOD, result=pb.Compare.EQUAL, mod_revision=expect)
            for key, expect in plan.compares.items()
        ]
        success = [
            pb.RequestOp(request_put=pb.PutRequest(key=self._key(key), value=value))
            if value is not None
            else pb.RequestOp(request_delete_range=pb.DeleteRangeRequest(key=self._key(key)))
            for key, value in plan.writes.items()
        ]
        failure = [pb.RequestOp(request_range=pb.RangeRequest(key=self._key(key), keys_only=True)) for key in read_back] if plan.compares else []
        if self._fence:
            compare.append(pb.Compare(key=self.leader_key, target=pb.Compare.CREATE, result=pb.Compare.EQUAL, create_revision=self._fence))
            failure.append(pb.RequestOp(request_range=pb.RangeRequest(key=self.leader_key, keys_only=True)))
        reply = await self.client.call(rpc.TXN, pb.TxnRequest(compare=compare, success=success, failure=failure))
        revision = int(reply.header.revision)
        if reply.succeeded:
            return True, revision, {}
        found = {key: 0 for key in read_back}
        leader = 0
        for response in reply.responses:
            for kv in response.response_range.kvs:
                if kv.key == self.leader_key:
                    leader = int(kv.create_revision)
                else:
                    found[kv.key[len(self._prefix):].decode()] = int(kv.mod_revision)
        if self._fence and leader != self._fence:
            raise NotLeader(
                f"this manager's term as leader (from revision {self._fence}) is over"
                f" ({'another manager leads' if leader else 'nobody leads now'}): its write was refused, nothing changed"
            )
        return False, revision, found

    # -- watch ---------------------------------------------------------------

    async def watch(self, prefix: str, after: int, prev: bool = True) -> AsyncIterator[WatchEvent]:
        key = self._key(prefix)
        last = after
        # From `after` itself (its events dropped below): etcd refuses a start before its compacted revision,
        # which is exactly when `after` is older than `oldest_revision()`. 0 would mean "from now" to etcd.
        start = max(after, 1)
        gone_since: float | None = None
        loop = asyncio.get_running_loop()
        while True:
            request = pb.WatchRequest(create_request=pb.WatchCreateRequest(key=key, range_end=prefix_end(key), start_revision=start, prev_kv=prev))
            try:
                async for result in self._checked(self.client.stream(rpc.WATCH, request), prefix, lambda: last):
                    gone_since = None
                    if result.compact_revision:
                        raise Compacted(last, int(result.compact_revision))
                    if result.canceled:
                        raise WatchExpired(f"etcd cancelled the watch on {prefix!r}: {result.cancel_reason}")
                    newest = last
                    for event in result.events:
                        found = self._event(event)
                        if found.revision > last:
                            newest = max(newest, found.revision)
                            yield found
                    last = newest  # a revision's events come in one message: resume after the last whole one
            except StoreUnavailable as err:
                now = loop.time()
                gone_since = gone_since or now
                if now - gone_since > WATCH_PATIENCE * self.settings.watch_check:
                    raise WatchStalled(f"watch on {prefix!r}: {err}") from err
                log.warning("etcd watch on %r interrupted (%s); resuming after revision %d", prefix, err, last)
                await asyncio.sleep(WATCH_RETRY)
            start = last + 1 if last >= start else start

    async def _checked(
        self, messages: AsyncGenerator[Any, None], prefix: str, delivered: Callable[[], int]
    ) -> AsyncIterator[Any]:
        """The watch's messages; after each `watch_check` seconds without one, etcd is asked (with that deadline)
        for the newest revision under the prefix, and a watch that `watch_check.QuietWatch` judges stalled raises
        WatchStalled (the caller lists again, which works once the link is back)."""
        quiet = QuietWatch()
        pending: asyncio.Future[Any] | None = None
        try:
            while True:
                if pending is None:
                    pending = asyncio.ensure_future(anext(messages))
                done, _ = await asyncio.wait({pending}, timeout=self.settings.watch_check)
                if done:
                    message, pending = pending.result(), None
                    quiet.heard()
                    yield message
                    continue
                stalled = quiet.verdict(delivered(), await self._newest(prefix, delivered(), quiet))
                if stalled is not None:
                    raise WatchStalled(f"etcd watch on {prefix!r} stalled: {stalled}")
        except StopAsyncIteration:
            return
        finally:
            if pending is not None:
                pending.cancel()
                await asyncio.gather(pending, return_exceptions=True)
            await messages.aclose()

    async def _newest(self, prefix: str, delivered: int, quiet: QuietWatch) -> int | None:
        """The newest mod revision under prefix the watch may not have delivered (`delivered` when etcd's revision
        says there is none), None if etcd did not answer within `watch_check` (see watch_check.py)."""
        deadline = self.settings.watch_check
        head = await self.client.check(rpc.RANGE, pb.RangeRequest(key=self._prefix, count_only=True), deadline)
        if head is None:
            return None
        revision = int(head.header.revision)
        if not quiet.needs_scan(revision, delivered):
            return delivered
        key = self._key(prefix)
        request = pb.RangeRequest(
            key=key, range_end=prefix_end(key), limit=1, keys_only=True,
            sort_order=pb.RangeRequest.DESCEND, sort_target=pb.RangeRequest.MOD,
        )
        reply = await self.client.check(rpc.RANGE, request, deadline)
        if reply is None:
            return None
        newest = int(reply.kvs[0].mod_revision) if reply.kvs else 0
        quiet.scanned(revision, newest, delivered)
        return newest

    def _event(self, event: Any) -> WatchEvent:
        kv = event.kv
        deleted = event.type == _DELETE
        return WatchEvent(
            revision=int(kv.mod_revision),
            key=kv.key[len(self._prefix):].decode(),
            value=None if deleted else orjson.loads(kv.value),
            prev=event.prev_kv.value.decode() if event.HasField("prev_kv") and event.prev_kv.value else None,
        )

    # -- compaction ----------------------------------------------------------

    async def oldest_revision(self) -> int:
        """The revision etcd compacted at (0: never). etcd has no call that tells it, but a Range at a revision
        before it fails: the last one found is checked first (compaction only moves forward), then a binary
        search finds the new one (about 25 reads of one key: this is asked per `corral events`, not per write)."""
        known = self._oldest
        if await self._readable(max(known, 1)):
            return known
        low, high = known + 1, await self.revision()  # low: not readable; high: always readable
        while low < high:
            middle = (low + high) // 2
            if await self._readable(middle):
                high = middle
            else:
                low = middle + 1
        self._oldest = max(self._oldest, low)
        return self._oldest

    async def _readable(self, revision: int) -> bool:
        try:
            await self.client.call(rpc.RANGE, pb.RangeRequest(key=self._prefix, count_only=True, revision=revision))
        except RuntimeError as err:
            if "compacted" in str(err):
                return False
            raise
        return True

    async def compact(self, keep: int) -> int:
        """etcd's physical compaction at `revision - keep` (etcd frees the space itself, in its own batches)."""
        target = await self.revision() - max(keep, 0)
        oldest = await self.oldest_revision()
        if target <= oldest:
            return oldest
        try:
            await self.client.call(rpc.COMPACT, pb.CompactionRequest(revision=target, physical=True))
        except RuntimeError as err:
            if "compacted" not in str(err):  # compacted further already (by etcd itself or another manager)
                raise
            return await self.oldest_revision()
        self._oldest = max(self._oldest, target)
        return self._oldest

    async def close(self) -> None:
        if not self._fence:  # a fenced copy shares its connections with the store it came from
            await self.client.close()


__all__ = ["EtcdSettings", "EtcdStore", "TooLarge"]
