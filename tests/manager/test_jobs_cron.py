"""jobs.cron.decide and model.schedule: when a cron job's runs start, as pure functions of (spec, last runs, now)."""

from datetime import datetime, timezone

import pytest

from corral.manager.jobs.cron import decide, next_run
from corral.model.job import JobSpec, JobStatus
from corral.model.schedule import InvalidSchedule, parse_schedule


def utc(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp()


def status(run: int = 1, state: str = "completed", last: float | None = None) -> JobStatus:
    return JobStatus(run=run, state=state, started_at=0.0, last_schedule=last)  # type: ignore[arg-type]


def test_every_interval_is_counted_from_the_anchor() -> None:
    job = JobSpec(schedule="@every 10s")
    assert decide(job, None, anchor=1000.0, now=1009.9).start is False
    first = decide(job, None, anchor=1000.0, now=1010.0)
    assert first.start and first.scheduled == 1010.0
    assert decide(job, status(last=1010.0), 1000.0, 1019.0).start is False
    assert next_run(job, status(last=1010.0), 1000.0) == 1020.0


def test_five_field_expression_and_names() -> None:
    job = JobSpec(schedule="*/5 * * * *")
    start = utc("2026-12-02T10:00:00")
    assert decide(job, status(last=start), start, start + 299).start is False
    due = decide(job, status(last=start), start, start + 301)
    assert due.start and due.scheduled == start + 300
    hourly = JobSpec(schedule="@hourly")
    assert decide(hourly, status(last=start), start, start + 3600).scheduled == start + 3600


def test_schedule_is_read_in_its_time_zone() -> None:
    paris = JobSpec(schedule="0 9 * * *", timezone="Europe/Paris")
    day = utc("2026-12-02T00:00:00")
    decision = decide(paris, status(last=day), day, utc("2026-12-02T12:00:00"))
    assert decision.scheduled == utc("2026-12-02T08:00:00"), "09:00 in Paris is 08:00 UTC in winter"
    summer = utc("2026-07-01T00:00:00")
    assert decide(paris, status(last=summer), summer, utc("2026-07-01T12:00:00")).scheduled == utc("2026-07-01T07:00:00")


def test_after_an_outage_only_the_latest_missed_run_starts() -> None:
    job = JobSpec(schedule="*/5 * * * *", starting_deadline=120.0)
    last = utc("2026-12-02T10:00:00")
    now = last + 3600 + 30  # the manager was away an hour: 12 times missed
    decision = decide(job, status(last=last), last, now)
    assert decision.start and decision.scheduled == last + 3600
    assert decision.missed == 11


def test_a_run_later_than_starting_deadline_is_skipped_and_recorded() -> None:
    job = JobSpec(schedule="@hourly", starting_deadline=60.0)
    last = utc("2026-12-02T10:00:00")
    decision = decide(job, status(last=last), last, last + 3600 + 61)
    assert not decision.start and decision.skip
    assert decision.scheduled == last + 3600
    assert "past starting_deadline 60s" in decision.reason
    # Without a starting deadline the late run still starts (Kubernetes' default).
    assert decide(JobSpec(schedule="@hourly"), status(last=last), last, last + 3600 + 61).start


def test_forbid_waits_while_a_run_is_active_and_the_due_time_is_kept() -> None:
    job = JobSpec(schedule="@every 10s", concurrency_policy="forbid")
    active = status(run=3, state="running", last=1010.0)
    decision = decide(job, active, 1000.0, 1021.0)
    assert not decision.start and not decision.skip and "still running (forbid)" in decision.reason
    assert decide(job, status(run=3, state="completed", last=1010.0), 1000.0, 1025.0).start, "starts once the run ends"


@pytest.mark.parametrize("policy", ["allow", "replace"])
def test_allow_and_replace_start_beside_an_active_run(policy: str) -> None:
    job = JobSpec(schedule="@every 10s", concurrency_policy=policy)  # type: ignore[arg-type]
    assert decide(job, status(run=1, state="running", last=1010.0), 1000.0, 1020.0).start


@pytest.mark.parametrize(
    ("expression", "zone", "message"),
    [
        ("* * *", "UTC", "expected five fields"),
        ("61 * * * *", "UTC", "not a cron expression"),
        ("@fortnightly", "UTC", "not a cron expression"),
        ("@every soon", "UTC", "invalid interval 'soon'"),
        ("@every 100ms", "UTC", "at least 1s"),
        ("@daily", "Mars/Olympus", "unknown time zone 'Mars/Olympus'"),
    ],
)
def test_bad_schedules_are_refused_with_what_is_wrong(expression: str, zone: str, message: str) -> None:
    with pytest.raises(InvalidSchedule, match=message):
        parse_schedule(expression, zone)
