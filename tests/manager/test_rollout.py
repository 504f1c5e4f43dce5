"""Rolling updates through replication.reconcile: parallelism, order, delay, monitor, failure actions, canary.

A small simulation stands in for the scheduler and the agents: `start()`
runs every task waiting to run (stamping `started_at`), `stop()` ends every
task asked to shut down. Time only moves when a test moves it.
"""

import pytest

from corral.manager import rollout
from corral.manager.replication import reconcile
from corral.model import Service, Task, TaskState, UpdateConfig, UpdateState
from corral.model.errors import InvalidSpec
from corral.model.task import DesiredState, UNPLACED_STATES

from factories import apply_plan, id_gen, live, make_node, make_service, nodes_by_name

NODES = nodes_by_name(make_node("n1"), make_node("n2"), make_node("n3"))


class Sim:
    def __init__(self, service: Service, now: float = 1000.0) -> None:
        self.services = {service.name: service}
        self.name = service.name
        self.tasks: dict[str, Task] = {}
        self.now = now
        self.new_id = id_gen()

    @property
    def service(self) -> Service:
        return self.services[self.name]

    def reconcile(self):  # type: ignore[no-untyped-def]
        plan = reconcile(self.services, list(self.tasks.values()), NODES, self.now, self.new_id)
        apply_plan(self.tasks, plan)
        for service in plan.services:
            self.services[service.name] = service
        return plan

    def start(self) -> None:
        for task in list(self.tasks.values()):
            if task.desired_state == DesiredState.running and task.state in UNPLACED_STATES:
                self.tasks[task.id] = task.model_copy(
                    update={"state": TaskState.running, "node": "n1", "started_at": self.now, "updated_at": self.now}
                )

    def stop(self) -> None:
        for task in list(self.tasks.values()):
            if task.desired_state == DesiredState.shutdown and not task.terminal:
                self.tasks[task.id] = task.model_copy(update={"state": TaskState.shutdown, "updated_at": self.now})

    def batch(self) -> None:
        """One batch of a stop-first rollout, its agents acting at once: the pass that asks the old tasks to stop,
        their stop, the pass that makes their replacements, and the new tasks' start."""
        self.reconcile()
        self.stop()
        self.reconcile()
        self.start()

    def fail_new(self, image: str, after: float = 0.0) -> None:
        """Every live task of `image` fails `after` seconds after it started."""
        for task in list(self.tasks.values()):
            if task.desired_state == DesiredState.running and task.spec.image == image and not task.terminal:
                self.tasks[task.id] = task.model_copy(
                    update={"state": TaskState.failed, "exit_code": 1, "error": "exited with code 1",
                            "updated_at": (task.started_at or self.now) + after}
                )

    def settle(self, rounds: int = 20) -> None:
        """Run passes, starting and stopping tasks at once, until nothing changes."""
        for _ in range(rounds):
            changed = not self.reconcile().empty
            before = dict(self.tasks)
            self.start()
            self.stop()
            if not changed and before == self.tasks:
                return
            self.now += 0.1
        raise AssertionError("did not settle")

    def update(self, **changes: object) -> None:
        spec = self.service.spec.model_copy(update=changes)
        self.services[self.name] = rollout.updated(self.service, spec, self.now)

    def live_images(self) -> dict[int, list[str]]:
        slots: dict[int, list[str]] = {}
        for task in sorted(live(self.tasks.values()), key=lambda t: t.created_at):
            slots.setdefault(task.slot or 0, []).append(task.spec.image)
        return slots

    @property
    def status(self):  # type: ignore[no-untyped-def]
        return self.service.update_status


def running_sim(replicas: int = 3, **config: object) -> Sim:
    config.setdefault("monitor", 0)
    service = make_service(
        "web", replicas=replicas, image="app:1",
        update_config=UpdateConfig(**config), rollback_config=UpdateConfig(monitor=0),  # type: ignore[arg-type]
    )
    sim = Sim(service)
    sim.settle()
    assert sim.live_images() == {slot: ["app:1"] for slot in range(1, replicas + 1)}
    return sim


# -- what counts as an update


def test_scale_change_alone_replaces_nothing() -> None:
    sim = running_sim(3)
    sim.update(replicas=5)
    assert sim.service.version == 1 and sim.status is None
    plan = sim.reconcile()
    assert plan.update == [] and sorted(t.slot for t in plan.create) == [4, 5]
    sim.update(replicas=2)
    plan = sim.reconcile()
    assert plan.create == [] and [t.slot for t in plan.update] == [3]  # 4 and 5 never started: deleted
    assert len(plan.delete) == 2 and plan.update[0].error == "scaled down"
    assert sim.services[sim.name].update_status is None


def test_update_keeps_the_previous_spec_and_starts_a_rollout() -> None:
    sim = running_sim(2)
    old = sim.service.spec
    sim.update(image="app:2")
    assert sim.service.version == 2 and sim.service.previous_spec == old
    assert sim.status.state == UpdateState.updating and sim.status.started_at == sim.now


# -- parallelism and order


def test_stop_first_replaces_one_slot_at_a_time() -> None:
    sim = running_sim(3, parallelism=1)
    sim.update(image="app:2")
    plan = sim.reconcile()
    assert [(t.slot, t.desired_state) for t in plan.update] == [(1, DesiredState.shutdown)]
    assert plan.create == []  # stop-first: the new task is made once the old one has stopped
    assert sim.reconcile().empty  # slot 1 still stopping: nothing else moves
    assert sim.status.updated == 0 and sim.status.total == 3
    sim.stop()
    plan = sim.reconcile()
    assert [(t.slot, t.spec.image) for t in plan.create] == [(1, "app:2")] and plan.update == []
    assert sim.reconcile().empty  # slot 1's new task is not running yet: slot 2 waits
    sim.start()
    plan = sim.reconcile()
    assert [t.slot for t in plan.update] == [2] and plan.create == []
    assert sim.status.updated == 1
    sim.settle()
    assert sim.live_images() == {1: ["app:2"], 2: ["app:2"], 3: ["app:2"]}
    assert sim.status.state == UpdateState.completed and sim.status.updated == 3


@pytest.mark.parametrize(("parallelism", "first_batch"), [(2, [1, 2]), (0, [1, 2, 3, 4])])
def test_parallelism_bounds_the_slots_in_flight(parallelism: int, first_batch: list[int]) -> None:
    sim = running_sim(4, parallelism=parallelism)
    sim.update(image="app:2")
    assert sorted(t.slot for t in sim.reconcile().update) == first_batch
    sim.stop()
    assert sorted(t.slot for t in sim.reconcile().create) == first_batch
    assert sim.reconcile().empty


def test_start_first_starts_the_new_task_beside_the_old_one() -> None:
    sim = running_sim(2, order="start-first")
    sim.update(image="app:2")
    plan = sim.reconcile()
    assert plan.update == [] and [(t.slot, t.spec.image) for t in plan.create] == [(1, "app:2")]
    assert sim.live_images() == {1: ["app:1", "app:2"], 2: ["app:1"]}
    assert sim.reconcile().empty  # the old task keeps serving while the new one starts
    sim.start()
    plan = sim.reconcile()
    assert [(t.slot, t.spec.image, t.error) for t in plan.update] == [(1, "app:1", "updated to version 2")]
    assert [(t.slot, t.spec.image) for t in plan.create] == [(2, "app:2")]
    sim.settle()
    assert sim.live_images() == {1: ["app:2"], 2: ["app:2"]}


def test_red_black_starts_the_whole_new_set_first() -> None:
    sim = running_sim(3, order="start-first", parallelism=3)
    sim.update(image="app:2")
    plan = sim.reconcile()
    assert plan.update == [] and sorted(t.slot for t in plan.create) == [1, 2, 3]
    assert all(images == ["app:1", "app:2"] for images in sim.live_images().values())


def test_delay_waits_between_batches() -> None:
    sim = running_sim(3, delay=10)
    sim.update(image="app:2")
    sim.batch()
    started = sim.now
    sim.now = started + 9
    assert sim.reconcile().update == []
    sim.now = started + 10
    assert [t.slot for t in sim.reconcile().update] == [2]


# -- monitor and failure actions


def test_a_new_task_failing_within_monitor_pauses_the_update() -> None:
    sim = running_sim(3, monitor=5)
    sim.update(image="app:2")
    sim.batch()
    sim.fail_new("app:2", after=2)
    sim.now += 3
    sim.reconcile()
    assert sim.status.state == UpdateState.paused
    assert "1 of 3 new tasks failed within 5s" in sim.status.message and "exited with code 1" in sim.status.message
    for _ in range(3):  # paused: slots 2 and 3 keep the old image however long we wait
        sim.start()
        sim.stop()
        sim.now += 10
        sim.reconcile()
    assert sim.live_images()[2] == ["app:1"] and sim.live_images()[3] == ["app:1"]
    assert sim.status.state == UpdateState.paused


def test_a_failure_after_monitor_does_not_count() -> None:
    sim = running_sim(2, monitor=5)
    sim.update(image="app:2")
    sim.batch()
    sim.now += 30
    sim.fail_new("app:2", after=20)
    sim.reconcile()
    assert sim.status.state == UpdateState.updating and sim.status.failed == 0


def test_completion_waits_for_the_monitor_of_the_last_task() -> None:
    sim = running_sim(1, monitor=5)
    sim.update(image="app:2")
    sim.batch()
    started = sim.now
    sim.reconcile()
    assert sim.status.state == UpdateState.updating and sim.status.updated == 1
    sim.now = started + 5
    sim.reconcile()
    assert sim.status.state == UpdateState.completed and sim.status.completed_at == sim.now


def test_failure_action_continue_goes_on() -> None:
    sim = running_sim(2, monitor=5, failure_action="continue")
    sim.update(image="app:2")
    sim.batch()
    sim.fail_new("app:2")
    plan = sim.reconcile()
    assert (2, "updated to version 2") in [(t.slot, t.error) for t in plan.update]  # slot 2 goes ahead despite slot 1's failure
    assert sim.status.state == UpdateState.updating and sim.status.failed == 1


def test_max_failure_ratio_tolerates_some_failures() -> None:
    sim = running_sim(4, monitor=5, max_failure_ratio=0.3)
    sim.update(image="app:2")
    sim.batch()
    sim.fail_new("app:2")
    sim.reconcile()
    assert sim.status.state == UpdateState.updating  # 1/4 <= 0.3


def test_failure_action_rollback_returns_to_the_previous_spec() -> None:
    sim = running_sim(3, monitor=5, failure_action="rollback")
    sim.update(image="app:2")
    sim.batch()
    sim.fail_new("app:2")
    plan = sim.reconcile()
    assert sim.service.spec.image == "app:1" and sim.service.previous_spec.image == "app:2"
    assert sim.service.version == 3
    assert sim.status.state == UpdateState.rollback_started and "update failed, rolled back" in sim.status.message
    assert [(t.slot, t.spec.image, t.spec_version) for t in plan.create] == [(1, "app:1", 3)]
    sim.settle()
    assert sim.live_images() == {1: ["app:1"], 2: ["app:1"], 3: ["app:1"]}
    assert sim.status.state == UpdateState.rollback_completed


def test_rollback_in_start_first_keeps_the_old_task_and_drops_the_new() -> None:
    sim = running_sim(2, order="start-first", monitor=5)
    sim.update(image="app:2")
    sim.reconcile()  # slot 1: app:1 running, app:2 starting
    old_ids = {t.id for t in live(sim.tasks.values()) if t.spec.image == "app:1"}
    sim.services[sim.name] = rollout.rolled_back(sim.service, sim.now)
    plan = sim.reconcile()
    assert [(t.spec.image, t.desired_state) for t in plan.update] == [("app:2", DesiredState.shutdown)]
    assert plan.create == []
    sim.settle()
    assert {t.id for t in live(sim.tasks.values())} == old_ids
    assert sim.status.state == UpdateState.rollback_completed


def test_manual_rollback_needs_a_previous_spec() -> None:
    sim = running_sim(1)
    with pytest.raises(InvalidSpec, match="no previous spec"):
        rollout.rolled_back(sim.service, sim.now)


# -- canary


def test_canary_updates_n_slots_then_holds_until_promoted() -> None:
    sim = running_sim(3)
    sim.update(image="app:2", canary=1)
    sim.settle()
    assert sim.live_images() == {1: ["app:2"], 2: ["app:1"], 3: ["app:1"]}
    assert sim.status.state == UpdateState.canary_hold and sim.status.updated == 1
    assert "promote or roll back" in sim.status.message
    sim.services[sim.name] = rollout.promoted(sim.service, sim.now)
    assert sim.service.spec.canary is None and sim.service.version == 2
    sim.settle()
    assert sim.live_images() == {1: ["app:2"], 2: ["app:2"], 3: ["app:2"]}
    assert sim.status.state == UpdateState.completed


def test_canary_rollback_undoes_the_canary() -> None:
    sim = running_sim(3)
    sim.update(image="app:2", canary=2)
    sim.settle()
    assert sim.status.state == UpdateState.canary_hold and sim.status.updated == 2
    sim.services[sim.name] = rollout.rolled_back(sim.service, sim.now)
    sim.settle()
    assert sim.live_images() == {1: ["app:1"], 2: ["app:1"], 3: ["app:1"]}
    assert sim.status.state == UpdateState.rollback_completed


def test_promote_without_a_canary_is_refused() -> None:
    sim = running_sim(1)
    with pytest.raises(InvalidSpec, match="no canary"):
        rollout.promoted(sim.service, sim.now)


# -- step itself


def test_a_settled_service_is_left_alone() -> None:
    sim = running_sim(2)
    tasks = {str(t.slot): [t] for t in sim.tasks.values()}
    step = rollout.step(sim.service, tasks, sim.now)
    assert step.service == sim.service and step.replace == frozenset()


def test_outdated_tasks_without_a_rollout_start_one() -> None:
    sim = running_sim(2)
    bumped = sim.service.model_copy(update={"spec": sim.service.spec.model_copy(update={"image": "app:2"}), "version": 2})
    tasks = {str(t.slot): [t] for t in sim.tasks.values()}
    step = rollout.step(bumped, tasks, sim.now)
    assert step.service.update_status.state == UpdateState.updating and step.replace == frozenset({"1"})


def test_a_rollout_status_change_is_an_event() -> None:
    from corral.manager import keys
    from corral.manager.events import describe
    from corral.manager.writes import dump
    from corral.model import UpdateStatus
    from corral.store import WatchEvent

    old = make_service("web", replicas=3)
    status = UpdateStatus(state=UpdateState.paused, started_at=5.0, message="update paused: 1 of 3 new tasks failed", updated=1, total=3)
    new = old.model_copy(update={"update_status": status})
    event = describe(WatchEvent(revision=9, key=keys.service_key("web"), value=dump(new), prev=dump(old)))
    assert event is not None and (event.action, event.time) == ("rollout", 5.0)
    assert event.message == "service web rollout paused: 1/3 updated (update paused: 1 of 3 new tasks failed)"
