"""Users' requests before agents' batches: the counting middleware and the bounded wait."""

import asyncio
import time

from starlette.types import Message, Receive, Scope, Send

from corral.manager.priority import CountUserRequests, UsersFirst, _counted


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


async def test_a_batch_woken_by_one_request_waits_again_for_the_next() -> None:
    users = UsersFirst()
    loop = asyncio.get_running_loop()
    users.started()

    def next_request() -> None:  # one request ends and another starts before the woken batch runs
        users.finished()
        users.started()
        loop.call_later(0.15, users.finished)

    loop.call_later(0.05, next_request)
    began = time.perf_counter()
    await users.wait_turn(limit=1.0)
    assert 0.18 < time.perf_counter() - began < 0.6 and users.in_flight == 0


async def test_an_agents_answer_waits_for_users_requests_and_theirs_does_not() -> None:
    users = UsersFirst()
    sent: list[tuple[str, str]] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    def recorder(path: str) -> Send:
        async def send(message: Message) -> None:
            sent.append((path, message["type"]))

        return send

    middleware = CountUserRequests(app, users)
    user_started = asyncio.Event()
    user_may_answer = asyncio.Event()

    async def slow_user_app(scope: Scope, receive: Receive, send: Send) -> None:
        user_started.set()
        await user_may_answer.wait()
        await app(scope, receive, send)

    user = asyncio.create_task(CountUserRequests(slow_user_app, users)(scope("/v1/nodes"), receive_nothing, recorder("/v1/nodes")))
    await user_started.wait()
    assert users.in_flight == 1
    agent = asyncio.create_task(middleware(scope("/v1/agent/status"), receive_nothing, recorder("/v1/agent/status")))
    await asyncio.sleep(0.05)
    assert sent == [] and not agent.done()  # the agent's answer is held while the user's request is in flight
    await middleware(scope("/v1/info"), receive_nothing, recorder("/v1/info"))  # another user's: answered at once
    assert sent == [("/v1/info", "http.response.start"), ("/v1/info", "http.response.body")]
    user_may_answer.set()
    await asyncio.wait_for(asyncio.gather(user, agent), 1)
    assert [path for path, _ in sent] == ["/v1/info"] * 2 + ["/v1/nodes"] * 2 + ["/v1/agent/status"] * 2
    assert users.in_flight == 0


async def receive_nothing() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


def test_a_worker_thread_steps_aside_while_a_users_request_is_in_flight_and_not_longer_than_the_limit() -> None:
    now = [0.0]
    naps: list[float] = []

    def nap(seconds: float) -> None:
        naps.append(seconds)
        now[0] += seconds
        if len(naps) == 5:
            users.finished()

    users = UsersFirst(clock=lambda: now[0], nap=nap)
    users.step_aside(limit=1.0)
    assert naps == []  # nobody in flight: no nap

    users.started()
    users.step_aside(limit=1.0)
    assert len(naps) == 5 and users.in_flight == 0  # napped until the user's request ended

    naps.clear()
    users.started()
    users.started()  # one that does not end: the work goes on after the limit
    users.step_aside(limit=0.01)
    assert 0.01 <= sum(naps) < 0.02 and users.in_flight == 1
