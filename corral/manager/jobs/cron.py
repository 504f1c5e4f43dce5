"""When a cron job starts a run: a pure function of (job spec, its status, now), as Kubernetes' CronJob controller decides.

- Only the latest of several missed times starts a run (a manager that was down an hour
  runs an hourly job once, not once per missed hour), and only if it is no more than
  `starting_deadline` late; a later one is skipped, noted in the status.
- `forbid`: while a run is active nothing starts and the due time waits (it counts as
  missed: it starts when the run ends, if still within `starting_deadline`);
  `replace`: the active run is stopped and the new one starts; `allow`: the new one starts
  and the old one's tasks run on to their end, no longer retried.
"""

from dataclasses import dataclass
from datetime import datetime, timezone

from corral.model.job import JobSpec, JobStatus
from corral.model.schedule import parse_schedule


@dataclass(frozen=True)
class Decision:
    """What to do now. `start`: begin a run for the time `scheduled`; `skip`: record `scheduled`
    as passed without a run; neither: wait (`reason` says why when there is one)."""

    scheduled: float | None = None
    start: bool = False
    skip: bool = False
    missed: int = 0
    reason: str = ""


def decide(job: JobSpec, status: JobStatus | None, anchor: float, now: float) -> Decision:
    """The decision for a cron job created (or whose schedule was last set) at `anchor`."""
    assert job.schedule is not None, "only cron jobs have a schedule"
    schedule = parse_schedule(job.schedule, job.timezone)
    after = status.last_schedule if status is not None and status.last_schedule is not None else anchor
    due = schedule.due(after, now, anchor)
    if due is None:
        return Decision()
    missed = due.count - 1
    late = now - due.latest
    if job.starting_deadline is not None and late > job.starting_deadline:
        return Decision(
            scheduled=due.latest,
            skip=True,
            missed=due.count,
            reason=f"missed the run due at {_show(due.latest)}: {late:.0f}s late, past starting_deadline {job.starting_deadline:g}s",
        )
    if status is not None and status.active and job.concurrency_policy == "forbid":
        return Decision(scheduled=due.latest, missed=missed, reason=f"run due at {_show(due.latest)} waits: run {status.run} is still running (forbid)")
    return Decision(scheduled=due.latest, start=True, missed=missed)


def next_run(job: JobSpec, status: JobStatus | None, anchor: float) -> float | None:
    """When the next run is due (for `service inspect`); None for a job without a schedule."""
    if job.schedule is None:
        return None
    after = status.last_schedule if status is not None and status.last_schedule is not None else anchor
    return parse_schedule(job.schedule, job.timezone).next_after(after, anchor)


def _show(moment: float) -> str:
    return datetime.fromtimestamp(moment, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
