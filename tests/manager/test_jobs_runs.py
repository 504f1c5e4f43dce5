"""jobs.runs.reconcile: a job's runs, completions, parallelism, back-off limit and deadline, with a fake clock."""

import pytest

from corral.manager.jobs import runs
from corral.model import ServiceMode, Task, TaskState
from corral.model.errors import Conflict, InvalidSpec
from corral.model.job import JobSpec
from corral.model.service import Service
from corral.model.task import DesiredState

from factories import id_gen, make_node, make_service, nodes_by_name

NODES = nodes_by_name(make_node("n1"), make_node("n2"), make_node("n3"))


class JobWorld:
    """One job service and its tasks, moved on pass by pass as the controller would."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self.tasks: dict[str, Task] = {}
        self.new_id = id_gen()
        self.now = 100.0

    def step(self) -> runs.ReplicationPlan:
        plan = runs.reconcile({self.service.name: self.service}, list(self.tasks.values()), NODES, self.now, self.new_id)
        for task_id in plan.delete:
            del self.tasks[task_id]
        for task in [*plan.update, *plan.create]:
            self.tasks[task.id] = task
        if plan.services:
            self.service = plan.services[-1]
        return plan

    def live(self) -> list[Task]:
        return [t for t in self.tasks.values() if t.desired_state == DesiredState.running and not t.terminal]

    def end(self, task: Task, state: TaskState) -> None:
        self.tasks[task.id] = task.model_copy(update={"state": state, "node": task.node or "n1", "updated_at": self.now})

    def run_all(self, state: TaskState = TaskState.complete) -> None:
        for task in self.live():
            if task.not_before <= self.now:
                self.end(task, state)

    @property
    def status(self):  # type: ignore[no-untyped-def]
        assert self.service.job_status is not None
        return self.service.job_status


def job(replicas: int = 3, **job_fields: object) -> Service:
    return make_service("batch", replicas=replicas, mode=ServiceMode.replicated_job, job=JobSpec(**job_fields))  # type: ignore[arg-type]


def test_replicated_job_runs_to_its_completions_within_parallelism_and_is_not_restarted() -> None:
    world = JobWorld(job(3, parallelism=2))
    world.step()
    assert world.status.run == 1 and world.status.state == "running"
    assert len(world.live()) == 2, "parallelism 2: two tasks at once"
    assert all(t.job_run == 1 for t in world.live())
    assert world.status.summary(running=2) == "2/3 running"
    world.run_all()
    world.step()
    assert len(world.live()) == 1 and world.status.completed == 2
    assert world.status.summary(running=1) == "1/3 running, 2 completed"
    world.run_all()
    world.step()
    assert world.status.state == "completed" and world.status.completed == 3
    assert world.status.summary(running=0) == "3/3 completed"
    assert world.live() == []
    assert all(t.desired_state == DesiredState.shutdown for t in world.tasks.values()), "a completed task is not run again"
    created = len(world.tasks)
    world.now += 100
    assert world.step().empty, "a completed job stays completed"
    assert len(world.tasks) == created == 3


def test_failing_job_stops_at_its_backoff_limit() -> None:
    service = job(1, backoff_limit=2)
    service = service.model_copy(update={"spec": service.spec.model_copy(update={"restart_policy": service.spec.restart_policy.model_copy(update={"delay": 0.0})})})
    world = JobWorld(service)
    world.step()
    attempts = 0
    while world.status.state == "running" and attempts < 10:
        world.now += 100  # past any back-off
        world.run_all(TaskState.failed)
        world.step()
        attempts += 1
    assert world.status.state == "failed"
    assert world.status.failed == 3, "backoff_limit 2: the third failure fails the run"
    assert world.status.summary(running=0).startswith("failed: backoff limit reached")
    assert world.live() == []
    world.now += 100
    assert world.step().empty, "a failed run is not retried"


def test_retry_waits_for_the_restart_back_off() -> None:
    world = JobWorld(job(1))
    world.step()
    world.run_all(TaskState.failed)
    world.step()
    retry = world.live()[0]
    assert retry.attempt == 1 and retry.backoff == 1
    assert retry.not_before == pytest.approx(world.now + 5.0), "the restart policy's delay (5s) before a retry"


def test_lost_task_is_replaced_without_counting_against_the_limit() -> None:
    world = JobWorld(job(1, backoff_limit=0))
    world.step()
    world.run_all(TaskState.lost)
    world.step()
    assert world.status.state == "running" and world.status.failed == 0
    assert len(world.live()) == 1 and world.live()[0].not_before == 0.0


def test_deadline_fails_the_run_on_the_injected_clock() -> None:
    world = JobWorld(job(2, deadline=30.0))
    world.step()
    world.now += 29
    world.step()
    assert world.status.state == "running"
    world.now += 1
    world.step()
    assert world.status.state == "failed" and "deadline exceeded" in world.status.message
    assert world.live() == [] and all(t.desired_state == DesiredState.shutdown for t in world.tasks.values())


def test_rerun_starts_a_new_run_and_keeps_the_old_one_in_history() -> None:
    world = JobWorld(job(2))
    world.step()
    with pytest.raises(Conflict, match="is running"):
        runs.rerun(world.service, world.now)
    world.run_all()
    world.step()
    assert world.status.state == "completed"
    world.now += 10
    world.service = runs.rerun(world.service, world.now)
    world.step()
    assert world.status.run == 2 and world.status.state == "running" and world.status.completed == 0
    assert len(world.live()) == 2 and all(t.job_run == 2 for t in world.live())
    assert [(r.run, r.state, r.completed) for r in world.status.history] == [(1, "completed", 2)]


def test_rerun_of_a_service_that_is_not_a_job_is_refused() -> None:
    with pytest.raises(InvalidSpec, match="is not a job"):
        runs.rerun(make_service("web"), 1.0)


def test_new_spec_version_starts_a_new_run_and_stops_the_old_runs_tasks() -> None:
    world = JobWorld(job(2))
    world.step()
    old = {t.id for t in world.live()}
    world.service = world.service.model_copy(update={"version": 2})
    world.step()
    assert world.status.run == 2
    assert all(world.tasks[i].desired_state == DesiredState.shutdown for i in old)
    assert {t.job_run for t in world.live()} == {2}


def test_global_job_runs_once_per_node() -> None:
    service = make_service("sweep", replicas=1, mode=ServiceMode.global_job)
    world = JobWorld(service)
    world.step()
    assert sorted(t.node for t in world.live() if t.node) == ["n1", "n2", "n3"]
    world.run_all()
    world.step()
    assert world.status.state == "completed" and world.status.summary(0) == "3/3 completed"


def test_zero_completions_complete_at_once() -> None:
    world = JobWorld(job(0))
    world.step()
    assert world.status.state == "completed" and world.tasks == {}


# -- cron jobs: runs started by the schedule, concurrency policies


def cron(policy: str, every: str = "@every 10s") -> Service:
    service = job(1, schedule=every, concurrency_policy=policy, backoff_limit=0)
    return service.model_copy(update={"created_at": 0.0})


def test_cron_job_waits_for_its_first_time_then_runs_on_schedule() -> None:
    world = JobWorld(cron("forbid"))
    world.now = 5.0
    world.step()
    assert world.status.state == "waiting" and world.tasks == {}
    world.now = 10.0
    world.step()
    assert world.status.run == 1 and len(world.live()) == 1 and world.status.last_schedule == 10.0
    world.run_all()
    world.now = 12.0
    world.step()
    world.now = 20.0
    world.step()
    assert world.status.run == 2
    assert [(r.run, r.state) for r in world.status.history] == [(1, "completed")]


def test_forbid_never_runs_two_at_once() -> None:
    world = JobWorld(cron("forbid"))
    for second in range(10, 60):
        world.now = float(second)
        world.step()
        assert len(world.live()) <= 1
        assert len({t.job_run for t in world.live()}) <= 1
        if second == 35:
            world.run_all()  # the first run takes 25 s; the ones due meanwhile wait
    assert world.status.run == 2, "forbid: times due during run 1 did not start runs beside it"


def test_replace_stops_the_active_run() -> None:
    world = JobWorld(cron("replace"))
    world.now = 10.0
    world.step()
    first = world.live()[0]
    world.now = 20.0
    world.step()
    assert world.tasks[first.id].desired_state == DesiredState.shutdown
    assert world.status.run == 2 and [r.state for r in world.status.history] == ["superseded"]


def test_allow_lets_the_old_run_finish_beside_the_new_one() -> None:
    world = JobWorld(cron("allow"))
    world.now = 10.0
    world.step()
    for task in world.live():
        world.tasks[task.id] = task.model_copy(update={"state": TaskState.running, "node": "n1"})
    world.now = 20.0
    world.step()
    assert sorted(t.job_run for t in world.live()) == [1, 2]


def test_skipped_run_is_noted_and_the_next_one_runs() -> None:
    service = cron("forbid")
    service = service.model_copy(update={"spec": service.spec.model_copy(update={"job": service.spec.job.model_copy(update={"starting_deadline": 3.0})})})  # type: ignore[union-attr]
    world = JobWorld(service)
    world.now = 15.0  # the manager was away at 10 s
    world.step()
    assert world.tasks == {} and world.status.last_schedule == 10.0 and "missed the run" in world.status.message
    world.now = 20.0
    world.step()
    assert world.status.run == 1 and len(world.live()) == 1
