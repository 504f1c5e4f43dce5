"""replication.reconcile: each service's tasks made to match its spec."""

import pytest

from corral.manager.replication import HISTORY_PER_SLOT, MAX_RESTART_DELAY, reconcile
from corral.model import NodeAvailability, NodeState, TaskState, UpdateConfig

from factories import (
    RUNNING,
    SHUTDOWN,
    ToyCluster,
    apply_plan,
    id_gen,
    live,
    make_node,
    make_service,
    make_task,
    nodes_by_name,
    reconcile_until_quiet,
    services_by_name,
    slot_of,
)

NOW = 1000.0
NODES = nodes_by_name(make_node("n1"), make_node("n2"), make_node("n3"))


def run(services, tasks, nodes=NODES, now=NOW, new_id=None):  # type: ignore[no-untyped-def]
    if isinstance(services, list):
        services = services_by_name(*services)
    return reconcile(services, list(tasks), nodes, now, new_id or id_gen())


def healthy(service, count: int):  # type: ignore[no-untyped-def]
    return [make_task(service, slot, node=f"n{(slot - 1) % 3 + 1}") for slot in range(1, count + 1)]


def by_id(tasks):  # type: ignore[no-untyped-def]
    return {t.id: t for t in tasks}


# -- creating and keeping replicas


def test_new_service_creates_one_task_per_slot() -> None:
    service = make_service("web", replicas=3, version=4, stack="app")
    plan = run([service], [])
    assert sorted(t.slot for t in plan.create) == [1, 2, 3]
    assert plan.update == [] and plan.delete == []
    for task in plan.create:
        assert task.service == "web" and task.stack == "app"
        assert task.state == TaskState.new and task.desired_state == RUNNING
        assert task.node is None
        assert task.spec_version == 4
        assert task.spec == service.spec.task_shape()
        assert task.attempt == 0 and task.restarts == 0 and task.not_before == 0.0
        assert task.created_at == NOW
    assert len({t.id for t in plan.create}) == 3


def test_new_ids_come_from_the_generator() -> None:
    plan = run([make_service(replicas=2)], [], new_id=id_gen("x"))
    assert sorted(t.id for t in plan.create) == ["x0001", "x0002"]


def test_zero_replicas_creates_nothing() -> None:
    assert run([make_service(replicas=0)], []).empty


def test_running_healthy_tasks_need_nothing() -> None:
    service = make_service(replicas=3)
    assert run([service], healthy(service, 3)).empty


def test_replication_settles_after_one_round_and_stays_settled() -> None:
    services = services_by_name(make_service("a", replicas=3), make_service("b", replicas=2))
    tasks: dict = {}
    new_id = id_gen()
    assert reconcile_until_quiet(services, tasks, NODES, NOW, new_id) == 1
    assert len(tasks) == 5
    # again, and at later times: still nothing to do
    for later in (NOW, NOW + 10, NOW + 10_000):
        assert run(services, tasks.values(), now=later, new_id=new_id).empty


def test_tasks_already_being_created_are_not_created_again() -> None:
    service = make_service(replicas=2)
    pending = [make_task(service, 1, state=TaskState.pending), make_task(service, 2, state=TaskState.new)]
    assert run([service], pending).empty


def test_paused_node_keeps_its_replicated_tasks() -> None:
    service = make_service(replicas=1)
    nodes = nodes_by_name(make_node("n1", availability=NodeAvailability.pause))
    assert run([service], [make_task(service, 1, node="n1")], nodes=nodes).empty


# -- scaling


def test_scale_down_shuts_down_the_highest_slots() -> None:
    before = make_service(replicas=5)
    after = make_service(replicas=2)
    plan = run([after], healthy(before, 5))
    assert plan.create == [] and plan.delete == []
    assert sorted(t.slot for t in plan.update) == [3, 4, 5]
    for task in plan.update:
        assert task.desired_state == SHUTDOWN
        assert task.state == TaskState.running  # the agent stops it; replication only asks
        assert task.error == "scaled down"
        assert task.updated_at == NOW


def test_scaled_down_tasks_are_deleted_once_terminal() -> None:
    service = make_service(replicas=1)
    stopping = make_task(service, 2, id="stopping", desired=SHUTDOWN, state=TaskState.running)
    stopped = make_task(service, 3, id="stopped", desired=SHUTDOWN, state=TaskState.shutdown)
    plan = run([service], [make_task(service, 1), stopping, stopped])
    assert plan.delete == ["stopped"]
    assert plan.update == [] and plan.create == []  # still stopping: neither rewritten nor deleted


def test_scaled_down_unplaced_tasks_are_deleted_at_once() -> None:
    service = make_service(replicas=1)
    plan = run([service], [make_task(service, 1), make_task(service, 2, id="waiting", state=TaskState.pending)])
    assert plan.delete == ["waiting"] and plan.update == []


def test_scale_down_then_up_while_old_task_still_stopping() -> None:
    service = make_service(replicas=3)
    tasks = healthy(service, 2) + [make_task(service, 3, id="old3", desired=SHUTDOWN, attempt=2, restarts=1)]
    plan = run([service], tasks)
    assert plan.update == [] and plan.delete == []
    [new] = plan.create
    assert new.slot == 3 and new.desired_state == RUNNING
    assert new.not_before == 0.0  # scaling is not a restart: no delay
    assert new.restarts == 1


def test_scale_up_after_scale_down_starts_afresh_once_old_tasks_are_gone() -> None:
    tasks: dict = {}
    new_id = id_gen()
    cluster_services = services_by_name(make_service(replicas=3))
    reconcile_until_quiet(cluster_services, tasks, NODES, NOW, new_id)
    cluster_services["s"] = make_service(replicas=1)
    reconcile_until_quiet(cluster_services, tasks, NODES, NOW, new_id)
    # the agent stops the scaled-down tasks...
    for task_id, task in list(tasks.items()):
        if task.desired_state == SHUTDOWN:
            tasks[task_id] = task.model_copy(update={"state": TaskState.shutdown})
    reconcile_until_quiet(cluster_services, tasks, NODES, NOW, new_id)
    assert sorted(t.slot for t in tasks.values()) == [1]  # ...and they are forgotten
    cluster_services["s"] = make_service(replicas=3)
    reconcile_until_quiet(cluster_services, tasks, NODES, NOW, new_id)
    assert sorted(t.slot for t in live(tasks.values())) == [1, 2, 3]
    assert all(t.attempt == 0 for t in tasks.values())


# -- restart policy


def failed(service, slot=1, **fields):  # type: ignore[no-untyped-def]
    fields.setdefault("exit_code", 1)
    fields.setdefault("error", "exited with code 1")
    return make_task(service, slot, state=fields.pop("state", TaskState.failed), **fields)


def test_failed_task_is_replaced_after_the_restart_delay() -> None:
    service = make_service(replicas=1, restart={"condition": "any", "delay": 7})
    plan = run([service], [failed(service, id="dead")])
    [old] = plan.update
    [new] = plan.create
    assert old.id == "dead" and old.desired_state == SHUTDOWN
    assert old.state == TaskState.failed and old.error == "exited with code 1"  # the real error is kept
    assert new.slot == 1 and new.desired_state == RUNNING and new.state == TaskState.new
    assert new.not_before == NOW + 7
    assert new.attempt == 1 and new.restarts == 1


def test_zero_delay_restarts_at_once() -> None:
    service = make_service(replicas=1, restart={"delay": 0})
    [new] = run([service], [failed(service)]).create
    assert new.not_before <= NOW


@pytest.mark.parametrize("state", [TaskState.failed, TaskState.complete, TaskState.rejected])
def test_condition_any_restarts_whatever_the_ending(state: TaskState) -> None:
    service = make_service(replicas=1, restart={"condition": "any"})
    plan = run([service], [failed(service, state=state, exit_code=0)])
    assert len(plan.create) == 1


@pytest.mark.parametrize("state", [TaskState.failed, TaskState.complete])
def test_condition_none_never_restarts_and_stays_that_way(state: TaskState) -> None:
    service = make_service(replicas=1, restart={"condition": "none"})
    tasks = {"t": failed(service, id="t", state=state)}
    plan = run([service], tasks.values())
    assert plan.create == []
    [rested] = plan.update
    assert rested.desired_state == SHUTDOWN and rested.state == state
    apply_plan(tasks, plan)
    for later in (NOW + 1, NOW + 3600):
        assert run([service], tasks.values(), now=later).empty


def test_on_failure_does_not_restart_a_completed_task() -> None:
    service = make_service(replicas=2, restart={"condition": "on-failure"})
    tasks = by_id([failed(service, 1, id="ok", state=TaskState.complete, exit_code=0), failed(service, 2, id="bad")])
    plan = run([service], tasks.values())
    assert [t.slot for t in plan.create] == [2]
    assert sorted(t.id for t in plan.update) == ["bad", "ok"]
    apply_plan(tasks, plan)
    assert run([service], tasks.values(), now=NOW + 60).empty


def crash(tasks: dict, service_name: str = "s") -> str:  # type: ignore[type-arg]
    """Fail the slot's desired-running task, as its agent would report; returns its id."""
    [task] = [t for t in tasks.values() if t.desired_state == RUNNING and t.service == service_name]
    tasks[task.id] = task.model_copy(update={"state": TaskState.failed, "exit_code": 1, "error": "exited with code 1"})
    return task.id


def test_max_attempts_caps_restarts() -> None:
    service = make_service(replicas=1, restart={"condition": "any", "delay": 0, "max_attempts": 2})
    services = services_by_name(service)
    tasks: dict = {}
    new_id = id_gen()
    reconcile_until_quiet(services, tasks, NODES, NOW, new_id)
    for expected_restarts in (1, 2):
        crash(tasks)
        reconcile_until_quiet(services, tasks, NODES, NOW, new_id)
        assert [t.restarts for t in live(tasks.values())] == [expected_restarts]
    last = crash(tasks)
    reconcile_until_quiet(services, tasks, NODES, NOW, new_id)
    assert live(tasks.values()) == []  # the slot rests
    assert tasks[last].desired_state == SHUTDOWN
    assert tasks[last].error == "exited with code 1"
    assert run(services, tasks.values(), now=NOW + 3600).empty


def test_max_attempts_zero_means_no_limit() -> None:
    service = make_service(replicas=1, restart={"delay": 0, "max_attempts": 0})
    plan = run([service], [failed(service, restarts=50)])
    assert len(plan.create) == 1


def test_max_attempts_window_allows_restarts_once_the_task_ran_longer_than_the_window() -> None:
    service = make_service(replicas=1, restart={"delay": 0, "max_attempts": 1, "window": 30})
    exhausted = failed(service, restarts=1, created_at=NOW - 10).model_copy(update={"updated_at": NOW})
    assert run([service], [exhausted]).create == []
    long_lived = failed(service, restarts=1, created_at=NOW - 100).model_copy(update={"updated_at": NOW})
    assert len(run([service], [long_lived]).create) == 1


def test_a_slot_that_gave_up_stays_down_with_a_window() -> None:
    service = make_service(replicas=1, restart={"delay": 0, "max_attempts": 1, "window": 30})
    quick_failure = failed(service, id="x", restarts=1, created_at=NOW - 5).model_copy(update={"updated_at": NOW - 4})
    tasks = {"x": quick_failure}
    reconcile_until_quiet(services_by_name(service), tasks, NODES, NOW, id_gen())
    assert live(tasks.values()) == []  # gave up
    assert run([service], tasks.values(), now=NOW + 100).empty


def test_max_attempts_with_a_window_stops_a_crash_loop_whose_delay_exceeds_the_window() -> None:
    service = make_service(replicas=1, restart={"delay": 20, "max_attempts": 2, "window": 10})
    services = services_by_name(service)
    tasks: dict = {}
    new_id = id_gen()
    now = NOW
    reconcile_until_quiet(services, tasks, NODES, now, new_id)
    for _ in range(3):  # each replacement starts after its delay and dies one second later
        [task] = live(tasks.values())
        now = max(now, task.not_before) + 1
        tasks[task.id] = task.model_copy(update={"state": TaskState.failed, "exit_code": 1, "updated_at": now})
        reconcile_until_quiet(services, tasks, NODES, now, new_id)
    assert live(tasks.values()) == []


def test_a_lost_task_is_not_charged_to_max_attempts() -> None:
    service = make_service(replicas=1, restart={"condition": "any", "delay": 0, "max_attempts": 1})
    services = services_by_name(service)
    tasks: dict = {}
    new_id = id_gen()
    reconcile_until_quiet(services, tasks, NODES, NOW, new_id)
    # the node dies: health marks the task lost, replication replaces it
    [task] = tasks.values()
    tasks[task.id] = task.model_copy(update={"state": TaskState.lost, "node": "n1", "error": "node n1 is down"})
    reconcile_until_quiet(services, tasks, NODES, NOW, new_id)
    # the first real failure must still get the one restart max_attempts allows
    crash(tasks)
    reconcile_until_quiet(services, tasks, NODES, NOW, new_id)
    assert len(live(tasks.values())) == 1


def backoffs(delay: float, failures: int) -> list[float]:
    """Crash the one task `failures` times; the restart delay given each time."""
    service = make_service(replicas=1, restart={"condition": "any", "delay": delay})
    services = services_by_name(service)
    tasks: dict = {}
    new_id = id_gen()
    now = NOW
    reconcile_until_quiet(services, tasks, NODES, now, new_id)
    seen = []
    for _ in range(failures):
        now += 1
        crash(tasks)
        reconcile_until_quiet(services, tasks, NODES, now, new_id)
        [replacement] = live(tasks.values())
        seen.append(replacement.not_before - now)
    return seen


def test_crash_loop_back_off_doubles_up_to_a_minute() -> None:
    assert backoffs(5, 8) == [5, 10, 20, 40, 60, 60, 60, 60]
    assert MAX_RESTART_DELAY == 60


def test_back_off_never_exceeds_the_cap_even_with_a_long_delay() -> None:
    assert backoffs(100, 3) == [60, 60, 60]


def test_crash_loop_back_off_reaches_the_cap_with_a_short_delay() -> None:
    assert backoffs(1, 9)[-1] == MAX_RESTART_DELAY


def test_back_off_counts_fast_failures_and_resets_after_a_long_run() -> None:
    service = make_service(replicas=1, restart={"delay": 5})
    fast = failed(service, id="c", created_at=NOW - 2, attempt=2).model_copy(update={"backoff": 2, "updated_at": NOW - 1})
    [new] = run([service], [fast]).create
    assert new.not_before == NOW + 20 and new.backoff == 3
    slow = fast.model_copy(update={"created_at": NOW - 500})  # ran for minutes before it failed
    [new] = run([service], [slow]).create
    assert new.not_before == NOW + 5 and new.backoff == 1


def test_lost_task_is_replaced_at_once() -> None:
    service = make_service(replicas=1, restart={"delay": 30})
    lost = make_task(service, 1, id="lost", state=TaskState.lost, error="node n1 is down")
    plan = run([service], [lost])
    [old] = plan.update
    [new] = plan.create
    assert old.desired_state == SHUTDOWN and old.error == "node n1 is down"
    assert new.not_before == 0.0 and new.slot == 1 and new.node is None


def test_lost_task_is_replaced_even_with_condition_none() -> None:
    service = make_service(replicas=1, restart={"condition": "none"})
    lost = make_task(service, 1, state=TaskState.lost)
    assert len(run([service], [lost]).create) == 1


# -- nodes


def test_task_on_a_drained_node_is_replaced_in_its_slot() -> None:
    service = make_service(replicas=2)
    nodes = nodes_by_name(make_node("n1", availability=NodeAvailability.drain), make_node("n2"))
    tasks = [make_task(service, 1, id="on-drained", node="n1"), make_task(service, 2, id="fine", node="n2")]
    plan = run([service], tasks, nodes=nodes)
    # start-first: the drained replica keeps serving until its replacement runs
    assert plan.update == []
    [new] = plan.create
    assert new.slot == 1 and new.node is None and new.not_before == 0.0
    assert new.restarts == 0  # draining is not the task's fault
    starting = new.model_copy(update={"node": "n2", "state": TaskState.starting})
    assert run([service], [*tasks, starting], nodes=nodes).empty  # still handing over
    [gone] = run([service], [*tasks, new.model_copy(update={"state": TaskState.pending})], nodes=nodes).update
    assert gone.id == "on-drained"  # its replacement found no node: the drain goes on
    running = starting.model_copy(update={"state": TaskState.running})
    [old] = run([service], [*tasks, running], nodes=nodes).update
    assert old.id == "on-drained" and old.desired_state == SHUTDOWN and old.state == TaskState.running
    assert old.error == "node n1 drained"


def test_drained_task_that_is_not_running_goes_at_once() -> None:
    service = make_service(replicas=1)
    nodes = nodes_by_name(make_node("n1", availability=NodeAvailability.drain), make_node("n2"))
    plan = run([service], [make_task(service, 1, id="starting", node="n1", state=TaskState.starting)], nodes=nodes)
    [old] = plan.update
    assert old.desired_state == SHUTDOWN and old.error == "node n1 drained"
    assert len(plan.create) == 1


def test_drain_replacement_settles() -> None:
    service = make_service(replicas=1)
    nodes = nodes_by_name(make_node("n1", availability=NodeAvailability.drain))
    tasks = by_id([make_task(service, 1, node="n1")])
    assert reconcile_until_quiet(services_by_name(service), tasks, nodes, NOW, id_gen()) == 2
    # nowhere for the replacement to go: the drain still drains
    assert len(tasks) == 2 and len(live(tasks.values())) == 1


def test_task_on_a_removed_node_is_replaced() -> None:
    service = make_service(replicas=1)
    plan = run([service], [make_task(service, 1, node="gone")])
    assert plan.update[0].error == "node gone removed"
    assert len(plan.create) == 1


# -- spec changes


def test_new_image_replaces_every_task_with_parallelism_0() -> None:
    old = make_service(replicas=2, image="nginx:1")
    new = make_service(replicas=2, image="nginx:2", version=2, update_config=UpdateConfig(parallelism=0))
    plan = run([new], healthy(old, 2))
    assert sorted(t.slot for t in plan.update) == [1, 2]
    assert all(t.desired_state == SHUTDOWN and t.error == "updated to version 2" for t in plan.update)
    # stop-first (the default order): the new tasks are made once the old ones have stopped, not beside them
    assert plan.create == []
    stopping = plan.update
    assert run([new], stopping).empty  # still stopping: nothing new yet
    stopped = [t.model_copy(update={"state": TaskState.shutdown}) for t in stopping]
    plan = run([new], stopped)
    assert sorted(t.slot for t in plan.create) == [1, 2]
    assert all(t.spec.image == "nginx:2" and t.spec_version == 2 and t.not_before == 0.0 for t in plan.create)


def test_start_first_update_makes_the_new_task_beside_the_running_one() -> None:
    old = make_service(replicas=1, image="nginx:1")
    new = make_service(replicas=1, image="nginx:2", version=2, update_config=UpdateConfig(order="start-first"))
    plan = run([new], healthy(old, 1))
    assert plan.update == []  # the old task serves until the new one runs
    assert [t.spec.image for t in plan.create] == ["nginx:2"]


def test_update_of_an_unplaced_task_shuts_it_down_directly() -> None:
    old = make_service(replicas=1, image="nginx:1")
    new = make_service(replicas=1, image="nginx:2", version=2)
    plan = run([new], [make_task(old, 1, state=TaskState.pending)])
    [stopped] = plan.update
    assert stopped.state == TaskState.shutdown and stopped.desired_state == SHUTDOWN


@pytest.mark.parametrize(
    "change", [{"replicas": 3}, {"service_labels": {"team": "a"}}], ids=["replicas", "service_labels"]
)
def test_changes_outside_the_task_shape_replace_nothing(change: dict) -> None:
    old = make_service(replicas=3)
    new = old.model_copy(update={"spec": old.spec.model_copy(update=change)})
    assert run([new], healthy(old, 3)).empty


# -- removing the service


def test_removed_service_tasks_are_stopped_then_deleted() -> None:
    gone = make_service("gone", replicas=4)
    tasks = [
        make_task(gone, 1, id="running"),
        make_task(gone, 2, id="stopping", desired=SHUTDOWN),
        make_task(gone, 3, id="failed", state=TaskState.failed),
        make_task(gone, 4, id="waiting", state=TaskState.pending),
    ]
    plan = run([], tasks)
    assert plan.create == []
    assert [(t.id, t.desired_state, t.error) for t in plan.update] == [("running", SHUTDOWN, "service removed")]
    assert sorted(plan.delete) == ["failed", "waiting"]


def test_removing_one_service_leaves_the_others_alone() -> None:
    keep, gone = make_service("keep", replicas=1), make_service("gone", replicas=1)
    plan = run([keep], [make_task(keep, 1), make_task(gone, 1)])
    assert [t.service for t in plan.update] == ["gone"]


# -- global services


def test_global_service_runs_one_pinned_task_per_usable_node() -> None:
    service = make_service("agent", global_=True, replicas=0)
    nodes = nodes_by_name(
        make_node("a"),
        make_node("b"),
        make_node("drained", availability=NodeAvailability.drain),
        make_node("paused", availability=NodeAvailability.pause),
        make_node("down", state=NodeState.down),
    )
    plan = run([service], [], nodes=nodes)
    assert sorted(t.node for t in plan.create) == ["a", "b"]
    assert all(t.slot is None and t.state == TaskState.new for t in plan.create)


def test_global_service_honours_constraints() -> None:
    service = make_service("agent", global_=True, constraints=["node.labels.zone == east", "node.name != b"])
    nodes = nodes_by_name(
        make_node("a", labels={"zone": "east"}),
        make_node("b", labels={"zone": "east"}),
        make_node("c", labels={"zone": "west"}),
        make_node("d"),
    )
    assert [t.node for t in run([service], [], nodes=nodes).create] == ["a"]


def test_global_task_on_a_node_that_went_away_is_stopped() -> None:
    service = make_service("agent", global_=True)
    nodes = nodes_by_name(make_node("a"), make_node("b", availability=NodeAvailability.drain))
    tasks = [make_task(service, None, id="on-a", node="a"), make_task(service, None, id="on-b", node="b")]
    plan = run([service], tasks, nodes=nodes)
    assert plan.create == []
    assert [(t.id, t.desired_state) for t in plan.update] == [("on-b", SHUTDOWN)]


def test_global_service_gets_a_task_on_a_node_that_joins() -> None:
    service = make_service("agent", global_=True)
    nodes = nodes_by_name(make_node("a"), make_node("new"))
    plan = run([service], [make_task(service, None, node="a")], nodes=nodes)
    assert [t.node for t in plan.create] == ["new"]


def test_global_failed_task_is_replaced_on_the_same_node() -> None:
    service = make_service("agent", global_=True, restart={"delay": 2})
    nodes = nodes_by_name(make_node("a"))
    [new] = run([service], [failed(service, None, node="a")], nodes=nodes).create
    assert new.node == "a" and new.slot is None and new.not_before == NOW + 2


def test_pausing_a_node_keeps_its_global_task() -> None:
    service = make_service("agent", global_=True)
    nodes = nodes_by_name(make_node("a", availability=NodeAvailability.pause))
    assert run([service], [make_task(service, None, node="a")], nodes=nodes).update == []


# -- history


def test_history_keeps_the_newest_ended_tasks_per_slot() -> None:
    service = make_service(replicas=2)
    ended = [
        failed(service, 1, id=f"old{i}", desired=SHUTDOWN, attempt=i, created_at=float(i)) for i in range(8)
    ]
    other_slot = [failed(service, 2, id=f"two{i}", desired=SHUTDOWN, attempt=i, created_at=float(i)) for i in range(4)]
    current = [make_task(service, 1, id="now", attempt=8, created_at=9.0), make_task(service, 2, id="now2", attempt=4)]
    plan = run([service], ended + other_slot + current)
    assert sorted(plan.delete) == ["old0", "old1", "old2"]
    assert HISTORY_PER_SLOT == 5


def test_history_stays_bounded_through_a_crash_loop() -> None:
    service = make_service(replicas=1, restart={"delay": 0})
    services = services_by_name(service)
    tasks: dict = {}
    new_id = id_gen()
    reconcile_until_quiet(services, tasks, NODES, NOW, new_id)
    for i in range(12):
        crash(tasks)
        reconcile_until_quiet(services, tasks, NODES, NOW + i, new_id)
        ended = [t for t in tasks.values() if t.terminal]
        assert len(ended) <= HISTORY_PER_SLOT
    assert len(live(tasks.values())) == 1


# -- one live task per slot


def test_duplicate_live_tasks_in_a_slot_keep_only_the_newest() -> None:
    service = make_service(replicas=1)
    tasks = [
        make_task(service, 1, id="older", attempt=0, created_at=1),
        make_task(service, 1, id="newer", attempt=1, created_at=2),
    ]
    plan = run([service], tasks)
    assert [(t.id, t.desired_state) for t in plan.update] == [("older", SHUTDOWN)]
    assert plan.create == []


def test_toy_cluster_reaches_the_wanted_replicas() -> None:
    cluster = ToyCluster(services_by_name(make_service(replicas=4)), dict(NODES))
    cluster.settle()
    assert len(live(cluster.tasks.values())) == 4
    assert all(t.state == TaskState.running for t in live(cluster.tasks.values()))
    cluster.set_node_state("n1", NodeState.down)
    cluster.settle()
    running = live(cluster.tasks.values())
    assert len(running) == 4 and all(t.node != "n1" for t in running)
    for slot in range(1, 5):
        assert len(live(slot_of(cluster.tasks.values(), slot))) == 1


def test_restart_delay_backs_off_even_from_zero() -> None:
    from corral.manager.replication import MAX_RESTART_DELAY, restart_delay

    assert [restart_delay(0.0, n) for n in range(1, 6)] == [0.0, 1.0, 2.0, 4.0, 8.0]
    assert [restart_delay(5.0, n) for n in range(1, 4)] == [5.0, 10.0, 20.0]
    assert restart_delay(5.0, 30) == MAX_RESTART_DELAY


def test_history_keeps_as_many_ended_tasks_as_asked() -> None:
    service = make_service("web", replicas=1)
    ended = [make_task(service, 1, id=f"old{i}", state=TaskState.failed, desired=SHUTDOWN, created_at=float(i)) for i in range(4)]
    live = make_task(service, 1, id="now", created_at=10.0)
    nodes = nodes_by_name(make_node())
    for kept, deleted in ((5, []), (2, ["old0", "old1"]), (0, ["old0", "old1", "old2", "old3"])):
        plan = reconcile(services_by_name(service), [*ended, live], nodes, 20.0, id_gen(), history=kept)
        assert sorted(plan.delete) == deleted
