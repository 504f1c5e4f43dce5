"""The etcd gateway's handling of "no leader": every call asks etcd to refuse it when the member has no leader;
a refused call is tried on the other members and again for NO_LEADER_WAIT seconds, then `NoQuorum` (a 503 saying
the store has no quorum). A fake transport and a fake sleep: no etcd, no waiting."""

import httpx
import pytest

from corral.store.etcd import gateway
from corral.store.etcd.gateway import Gateway, NoQuorum

NO_LEADER = {"error": "etcdserver: no leader", "message": "etcdserver: no leader", "code": 14}


def _gateway(answers: list[tuple[int, dict]], seen: list[httpx.Request], slept: list[float]) -> Gateway:
    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        status, body = answers.pop(0) if answers else (503, NO_LEADER)
        return httpx.Response(status, json=body)

    gw = Gateway(["http://127.0.0.1:1", "http://127.0.0.1:2"], sleep=sleep)
    gw._client = httpx.AsyncClient(transport=httpx.MockTransport(handle), headers=gateway.REQUIRE_LEADER)
    return gw


async def test_no_leader_is_tried_elsewhere_then_again_until_an_election_ends() -> None:
    seen: list[httpx.Request] = []
    slept: list[float] = []
    gw = _gateway([(503, NO_LEADER), (503, NO_LEADER), (503, NO_LEADER), (200, {"header": {"revision": "7"}})], seen, slept)
    assert await gw.call("/v3/kv/range", {}) == {"header": {"revision": "7"}}
    ports = [r.url.port for r in seen]
    assert sorted(ports[:2]) == sorted(ports[2:]) == [1, 2]  # both members, then both again after one pause
    assert slept == [gateway.NO_LEADER_RETRY]
    assert all(r.headers["Grpc-Metadata-hasleader"] == "true" for r in seen)


async def test_no_leader_anywhere_for_the_whole_wait_is_no_quorum() -> None:
    seen: list[httpx.Request] = []
    slept: list[float] = []
    gw = _gateway([], seen, slept)
    with pytest.raises(NoQuorum, match="the store has no quorum: 2 of 2 etcd members answer that they have no leader"):
        await gw.call("/v3/kv/txn", {})
    assert sum(slept) == pytest.approx(gateway.NO_LEADER_WAIT)
    assert len(seen) == 2 * (len(slept) + 1)


async def test_other_errors_are_not_retried() -> None:
    seen: list[httpx.Request] = []
    slept: list[float] = []
    gw = _gateway([(400, {"message": "etcdserver: too many operations in txn request", "code": 3})], seen, slept)
    with pytest.raises(Exception, match="too large"):
        await gw.call("/v3/kv/txn", {})
    assert (len(seen), slept) == (1, [])
