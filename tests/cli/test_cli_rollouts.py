"""cli.rollouts.outcome: when `--watch` stops, and whether it exits 0."""

import pytest

from corral.cli.rollouts import outcome, progress_of


def service(state: str | None, running: int = 3, replicas: int = 3, message: str = "") -> dict:
    status = None if state is None else {"state": state, "updated": 2, "total": 3, "message": message}
    return {"running": running, "replicas": replicas, "update_status": status}


@pytest.mark.parametrize("state", ["updating", "rollback_started"])
def test_a_rollout_under_way_goes_on(state: str) -> None:
    assert outcome(service(state)) is None


def test_converged_only_when_every_replica_runs() -> None:
    assert outcome(service("completed", running=2)) is None
    done = outcome(service("completed"))
    assert done is not None and done.ok and done.message == "update completed"
    assert outcome(service(None, running=1)) is None
    assert outcome(service(None)).ok  # type: ignore[union-attr]


@pytest.mark.parametrize("state", ["paused", "rollback_paused"])
def test_paused_fails_with_the_reason(state: str) -> None:
    ended = outcome(service(state, message="update paused: 1 of 3 new tasks failed"))
    assert ended is not None and not ended.ok and "1 of 3 new tasks failed" in ended.message


def test_rolled_back_fails_an_update_but_ends_a_rollback() -> None:
    ended = outcome(service("rollback_completed", message="update failed, rolled back: ..."))
    assert ended is not None and not ended.ok and "rolled back" in ended.message
    asked = outcome(service("rollback_completed"), rolling_back=True)
    assert asked is not None and asked.ok


def test_canary_hold_is_where_a_canary_update_converges() -> None:
    ended = outcome(service("canary_hold", message="canary: 1 of 3 tasks updated; promote or roll back"))
    assert ended is not None and ended.ok and "promote" in ended.message


def test_progress_shows_updated_of_total_and_phase() -> None:
    assert progress_of(service("rollback_started")) == (2, 3, "rollback started")
    assert progress_of(service(None, running=1)) == (1, 3, "starting")
