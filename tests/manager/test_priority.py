"""Users' requests before agents' batches: the counting middleware and the bounded wait."""

import asyncio
import time

from corral.manager.priority import UsersFirst, _counted


def scope(path: str, query: bytes = b"") -> dict:
    return {"type": "http", "path": path, "query_string": query}


def test_agents_and_streams_are_not_counted() -> None:
    assert _counted(scope("/v1/services")) and _counted(scope("/v1/nodes"))
    assert not _counted(scope("/v1/agent/status")) and not _counted(scope("/v1/agent/n1/mesh"))
    assert not _counted(scope("/v1/events")) and not _counted(scope("/v1/services/web/endpoints", b"watch=true"))
    assert not _counted({"type": "websocket", "path": "/v1/services"})
    assert not _counted(scope("/v1/services/web/logs", b"follow=true")) and not _counted(scope("/v1/tasks/t1/exec"))


async def test_a_batch_waits_for_users_but_not_longer_than_the_limit() -> None:
    users = UsersFirst()
    began = time.perf_counter()
    await users.wait_turn(limit=1.0)
    assert time.perf_counter() - began < 0.05  # nobody in flight: no wait

    users.started()
    asyncio.get_running_loop().call_later(0.1, users.finished)
    began = time.perf_counter()
    await users.wait_turn(limit=1.0)
    assert 0.08 < time.perf_counter() - began < 0.5  # waited until the user's request finished

    users.started()  # a request that never finishes: the batch goes on after the limit
    began = time.perf_counter()
    await users.wait_turn(limit=0.1)
    assert 0.08 < time.perf_counter() - began < 0.5 and users.in_flight == 1
