"""The etcd client's handling of "no leader", of members it cannot reach and of calls left unanswered: every call
asks etcd to refuse it when the member has no leader; a refused call is tried on the other members and again for
NO_LEADER_WAIT seconds, then `NoQuorum` (a 503 saying the store has no quorum). A member that cannot be reached is
skipped (nothing was sent); a call sent and not answered is not repeated (a write may have been applied).
gRPC's own error objects, a fake call and a fake sleep: no etcd, no waiting."""

from typing import Any

import grpc
import pytest
from aetcd.rpc import rpc_pb2 as pb

from corral.model.errors import StoreUnavailable, TooLarge
from corral.store.etcd import rpc
from corral.store.etcd.rpc import EtcdClient, NoQuorum, Unanswered


def _error(code: grpc.StatusCode, details: str) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details=details)


NO_LEADER = _error(grpc.StatusCode.UNAVAILABLE, "etcdserver: no leader")
REFUSED = _error(grpc.StatusCode.UNAVAILABLE, "failed to connect to all addresses; last error: UNKNOWN: ipv4:127.0.0.1:1: Connection refused")
DIED = _error(grpc.StatusCode.UNAVAILABLE, "Socket closed")
HEADER = pb.RangeResponse(header=pb.ResponseHeader(revision=7))


def _client(answers: list[Any], seen: list[int], slept: list[float]) -> EtcdClient:
    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    client = EtcdClient(["127.0.0.1:1", "127.0.0.1:2"], sleep=sleep)

    async def invoke(at: int, method: str, request: Any, timeout: float) -> Any:
        seen.append(at)
        answer = answers.pop(0) if answers else NO_LEADER
        if isinstance(answer, Exception):
            raise answer
        return answer

    client._invoke = invoke  # type: ignore[method-assign]
    return client


async def test_no_leader_is_tried_elsewhere_then_again_until_an_election_ends() -> None:
    seen: list[int] = []
    slept: list[float] = []
    client = _client([NO_LEADER, NO_LEADER, NO_LEADER, HEADER], seen, slept)
    assert (await client.call(rpc.RANGE, pb.RangeRequest())).header.revision == 7
    assert sorted(seen[:2]) == sorted(seen[2:]) == [0, 1]  # both members, then both again after one pause
    assert slept == [rpc.NO_LEADER_RETRY]
    assert rpc.REQUIRE_LEADER == (("hasleader", "true"),)


async def test_no_leader_anywhere_for_the_whole_wait_is_no_quorum() -> None:
    seen: list[int] = []
    slept: list[float] = []
    client = _client([], seen, slept)
    with pytest.raises(NoQuorum, match="the store has no quorum: 2 of 2 etcd members answer that they have no leader"):
        await client.call(rpc.TXN, pb.TxnRequest())
    assert sum(slept) == pytest.approx(rpc.NO_LEADER_WAIT)
    assert len(seen) == 2 * (len(slept) + 1)


async def test_a_member_that_cannot_be_reached_is_skipped_and_the_next_call_starts_where_one_answered() -> None:
    seen: list[int] = []
    client = _client([REFUSED, HEADER, HEADER], seen, [])
    assert (await client.call(rpc.RANGE, pb.RangeRequest())).header.revision == 7
    await client.call(rpc.RANGE, pb.RangeRequest())
    assert seen == [0, 1, 1]

    nobody = _client([REFUSED, REFUSED], [], [])
    with pytest.raises(StoreUnavailable, match="no etcd member answers .*Connection refused.*nothing was changed"):
        await nobody.call(rpc.TXN, pb.TxnRequest())


async def test_a_call_sent_and_not_answered_is_not_repeated_and_says_so() -> None:
    seen: list[int] = []
    client = _client([DIED, HEADER], seen, [])
    with pytest.raises(Unanswered, match="may or may not have been applied"):
        await client.call(rpc.TXN, pb.TxnRequest())
    assert seen == [0]
    await client.call(rpc.RANGE, pb.RangeRequest())
    assert seen == [0, 1]  # the next call went to the other member


async def test_other_errors_are_not_retried() -> None:
    seen: list[int] = []
    slept: list[float] = []
    client = _client([_error(grpc.StatusCode.INVALID_ARGUMENT, "etcdserver: too many operations in txn request")], seen, slept)
    with pytest.raises(TooLarge, match="too large"):
        await client.call(rpc.TXN, pb.TxnRequest())
    assert (len(seen), slept) == (1, [])
    compacted = _client([_error(grpc.StatusCode.OUT_OF_RANGE, "etcdserver: mvcc: required revision has been compacted")], [], [])
    with pytest.raises(RuntimeError, match="etcd Range: .*compacted"):
        await compacted.call(rpc.RANGE, pb.RangeRequest())
