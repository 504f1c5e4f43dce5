"""A job's compose keys: `x-corral-job` (parallelism, backoff_limit, deadline, concurrency_policy,
starting_deadline), `x-corral-schedule` and `x-corral-schedule-timezone`.

They are allowed only with `deploy.mode: replicated-job` or `global-job`; a schedule and
time zone are checked here, so a bad one is refused at deploy time with its path.
"""

from corral.compose.durations import parse_duration
from corral.compose.notes import Notes
from corral.compose.paths import child
from corral.compose.values import optional, read_choice, read_mapping, read_non_empty_string, read_positive_count, read_count
from corral.model.errors import InvalidSpec
from corral.model.job import ConcurrencyPolicy, JobSpec
from corral.model.schedule import InvalidSchedule, parse_schedule
from corral.model.service import ServiceMode

JOB_KEY = "x-corral-job"
SCHEDULE_KEY = "x-corral-schedule"
TIMEZONE_KEY = "x-corral-schedule-timezone"
_JOB_KEYS = frozenset({"parallelism", "backoff_limit", "deadline", "concurrency_policy", "starting_deadline"})
_POLICIES: tuple[ConcurrencyPolicy, ...] = ("forbid", "allow", "replace")


def parse_job(section: dict[str, object], path: str, mode: ServiceMode, notes: Notes) -> JobSpec | None:
    """The job settings of the service section at `path`; None for a service that is not a job."""
    given = [key for key in (JOB_KEY, SCHEDULE_KEY, TIMEZONE_KEY) if section.get(key) is not None]
    if not mode.is_job:
        if given:
            raise InvalidSpec(child(path, given[0]), "is only for jobs: set deploy.mode to replicated-job or global-job")
        return None
    job_path = child(path, JOB_KEY)
    settings = read_mapping(section.get(JOB_KEY), job_path)
    notes.ignore_unknown(settings, _JOB_KEYS, job_path)
    default = JobSpec()
    schedule = optional(section, SCHEDULE_KEY, path, read_non_empty_string, None)
    timezone = optional(section, TIMEZONE_KEY, path, read_non_empty_string, default.timezone)
    if schedule is None and section.get(TIMEZONE_KEY) is not None:
        raise InvalidSpec(child(path, TIMEZONE_KEY), f"needs {SCHEDULE_KEY}: a time zone is only for a schedule")
    if schedule is not None:
        try:
            parse_schedule(schedule, timezone)
        except InvalidSchedule as error:
            where = TIMEZONE_KEY if str(error).startswith("unknown time zone") else SCHEDULE_KEY
            raise InvalidSpec(child(path, where), str(error)) from None
    for key in ("concurrency_policy", "starting_deadline"):
        if schedule is None and settings.get(key) is not None:
            raise InvalidSpec(child(job_path, key), f"is only for a job with {SCHEDULE_KEY}")
    return JobSpec(
        parallelism=optional(settings, "parallelism", job_path, read_positive_count, None),
        backoff_limit=optional(settings, "backoff_limit", job_path, read_count, default.backoff_limit),
        deadline=optional(settings, "deadline", job_path, _positive_duration, None),
        schedule=schedule,
        timezone=timezone,
        concurrency_policy=optional(settings, "concurrency_policy", job_path, _read_policy, default.concurrency_policy),
        starting_deadline=optional(settings, "starting_deadline", job_path, _positive_duration, None),
    )


def _positive_duration(value: object, path: str) -> float:
    seconds = parse_duration(value, path)
    if seconds <= 0:
        raise InvalidSpec(path, "must be a duration longer than 0")
    return seconds


def _read_policy(value: object, path: str) -> ConcurrencyPolicy:
    return read_choice(value, path, _POLICIES, "concurrency policy")
