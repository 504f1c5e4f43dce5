"""The controller, pass by pass, over a real store: it never overwrites what it did not read.

Driven by `controller_harness` (fake clock, real SQLite store and cache).
"""

import asyncio
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from corral.manager import events, keys, replication
from corral.manager.api.views import ServiceView
from corral.model import NodeAvailability, Task, TaskState
from corral.model.task import DesiredState, TERMINAL_STATES
from corral.manager.writes import dump
from corral.store import WatchEvent
from controller_harness import Harness, start


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    h = await start(tmp_path)
    yield h
    await h.close()


async def _one_running_task(h: Harness) -> Task:
    await h.add_node("n1")
    await h.deploy("web", replicas=1)
    await h.settle()
    [task] = h.live("web")
    assert task.state == TaskState.assigned and task.node == "n1"
    await h.report(task.id, TaskState.running)
    await h.settle()
    return task


async def test_a_report_that_lands_while_the_controller_plans_is_not_overwritten(harness: Harness) -> None:
    """The issue's lost update: the user scales to 0, the controller plans to shut the running
    task down, and the agent's `failed` lands between the controller's snapshot and its write."""
    h = harness
    task = await _one_running_task(h)
    await h.scale("web", 0)
    acknowledged: list[int | None] = []

    async def agent_reports_failed() -> None:
        acknowledged.append(await h.report(task.id, TaskState.failed))

    h.while_replication_plans(agent_reports_failed)
    await h.step()
    assert acknowledged and acknowledged[0] is not None
    stored = await h.stored_task(task.id)
    assert stored is not None and stored.state == TaskState.failed, "the agent's failed report was overwritten"
    [lost] = [w for w in h.store.writes if w.by == "controller" and w.op.key == keys.task_key(task.id) and not w.applied]
    assert lost.op.expect < acknowledged[0]  # the change was computed from the copy before the report
    assert "web" in h.controller.queue  # and the service is reconciled again
    await h.settle()
    final = await h.stored_task(task.id)
    # Scaled to 0: the ended task is deleted or kept shut down, its failure never turned back into `running`.
    assert final is None or (final.state == TaskState.failed and final.desired_state == DesiredState.shutdown)


async def test_a_report_between_plan_and_write_makes_the_controller_change_lose(harness: Harness) -> None:
    """An update: the controller plans to replace the running task; the failure comes in just before
    the plan is applied. The old task keeps `failed`; its replacement is created from fresh state."""
    h = harness
    task = await _one_running_task(h)
    await h.update("web", "img:2")
    h.between_plan_and_write("replication", lambda: h.report(task.id, TaskState.failed))
    await h.step()
    stored = await h.stored_task(task.id)
    assert stored is not None and stored.state == TaskState.failed
    await h.settle()
    stored = await h.stored_task(task.id)
    assert stored is not None and stored.state == TaskState.failed
    [new] = h.live("web")
    assert new.spec.image == "img:2" and new.id != task.id


async def test_every_controller_write_is_conditional(harness: Harness) -> None:
    h = harness
    await h.add_node("n1")
    await h.deploy("web", replicas=3)
    await h.settle()
    for task in h.live("web"):
        await h.report(task.id, TaskState.failed)
    await h.scale("web", 1)
    await h.settle(30)
    mine = [w.op for w in h.store.writes if w.by == "controller"]
    assert any(op.value is None for op in mine), "expected the trimmed history to be deleted"
    assert all(op.expect is not None for op in mine)
    # every change the plans carry was written with the revision the plan says
    planned = {(c.key, c.expect) for plan in h.plans for c in plan.changes}
    assert {(op.key, op.expect) for op in mine} == planned


async def test_a_failing_service_backs_off_shows_its_error_and_the_others_go_on(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = harness
    real = replication.reconcile
    calls: list[str] = []

    def reconcile(services, tasks, *args, **kwargs):  # type: ignore[no-untyped-def]
        tasks = list(tasks)
        names = {t.service for t in tasks} | set(services)
        calls.extend(names)
        if "bad" in names and broken:
            raise RuntimeError("the spec cannot be read")
        return real(services, tasks, *args, **kwargs)

    broken = True
    monkeypatch.setattr(replication, "reconcile", reconcile)
    await h.add_node("n1")
    await h.deploy("bad", replicas=1)
    await h.deploy("good", replicas=2)
    await h.step()
    await h.step()
    assert len(h.live("good")) == 2 and not h.live("bad")
    bad = h.cache.services["bad"].obj
    assert bad.reconcile_error == "RuntimeError: the spec cannot be read"
    assert ServiceView.of(bad, []).reconcile_error == bad.reconcile_error  # what `corral service inspect` shows
    queue = h.controller.queue
    assert queue.failures("bad") == 1
    due = queue.next_due()
    assert due is not None and 0.4 <= due - h.clock() <= 0.6  # 0.5 s with ±20% jitter

    # the back-off holds even though passes run (the service's own error note does not wake it)
    tried = calls.count("bad")
    await h.step(0.1)
    await h.step(0.1)
    assert calls.count("bad") == tried
    await h.step(0.5)
    assert calls.count("bad") == tried + 1 and queue.failures("bad") == 2
    due = queue.next_due()
    assert due is not None and 0.8 <= due - h.clock() <= 1.2  # doubled

    broken = False
    await h.step(1.3)
    assert queue.failures("bad") == 0
    await h.settle()
    assert h.cache.services["bad"].obj.reconcile_error == "" and len(h.live("bad")) == 1


async def test_a_change_reconciles_its_own_service_and_a_node_change_those_it_affects(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = harness
    real = replication.reconcile
    seen: list[set[str]] = []

    def reconcile(services, tasks, *args, **kwargs):  # type: ignore[no-untyped-def]
        tasks = list(tasks)
        seen.append({t.service for t in tasks} | set(services))
        return real(services, tasks, *args, **kwargs)

    monkeypatch.setattr(replication, "reconcile", reconcile)
    await h.add_node("n1")
    await h.add_node("n2")
    for name in ("a", "b", "c"):
        await h.deploy(name, replicas=1)
    await h.settle()
    h.clock.advance(0.5)  # within the resync interval: only what changed is reconciled
    seen.clear()
    await h.scale("b", 2)
    await h.step()
    assert seen == [{"b"}]
    on_n2 = {t.service for t in h.tasks() if t.node == "n2" and not t.terminal}
    seen.clear()
    node = h.cache.nodes["n2"]
    drained = node.obj.model_copy(update={"availability": NodeAvailability.drain})
    await h._as("user", h.store.put(keys.node_key("n2"), dump(drained), expect=node.revision))
    await h.step()
    assert on_n2 and set().union(*seen) == on_n2


def test_reconcile_errors_are_events() -> None:
    base = {"spec": {"name": "web", "image": "i", "mode": "replicated", "replicas": 1}, "version": 1, "updated_at": 5.0}
    failing = {**base, "reconcile_error": "RuntimeError: boom"}
    event = events.describe(WatchEvent(7, "services/web", failing, base))
    assert event is not None and event.action == "reconcile-error" and "RuntimeError: boom" in event.message
    event = events.describe(WatchEvent(8, "services/web", base, failing))
    assert event is not None and event.action == "reconciled"


# -- the property: agent reports, user changes and controller passes in any order lose no acknowledged report

REPORTED = [TaskState.running, TaskState.failed, TaskState.complete]
actions = st.lists(
    st.one_of(
        st.tuples(st.just("pass"), st.floats(0.0, 3.0)),
        st.tuples(st.sampled_from(["report", "report-while-planning", "report-before-write"]), st.integers(0, 5), st.sampled_from(REPORTED)),
        st.tuples(st.just("scale"), st.integers(0, 3)),
        st.tuples(st.just("update"), st.integers(2, 9)),
    ),
    min_size=1,
    max_size=14,
)


async def _play(h: Harness, script: list[tuple]) -> None:  # type: ignore[type-arg]
    await h.add_node("n1")
    await h.add_node("n2")
    await h.deploy("web", replicas=2)
    await h.settle()

    def report(index: int, state: TaskState):  # type: ignore[no-untyped-def]
        async def send() -> None:
            placed = sorted((t for t in h.tasks("web") if t.node and not t.terminal), key=lambda t: t.id)
            if placed:
                await h.report(placed[index % len(placed)].id, state)
        return send

    for action in script:
        kind = action[0]
        if kind == "pass":
            await h.step(action[1])
        elif kind == "report":
            await report(action[1], action[2])()
        elif kind == "report-while-planning":
            h.while_replication_plans(report(action[1], action[2]))
            await h.step(0.5)
        elif kind == "report-before-write":
            h.between_plan_and_write(("replication", "scheduling", "health")[action[1] % 3], report(action[1], action[2]))
            await h.step(0.5)
        elif kind == "scale":
            await h.scale("web", action[1])
        elif kind == "update":
            await h.update("web", f"img:{action[1]}")
    await h.settle(20)


async def _check(h: Harness) -> None:
    for report in h.reports:
        key = keys.task_key(report.task_id)
        later = [w for w in h.store.writes if w.op.key == key and w.applied and w.revision > report.revision]
        for write in later:  # whoever wrote after the report had read it
            assert write.op.expect is not None and write.op.expect >= report.revision, (report, write)
        if report.state in TERMINAL_STATES:
            stored = await h.stored_task(report.task_id)
            assert stored is None or stored.state == report.state, (report, stored)
    assert all(w.op.expect is not None for w in h.store.writes if w.by == "controller")
    assert all(not v.obj.reconcile_error for v in h.cache.services.values())  # the harness itself never failed a pass


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(script=actions)
def test_no_acknowledged_report_is_ever_lost(script: list[tuple]) -> None:  # type: ignore[type-arg]
    async def run() -> None:
        with tempfile.TemporaryDirectory() as tmp:
            h = await start(Path(tmp))
            try:
                await _play(h, script)
                await _check(h)
            finally:
                await h.close()

    asyncio.run(run())


async def test_the_controller_waits_for_users_requests_before_its_thread_work_and_its_writes(harness: Harness) -> None:
    """`users_turn` (the manager's `UsersFirst.wait_turn`) is awaited before each piece of work in a worker
    thread and each write: while it holds, the controller writes nothing; once it lets go, the pass goes on."""
    h = harness
    await h.add_node("n1")
    await h.deploy("web", replicas=2)
    turn = asyncio.Event()
    asked: list[int] = []

    async def users_turn() -> None:
        asked.append(len(h.store.writes))
        await turn.wait()

    h.controller.users_turn = users_turn
    before = len(h.store.writes)
    passing = asyncio.create_task(h.step())
    await asyncio.sleep(0.2)
    assert asked and not passing.done() and len(h.store.writes) == before  # held at its first turn: nothing written
    turn.set()
    await asyncio.wait_for(passing, 5)
    assert len(h.live("web")) == 2 and len(asked) >= 2  # placed and written, after asking before each step
