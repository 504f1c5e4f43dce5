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
- TLS: the URL's `cacert`, `cert` and `key` options (`tls.py`) make the endpoints https:// with a client certificate.
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

from corral.model.errors import Compacted, Conflict, InvalidSpec, NotLeader, StoreUnavailable, TooLarge
from corral.store.base import KeyValue, Op, Store, WatchEvent, WatchExpired, WatchStalled
from corral.store.election import Election
from corral.store.etcd import txns
from corral.store.etcd.election import EtcdElection
from corral.store.etcd.gateway import Gateway, Unanswered, b64, prefix_end, unb64
from corral.store.etcd.tls import client_context
from corral.store.etcd.watch_check import QuietWatch

log = logging.getLogger(__name__)

DEFAULT_PREFIX = "/corral/"
ETCD_MAX_TXN_OPS = 128  # etcd's defaults (--max-txn-ops, --max-request-bytes)
ETCD_MAX_REQUEST_BYTES = 1_572_864
RANGE_PAGE = 5_000  # keys per Range call when listing
WATCH_RETRY = 0.2  # seconds between tries to resume a watch whose member went away
WATCH_CHECK = 1.0  # seconds of a quiet watch before etcd is asked (with this deadline) whether it is alive (watch_check.py)
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
        """What the client verifies etcd with: the TLS context of the files (read now: a bad one is an InvalidSpec)."""
        return client_context(self.cacert, self.cert, self.key) if self.tls else True

    def gateway(self) -> Gateway:
        """The client of these endpoints."""
        return Gateway(self.endpoints, verify=self.verify())


def _tls_hint(settings: EtcdSettings) -> str:
    """What to check when the first call to etcd got no answer: often TLS (etcd drops what it will not take)."""
    if not settings.tls:
        return "an etcd that serves TLS drops plain requests: give the store URL its cacert, cert and key, or `corral manager --etcd-cacert --etcd-cert --etcd-key`"
    if not settings.cert:
        return "an etcd with --client-cert-auth drops a client without a certificate: give the store URL cert and key too"
    return "if etcd is up, it may have refused the client certificate: cert must be signed by the CA etcd trusts (its --trusted-ca-file)"


class EtcdStore(Store):
    def __init__(self, settings: EtcdSettings, gateway: Gateway | None = None, fence: int = 0) -> None:
        self.settings = settings
        self.gateway = gateway or settings.gateway()
        self._prefix = settings.prefix.encode()
        self.leader_key = settings.prefix.rstrip("/").encode() + b".leader"  # beside the prefix: no watcher of it sees it
        self._fence = fence  # when set, every Txn requires the leader key's create revision to be this
        self._max_ops = settings.max_ops - 1  # one compare and one read are kept for the fence
        self._oldest = 0  # the compacted revision last found (it only moves forward)

    def election(self, ttl: float) -> Election:
        return EtcdElection(self, ttl)

    def with_fence(self, revision: int) -> "EtcdStore":
        """This store, whose every write also requires the leader term that began at `revision` (shares the connections)."""
        fenced = EtcdStore(self.settings, self.gateway, revision)
        fenced._oldest = self._oldest
        return fenced

    async def open(self) -> "EtcdStore":
        try:
            await self.revision()
        except StoreUnavailable as err:
            await self.gateway.close()
            if not isinstance(err, Unanswered):  # refused, no quorum, a TLS refusal that says so: the error is clear
                raise
            # A connection taken and dropped without a word: what etcd does with a request it will not take over TLS.
            raise StoreUnavailable(f"{err} ({_tls_hint(self.settings)})") from err
        return self

    def _key(self, key: str) -> bytes:
        return self._prefix + key.encode("utf-8")

    def _kv(self, kv: dict[str, Any]) -> KeyValue:
        return KeyValue(
            key=unb64(kv["key"])[len(self._prefix):].decode(),
            value=orjson.loads(unb64(kv.get("value", ""))),
            create_revision=int(kv.get("create_revision", 0)),
            mod_revision=int(kv.get("mod_revision", 0)),
        )

    # -- reads ---------------------------------------------------------------

    async def get(self, key: str) -> KeyValue | None:
        reply = await self.gateway.call("/v3/kv/range", {"key": b64(self._key(key))})
        kvs = reply.get("kvs") or []
        return self._kv(kvs[0]) if kvs else None

    async def range(self, prefix: str) -> tuple[list[KeyValue], int]:
        """Every key under prefix at one revision, read in pages (a large cluster's list is many MB)."""
        start, end = self._key(prefix), prefix_end(self._key(prefix))
        items: list[KeyValue] = []
        revision = 0
        while True:
            body: dict[str, Any] = {"key": b64(start), "range_end": b64(end), "limit": str(RANGE_PAGE)}
            if revision:
                body["revision"] = str(revision)  # every page from the first page's revision
            reply = await self.gateway.call("/v3/kv/range", body)
            revision = revision or int(reply["header"]["revision"])
            kvs = reply.get("kvs") or []
            items += [self._kv(kv) for kv in kvs]
            if not reply.get("more") or not kvs:
                return items, revision
            start = unb64(kvs[-1]["key"]) + b"\0"

    async def revision(self) -> int:
        reply = await self.gateway.call("/v3/kv/range", {"key": b64(self._prefix), "count_only": True})
        return int(reply["header"]["revision"])

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
        body: dict[str, list[dict[str, Any]]] = {
            "compare": [
                {"key": b64(self._key(key)), "target": "MOD", "result": "EQUAL", "mod_revision": str(expect)}
                for key, expect in plan.compares.items()
            ],
            "success": [
                {"request_put": {"key": b64(self._key(key)), "value": b64(value)}}
                if value is not None
                else {"request_delete_range": {"key": b64(self._key(key))}}
                for key, value in plan.writes.items()
            ],
            "failure": [{"request_range": {"key": b64(self._key(key)), "keys_only": True}} for key in read_back]
            if plan.compares
            else [],
        }
        if self._fence:
            body["compare"].append(
                {"key": b64(self.leader_key), "target": "CREATE", "result": "EQUAL", "create_revision": str(self._fence)}
            )
            body["failure"].append({"request_range": {"key": b64(self.leader_key), "keys_only": True}})
        reply = await self.gateway.call("/v3/kv/txn", body)
        revision = int(reply["header"]["revision"])
        if reply.get("succeeded"):
            return True, revision, {}
        found = {key: 0 for key in read_back}
        leader = 0
        for response in reply.get("responses") or []:
            for kv in (response.get("response_range") or {}).get("kvs") or []:
                key = unb64(kv["key"])
                if key == self.leader_key:
                    leader = int(kv.get("create_revision", 0))
                else:
                    found[key[len(self._prefix):].decode()] = int(kv["mod_revision"])
        if self._fence and leader != self._fence:
            raise NotLeader(
                f"this manager's term as leader (from revision {self._fence}) is over"
                f" ({'another manager leads' if leader else 'nobody leads now'}): its write was refused, nothing changed"
            )
        return False, revision, found

    # -- watch ---------------------------------------------------------------

    async def watch(self, prefix: str, after: int) -> AsyncIterator[WatchEvent]:
        key = self._key(prefix)
        last = after
        # From `after` itself (its events dropped below): etcd refuses a start before its compacted revision,
        # which is exactly when `after` is older than `oldest_revision()`. 0 would mean "from now" to etcd.
        start = max(after, 1)
        gone_since: float | None = None
        loop = asyncio.get_running_loop()
        while True:
            request = {"create_request": {"key": b64(key), "range_end": b64(prefix_end(key)), "start_revision": str(start), "prev_kv": True}}
            try:
                async for result in self._checked(self.gateway.stream("/v3/watch", request), prefix, lambda: last):
                    gone_since = None
                    compacted = int(result.get("compact_revision", 0))
                    if compacted:
                        raise Compacted(last, compacted)
                    if result.get("canceled"):
                        raise WatchExpired(f"etcd cancelled the watch on {prefix!r}: {result.get('cancel_reason', '')}")
                    newest = last
                    for event in result.get("events") or []:
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
        self, messages: AsyncGenerator[dict[str, Any], None], prefix: str, delivered: Callable[[], int]
    ) -> AsyncIterator[dict[str, Any]]:
        """The watch's messages; after each `watch_check` seconds without one, etcd is asked (with that deadline)
        for the newest revision under the prefix, and a watch that `watch_check.QuietWatch` judges stalled raises
        WatchStalled (the caller lists again, which works once the link is back)."""
        quiet = QuietWatch()
        pending: asyncio.Future[dict[str, Any]] | None = None
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
        head = await self.gateway.check("/v3/kv/range", {"key": b64(self._prefix), "count_only": True}, deadline)
        if head is None:
            return None
        revision = int(head["header"]["revision"])
        if not quiet.needs_scan(revision, delivered):
            return delivered
        key = self._key(prefix)
        body = {
            "key": b64(key), "range_end": b64(prefix_end(key)), "limit": "1", "keys_only": True,
            "sort_order": "DESCEND", "sort_target": "MOD",
        }
        reply = await self.gateway.check("/v3/kv/range", body, deadline)
        if reply is None:
            return None
        kvs = reply.get("kvs") or []
        newest = int(kvs[0].get("mod_revision", 0)) if kvs else 0
        quiet.scanned(revision, newest, delivered)
        return newest

    def _event(self, event: dict[str, Any]) -> WatchEvent:
        kv = event["kv"]
        prev = event.get("prev_kv")
        return WatchEvent(
            revision=int(kv["mod_revision"]),
            key=unb64(kv["key"])[len(self._prefix):].decode(),
            value=None if event.get("type") == "DELETE" else orjson.loads(unb64(kv.get("value", ""))),
            prev=unb64(prev["value"]).decode() if prev and prev.get("value") else None,
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
            await self.gateway.call("/v3/kv/range", {"key": b64(self._prefix), "count_only": True, "revision": str(revision)})
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
            await self.gateway.call("/v3/kv/compaction", {"revision": str(target), "physical": True})
        except RuntimeError as err:
            if "compacted" not in str(err):  # compacted further already (by etcd itself or another manager)
                raise
            return await self.oldest_revision()
        self._oldest = max(self._oldest, target)
        return self._oldest

    async def close(self) -> None:
        if not self._fence:  # a fenced copy shares its connections with the store it came from
            await self.gateway.close()


__all__ = ["EtcdSettings", "EtcdStore", "TooLarge"]
