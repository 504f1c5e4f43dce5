"""Leader election on etcd, as etcd's concurrency `Election` and Kubernetes' lease lock do it, with one key.

- campaign: grant a lease of `ttl` seconds (or reuse the last campaign's, if granted less than ttl/3 ago: a lease
  that had nearly lapsed would end the term it won at once), then one Txn: if the leader key does not exist (CREATE == 0),
  put it bound to the lease, else read it. Whoever created it leads; its create revision names the term.
- renew: a lease keep-alive; a lease etcd no longer knows (TTL absent) means the term is over.
- when the leader stops renewing (killed, partitioned from etcd), etcd deletes the key with its lease
  after `ttl`, and the next campaign of another manager wins.
- fencing: the term's store adds to every Txn the compare "leader key CREATE == term.revision": once the
  key is gone or another manager's, the deposed leader's writes are refused by etcd (NotLeader).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson
from aetcd.rpc import rpc_pb2 as pb

from corral.store.election import Election, Term
from corral.store.etcd import rpc

if TYPE_CHECKING:
    from corral.store.etcd.store import EtcdStore

log = logging.getLogger(__name__)


class EtcdElection(Election):
    def __init__(self, store: "EtcdStore", ttl: float, now: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.ttl = ttl
        self.key = store.leader_key
        self._now = now
        self._lease: int | None = None
        self._granted = 0.0  # when the grant of `_lease` was sent

    async def campaign(self, value: dict[str, Any]) -> Term | None:
        client = self.store.client
        for _ in range(2):
            # One lease for the campaigns until one wins (an unused one lapses by itself), while it is fresh: the
            # term it wins must hold for 2/3 of the ttl before the leader's first renewal could be missed.
            if self._lease is None or self._now() - self._granted > self.ttl / 3:
                self._granted = self._now()
                granted = await client.call(rpc.LEASE_GRANT, pb.LeaseGrantRequest(TTL=max(1, round(self.ttl))))
                self._lease = int(granted.ID)
            try:
                reply = await client.call(rpc.TXN, pb.TxnRequest(
                    compare=[pb.Compare(key=self.key, target=pb.Compare.CREATE, result=pb.Compare.EQUAL, create_revision=0)],
                    success=[pb.RequestOp(request_put=pb.PutRequest(key=self.key, value=orjson.dumps(value), lease=self._lease))],
                    failure=[pb.RequestOp(request_range=pb.RangeRequest(key=self.key))],
                ))
                break
            except RuntimeError as err:
                if "lease not found" not in str(err):
                    raise
                self._lease = None  # it lapsed while another led: a new one
        else:
            return None
        if not reply.succeeded:
            return None
        lease, self._lease = self._lease, None
        return Term(revision=int(reply.header.revision), lease=lease)

    async def renew(self, term: Term) -> bool:
        async for result in self.store.client.stream(rpc.KEEP_ALIVE, pb.LeaseKeepAliveRequest(ID=term.lease)):
            return int(result.TTL) > 0
        return False

    async def resign(self, term: Term) -> None:
        await self.store.client.call(rpc.LEASE_REVOKE, pb.LeaseRevokeRequest(ID=term.lease))  # the key goes with its lease

    async def leader(self) -> dict[str, Any] | None:
        reply = await self.store.client.call(rpc.RANGE, pb.RangeRequest(key=self.key))
        found: dict[str, Any] | None = orjson.loads(reply.kvs[0].value) if reply.kvs else None
        return found

    def fenced(self, term: Term) -> "EtcdStore":
        return self.store.with_fence(term.revision)
