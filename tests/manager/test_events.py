"""events.describe: store changes as the lines `corral events` prints."""

from corral.manager import keys
from corral.manager.events import describe
from corral.manager.writes import dump
from corral.model import NodeAvailability, NodeState, ServiceMode, TaskState
from corral.model.task import DesiredState
from corral.store import WatchEvent

from factories import make_node, make_service, make_task


def event(key: str, new: object = None, old: object = None, revision: int = 7) -> WatchEvent:
    return WatchEvent(
        revision=revision,
        key=key,
        value=dump(new) if new is not None else None,  # type: ignore[arg-type]
        prev=dump(old) if old is not None else None,  # type: ignore[arg-type]
    )


WEB = make_service("web", replicas=3, image="nginx:1", created_at=10.0)


# -- services


def test_service_created() -> None:
    e = describe(event(keys.service_key("web"), WEB))
    assert e is not None
    assert (e.revision, e.type, e.action, e.name, e.time) == (7, "service", "create", "web", 10.0)
    assert e.message == "service web created: nginx:1, replicated, 3 replicas"


def test_global_service_created_names_no_replica_count() -> None:
    agent = make_service("agent", global_=True, image="agent:1")
    e = describe(event(keys.service_key("agent"), agent))
    assert e is not None and e.message == "service agent created: agent:1, global"
    assert agent.spec.mode == ServiceMode.global_


def test_service_updated_lists_what_changed() -> None:
    new = WEB.model_copy(
        update={"spec": WEB.spec.model_copy(update={"image": "nginx:2", "replicas": 5}), "version": 2, "updated_at": 20.0}
    )
    e = describe(event(keys.service_key("web"), new, WEB))
    assert e is not None
    assert (e.action, e.time) == ("update", 20.0)
    assert e.message == "service web updated to version 2: image 'nginx:1' -> 'nginx:2'; replicas 3 -> 5"


def test_service_rewritten_without_spec_change() -> None:
    new = WEB.model_copy(update={"updated_at": 30.0})
    e = describe(event(keys.service_key("web"), new, WEB))
    assert e is not None and e.message == "service web updated to version 1: no spec change"


def test_service_removed() -> None:
    e = describe(event(keys.service_key("web"), None, WEB.model_copy(update={"updated_at": 40.0})))
    assert e is not None
    assert (e.action, e.name, e.time, e.message) == ("remove", "web", 40.0, "service web removed")


# -- tasks


def test_task_created() -> None:
    task = make_task(WEB, 2, id="abc", state=TaskState.new, created_at=50.0)
    e = describe(event(keys.task_key("abc"), task))
    assert e is not None
    assert (e.type, e.action, e.name, e.time) == ("task", "create", "abc", 50.0)
    assert e.message == "task web.2 (abc) created"


def test_task_created_placed_or_pending_says_so() -> None:
    placed = make_task(WEB, 1, id="p1", node="n2", state=TaskState.assigned, created_at=50.0)
    assert describe(event(keys.task_key("p1"), placed)).message == "task web.1 (p1) created, assigned to n2"  # type: ignore[union-attr]
    waiting = make_task(WEB, 3, id="w1", state=TaskState.pending, error="no node has 4 CPUs free", created_at=50.0)
    assert describe(event(keys.task_key("w1"), waiting)).message == "task web.3 (w1) created, pending: no node has 4 CPUs free"  # type: ignore[union-attr]


def test_task_state_change_names_node_and_error() -> None:
    old = make_task(WEB, 1, id="abc", node="n1", state=TaskState.running)
    new = old.model_copy(update={"state": TaskState.failed, "error": "exited with code 3", "updated_at": 60.0})
    e = describe(event(keys.task_key("abc"), new, old))
    assert e is not None
    assert (e.action, e.time) == ("failed", 60.0)
    assert e.message == "task web.1 (abc) failed on n1: exited with code 3"


def test_task_running_without_error() -> None:
    old = make_task(WEB, 1, id="abc", node="n1", state=TaskState.starting)
    new = old.model_copy(update={"state": TaskState.running})
    e = describe(event(keys.task_key("abc"), new, old))
    assert e is not None and e.message == "task web.1 (abc) running on n1"


def test_unplaced_task_state_change_has_no_node() -> None:
    old = make_task(WEB, 1, id="abc", state=TaskState.new)
    new = old.model_copy(update={"state": TaskState.pending, "error": "no node has 1 CPU free"})
    e = describe(event(keys.task_key("abc"), new, old))
    assert e is not None and e.message == "task web.1 (abc) pending: no node has 1 CPU free"


def test_global_task_is_labelled_by_its_node() -> None:
    agent = make_service("agent", global_=True)
    old = make_task(agent, None, id="g1", node="n7", state=TaskState.assigned)
    new = old.model_copy(update={"state": TaskState.running})
    e = describe(event(keys.task_key("g1"), new, old))
    assert e is not None and e.message == "task agent.n7 (g1) running on n7"


def test_task_asked_to_shut_down() -> None:
    old = make_task(WEB, 3, id="abc", node="n1")
    new = old.model_copy(update={"desired_state": DesiredState.shutdown, "error": "scaled down"})
    e = describe(event(keys.task_key("abc"), new, old))
    assert e is not None
    assert e.action == "desired-shutdown"
    assert e.message == "task web.3 (abc) asked to shutdown: scaled down"


def test_task_changes_that_are_not_news() -> None:
    old = make_task(WEB, 1, id="abc", node="n1")
    ports_only = old.model_copy(update={"container_id": "c1", "updated_at": 99.0})
    assert describe(event(keys.task_key("abc"), ports_only, old)) is None
    assert describe(event(keys.task_key("abc"), None, old)) is None  # history trimmed


# -- nodes


def test_node_joined() -> None:
    node = make_node("n1", address="10.1.2.3", last_heartbeat=70.0)
    e = describe(event(keys.node_key("n1"), node))
    assert e is not None
    assert (e.type, e.action, e.name, e.time) == ("node", "join", "n1", 70.0)
    assert e.message == "node n1 joined from 10.1.2.3"


def test_node_down_gives_the_reason() -> None:
    old = make_node("n1", last_heartbeat=70.0)
    new = old.model_copy(update={"state": NodeState.down, "message": "no heartbeat for 20.0s"})
    e = describe(event(keys.node_key("n1"), new, old))
    assert e is not None
    assert e.action == "down"
    assert e.message == "node n1 is down: no heartbeat for 20.0s"


def test_node_back_up() -> None:
    old = make_node("n1", state=NodeState.down)
    new = old.model_copy(update={"state": NodeState.ready})
    e = describe(event(keys.node_key("n1"), new, old))
    assert e is not None and (e.action, e.message) == ("ready", "node n1 is ready")


def test_node_drained() -> None:
    old = make_node("n1")
    new = old.model_copy(update={"availability": NodeAvailability.drain})
    e = describe(event(keys.node_key("n1"), new, old))
    assert e is not None and (e.action, e.message) == ("drain", "node n1 availability drain")


def test_node_removed() -> None:
    e = describe(event(keys.node_key("n1"), None, make_node("n1")))
    assert e is not None and (e.action, e.message) == ("remove", "node n1 removed")


def test_node_heartbeat_only_is_not_news() -> None:
    old = make_node("n1", last_heartbeat=1.0)
    new = old.model_copy(update={"last_heartbeat": 2.0, "labels": {"zone": "a"}})
    assert describe(event(keys.node_key("n1"), new, old)) is None


def test_other_keys_are_not_news() -> None:
    assert describe(WatchEvent(revision=1, key=keys.CLUSTER, value={"id": "x"}, prev=None)) is None


def test_job_runs_beginning_and_ending_are_events() -> None:
    from corral.model.job import JobStatus

    batch = make_service("batch", replicas=3, mode=ServiceMode.replicated_job)
    running = batch.model_copy(update={"job_status": JobStatus(run=1, state="running", started_at=20.0, wanted=3)})
    e = describe(event(keys.service_key("batch"), running, batch))
    assert e is not None and (e.action, e.time, e.message) == ("job", 20.0, "job batch run 1 running")
    assert describe(event(keys.service_key("batch"), running.model_copy(update={"job_status": running.job_status.model_copy(update={"completed": 1})}), running)).action == "update"  # type: ignore[union-attr]
    failed = running.job_status.model_copy(update={"state": "failed", "ended_at": 30.0, "failed": 3, "message": "backoff limit reached"})  # type: ignore[union-attr]
    e = describe(event(keys.service_key("batch"), running.model_copy(update={"job_status": failed}), running))
    assert e is not None and (e.action, e.time) == ("job", 30.0)
    assert e.message == "job batch run 1 failed: 0/3 completed, backoff limit reached"


def test_an_autoscaling_decision_is_an_event_with_its_figures_and_a_refresh_is_not() -> None:
    from corral.model.autoscale import AutoscaleDecision

    before = make_service("web", replicas=2, created_at=10.0)
    decision = AutoscaleDecision(time=20.0, current=2, desired=4, usage=100.0, target=50.0, reason="cpu 100% of target 50%: scale up 2 -> 4")
    after = make_service("web", replicas=4, created_at=10.0).model_copy(update={"autoscale_status": decision})
    found = describe(event(keys.service_key("web"), after, before))
    assert found is not None and (found.action, found.time) == ("autoscale", 20.0)
    assert found.message == "service web autoscaled 2 -> 4: cpu 100% of target 50%: scale up 2 -> 4"
    keep = decision.model_copy(update={"time": 90.0, "current": 4, "desired": 4, "usage": 48.0, "reason": "keep 4"})
    assert describe(event(keys.service_key("web"), after.model_copy(update={"autoscale_status": keep}), after)) is None
